function Z10500( Z10500K1 ) { const seen = ( {} ).polluted; Object.prototype.polluted = 'yes'; return seen === undefined ? 'fresh' : 'leaked'; }
