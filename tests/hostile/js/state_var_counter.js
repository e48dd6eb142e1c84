function Z10500( Z10500K1 ) { if ( typeof counter === 'undefined' ) { globalThis.counter = 0; } globalThis.counter++; return String( globalThis.counter ); }
