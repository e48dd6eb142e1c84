function Z10500( Z10500K1 ) { function down( n ) { return down( n + 1 ) + 1; } return String( down( 0 ) ); }
