function Z10500( Z10500K1 ) { while ( true ) { try { for ( ;; ) {} } catch ( e ) {} } }
