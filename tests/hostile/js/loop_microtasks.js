function Z10500( Z10500K1 ) { let n = 0; function again() { n++; Promise.resolve().then( again ); } again(); return 'returned ' + n; }
