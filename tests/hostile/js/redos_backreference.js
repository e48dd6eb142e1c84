function Z10500( Z10500K1 ) { return String( /^(.*a){25}$/.test( 'a'.repeat( 40 ) ) ); }
