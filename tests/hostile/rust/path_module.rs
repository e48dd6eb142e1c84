#[path = "/etc/passwd"]
mod passwd;

fn Z10500(Z10500K1: &str) -> String {
    Z10500K1.to_owned()
}
