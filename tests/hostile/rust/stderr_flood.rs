// Prints to standard error without end: the output limit (or the deadline) must stop it.
fn Z10500(Z10500K1: &str) -> String {
    loop {
        eprintln!("flood flood flood flood flood flood flood flood flood flood {}", Z10500K1);
    }
}
