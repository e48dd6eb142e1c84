// An infinite loop evaluated by the compiler: rustc's const-eval lint stops it, or the
// compiler's CPU limit does.
const X: u64 = {
    let mut i = 0u64;
    loop {
        i += 1;
        if i == 0 {
            break i;
        }
    }
};

fn Z10500(Z10500K1: &str) -> String {
    format!("{Z10500K1}{X}")
}
