function Z10500( Z10500K1 ) { return typeof scriptArgs === 'undefined' ? 'none' : JSON.stringify( scriptArgs ); }
