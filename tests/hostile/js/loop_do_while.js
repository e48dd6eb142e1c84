function Z10500( Z10500K1 ) { let i = 0; do { i++; } while ( i >= 0 || true ); return String( i ); }
