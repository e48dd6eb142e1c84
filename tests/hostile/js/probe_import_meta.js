function Z10500( Z10500K1 ) { let s = ''; try { s = new Function( 'return import.meta.url' )(); } catch ( e ) { return 'refused: ' + e.constructor.name; } return s; }
