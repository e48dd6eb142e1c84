function Z10500( Z10500K1 ) { return 'y'.repeat( 9 * 1024 * 1024 ); }
