function Z10500( Z10500K1 ) { while ( true ) { console.log( 'flood flood flood flood flood flood flood flood' ); } }
