function Z10500( Z10500K1 ) { const r = Math.random(); return ( r >= 0 && r < 1 ) ? 'in range' : 'out ' + r; }
