function Z10500( Z10500K1 ) { const p = new Proxy( {}, { get( t, k, r ) { return r[ k ]; } } ); return String( p.x ); }
