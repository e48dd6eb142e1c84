// W.Call with a function that is not a ZID: refused by the evaluator, not passed on.
function Z10500( Z10500K1 ) {
	return W.Call( 'Z866; DROP TABLE objects', { Z866K1: Z10500K1 } );
}
