fn Z10500(Z10500K1: &str) -> String {
    if Z10500K1.len() < 1000 {
        panic!("hostile corpus panics");
    }
    Z10500K1.to_owned()
}
