// Catches every refusal of W.Call (the nested-call limit) and keeps calling: catching does
// not lift the limit, and the deadline ends the call.
function Z10500( Z10500K1 ) {
	for ( ;; ) {
		try {
			W.Call( 'Z866', { Z866K1: Z10500K1, Z866K2: Z10500K1 } );
		} catch ( e ) {}
	}
}
