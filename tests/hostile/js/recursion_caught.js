function Z10500( Z10500K1 ) { function down( n ) { return down( n + 1 ) + 1; } try { down( 0 ); } catch ( e ) { return 'caught ' + e.constructor.name; } return 'no'; }
