function Z10500( Z10500K1 ) { function a( n ) { return b( n + 1 ); } function b( n ) { return a( n + 1 ); } return String( a( 0 ) ); }
