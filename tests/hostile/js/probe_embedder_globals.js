function Z10500( Z10500K1 ) { return [ typeof __wasi, typeof WASI, typeof Module, typeof importScripts, typeof Worker, typeof performance ].join( ',' ); }
