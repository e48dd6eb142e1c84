function Z10500( Z10500K1 ) { const before = JSON.stringify( [ 1 ] ); JSON.stringify = () => 'patched'; String.prototype.toUpperCase = () => 'patched'; return before + 'a'.toUpperCase(); }
