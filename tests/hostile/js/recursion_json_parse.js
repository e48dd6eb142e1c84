function Z10500( Z10500K1 ) { const v = JSON.parse( '['.repeat( 1e6 ) + ']'.repeat( 1e6 ) ); return typeof v; }
