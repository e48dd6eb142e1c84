function Z10500( Z10500K1 ) { return globalThis.__zeval_run( JSON.stringify( { functionName: 'Z1', codeString: 'function Z1() { return typeof std; }', functionArguments: {} } ) ); }
