function Z10500( Z10500K1 ) { const o = {}; o.toString = function () { return 'x' + this; }; return String( o ); }
