function Z10500( Z10500K1 ) { return typeof WebAssembly; }
