// Returns a 10 MB string: over the output limit.
fn Z10500(Z10500K1: &str) -> String {
    Z10500K1.repeat(10_000_000)
}
