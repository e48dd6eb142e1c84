function Z10500( Z10500K1 ) { return [ typeof fetch, typeof XMLHttpRequest, typeof WebSocket, typeof setTimeout ].join( ',' ); }
