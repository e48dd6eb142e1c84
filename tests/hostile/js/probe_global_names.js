function Z10500( Z10500K1 ) { return Object.getOwnPropertyNames( globalThis ).filter( ( n ) => /^(std|os|bjson|require|process|scriptArgs|print)$/.test( n ) ).join( ',' ) || 'none'; }
