function Z10500( Z10500K1 ) { return String( /^(a+)+$/.test( 'a'.repeat( 40 ) + '!' ) ); }
