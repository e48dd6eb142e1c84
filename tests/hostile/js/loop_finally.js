function Z10500( Z10500K1 ) { try { while ( true ) {} } finally { while ( true ) {} } }
