function Z10500( Z10500K1 ) { console.log( 'a little noise' ); return 'done'; }
