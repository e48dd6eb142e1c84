function Z10500( Z10500K1 ) { const a = Date.now(); let x = 0; for ( let i = 0; i < 1e5; i++ ) { x += i; } return Date.now() >= a ? 'monotonic' : 'backwards'; }
