async function Z10500( Z10500K1 ) { const m = await import( 'std' ); return 'imported ' + typeof m.open; }
