function Z10500( Z10500K1 ) { console.log( 'x'.repeat( 20 * 1024 * 1024 ) ); return 'done'; }
