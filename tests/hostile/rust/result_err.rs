fn Z10500(Z10500K1: &str) -> Result<String, String> {
    Err(format!("hostile corpus says no to {Z10500K1}"))
}
