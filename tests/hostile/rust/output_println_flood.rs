// Prints without end: the output limit (or the deadline) must stop it.
fn Z10500(Z10500K1: &str) -> String {
    loop {
        println!("flood flood flood flood flood flood flood flood flood flood {}", Z10500K1);
    }
}
