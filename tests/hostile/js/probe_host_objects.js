function Z10500( Z10500K1 ) { return [ typeof std, typeof os, typeof require, typeof process, typeof Deno, typeof Bun ].join( ',' ); }
