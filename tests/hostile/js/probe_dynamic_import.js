function Z10500( Z10500K1 ) { let out = 'none'; import( 'os' ).then( () => { out = 'imported'; }, ( e ) => { out = 'refused'; } ); return 'returned'; }
