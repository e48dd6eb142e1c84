// Unbounded recursion with a frame the optimiser cannot fold away.
fn down(depth: u64, previous: &[u8; 256]) -> u64 {
    let mut frame = [0u8; 256];
    frame[0] = previous[0];
    frame[255] = depth as u8;
    std::hint::black_box(&mut frame);
    down(depth + 1, &frame) + frame[255] as u64
}

fn Z10500(Z10500K1: &str) -> String {
    format!("{}{}", Z10500K1, down(0, &[0; 256]))
}
