function Z10500( Z10500K1 ) { if ( globalThis.leaked === undefined ) { globalThis.leaked = 'from the first call'; return 'fresh'; } return 'leaked: ' + globalThis.leaked; }
