function Z10500( Z10500K1 ) { throw { not: 'an error' }; }
