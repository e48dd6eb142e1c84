function Z10500( Z10500K1 ) { return String( /^(a|aa)+$/.test( 'a'.repeat( 60 ) + '!' ) ); }
