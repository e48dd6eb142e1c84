function Z10500( Z10500K1 ) { const b = new ArrayBuffer( 2 ** 31 ); return String( b.byteLength ); }
