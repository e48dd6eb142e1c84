fn Z10500(_Z10500K1: &str) -> String {
    std::process::abort()
}
