// Grows a vector without end: the allocator asks for more linear memory until the limit.
fn Z10500(Z10500K1: &str) -> String {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&kept);
        if kept.is_empty() {
            return Z10500K1.to_owned();
        }
    }
}
