function Z10500( Z10500K1 ) { const now = Date.now(); return ( now > Date.UTC( 2024, 0, 1 ) && now < Date.UTC( 2100, 0, 1 ) ) ? 'plausible' : 'odd ' + now; }
