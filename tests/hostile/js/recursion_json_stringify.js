function Z10500( Z10500K1 ) { let v = []; for ( let i = 0; i < 1e5; i++ ) { v = [ v ]; } return JSON.stringify( v ).length + ''; }
