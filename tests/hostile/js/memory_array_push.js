function Z10500( Z10500K1 ) { const a = []; while ( true ) { a.push( { k: a.length, pad: new Int32Array( 1 << 14 ) } ); } }
