// Arithmetic that overflows: with `-O` (no debug assertions) Rust wraps instead of panicking.
fn Z10500(Z10500K1: &str) -> String {
    let big: u8 = std::hint::black_box(250);
    let sum = big + Z10500K1.len() as u8 * 10;
    let product = std::hint::black_box(i32::MAX) * 2;
    format!("{sum} {product}")
}
