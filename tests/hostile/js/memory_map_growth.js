function Z10500( Z10500K1 ) { const m = new Map(); let i = 0; while ( true ) { m.set( 'key' + i, new Uint8Array( 1 << 16 ).fill( 1 ) ); i++; } }
