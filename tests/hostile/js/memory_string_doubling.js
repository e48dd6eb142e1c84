function Z10500( Z10500K1 ) { let s = 'x'; while ( true ) { s = s + s; s.charCodeAt( s.length - 1 ); } }
