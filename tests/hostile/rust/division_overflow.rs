// i32::MIN / -1 overflows: unlike `+` and `*`, division panics even without debug assertions.
fn Z10500(Z10500K1: &str) -> String {
    let min = std::hint::black_box(i32::MIN);
    let minus_one = std::hint::black_box(-(Z10500K1.len() as i32));
    format!("{}", min / minus_one)
}
