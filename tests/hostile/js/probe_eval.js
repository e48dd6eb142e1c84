function Z10500( Z10500K1 ) { return String( eval( '1 + 2' ) ) + new Function( 'return 4' )(); }
