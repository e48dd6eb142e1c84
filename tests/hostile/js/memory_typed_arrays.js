function Z10500( Z10500K1 ) { const keep = []; while ( true ) { keep.push( new Float64Array( 1 << 20 ) ); } }
