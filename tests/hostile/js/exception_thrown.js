function Z10500( Z10500K1 ) { throw new Error( 'hostile corpus says no' ); }
