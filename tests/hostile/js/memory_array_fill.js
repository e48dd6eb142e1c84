function Z10500( Z10500K1 ) { const a = new Array( 1e9 ).fill( 0 ); return String( a.length ); }
