function Z10500( Z10500K1 ) { (async () => { while ( true ) { await null; } })(); return 'returned'; }
