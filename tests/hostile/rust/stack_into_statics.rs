// Recursion that checks, at every level, a canary among the static data. An overflow of the
// stack must trap; if the stack sat above the static data without a guard, the frames would
// run over the canary first, and the program would notice and say so.
use std::sync::atomic::{AtomicU32, Ordering};

static CANARY: [AtomicU32; 4096] = [const { AtomicU32::new(12345) }; 4096];

fn intact() -> bool {
    CANARY.iter().all(|word| word.load(Ordering::Relaxed) == 12345)
}

fn down(depth: u32) -> bool {
    let mut frame = [0u8; 512];
    frame.fill(depth as u8);
    std::hint::black_box(&mut frame);
    if !intact() {
        return true;
    }
    down(depth + 1) && frame[0] == depth as u8
}

fn Z10500(_Z10500K1: &str) -> String {
    if down(0) { "canary overwritten" } else { "never" }.to_owned()
}
