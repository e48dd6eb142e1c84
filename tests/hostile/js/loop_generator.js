function Z10500( Z10500K1 ) { function* g() { let i = 0; while ( true ) yield i++; } let s = 0; for ( const v of g() ) { s += v; } return String( s ); }
