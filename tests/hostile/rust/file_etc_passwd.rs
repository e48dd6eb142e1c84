// Tries to read a host file at run time: it must not be there.
fn Z10500(_Z10500K1: &str) -> String {
    match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => text,
        Err(error) => format!("read failed: {error}"),
    }
}
