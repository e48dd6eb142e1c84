// Tries to start a thread (and so a second stack the limits might not see).
fn Z10500(Z10500K1: &str) -> String {
    let owned = Z10500K1.to_owned();
    match std::thread::Builder::new().spawn(move || owned.len()) {
        Ok(handle) => format!("spawned: {:?}", handle.join().ok()),
        Err(error) => format!("spawn failed: {error}"),
    }
}
