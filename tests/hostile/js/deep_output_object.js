function Z10500( Z10500K1 ) { let v = 'leaf'; for ( let i = 0; i < 1e5; i++ ) { v = { Z1K1: 'Z1', K1: v }; } return v; }
