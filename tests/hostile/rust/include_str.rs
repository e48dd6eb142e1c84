const PASSWD: &str = include_str!("/etc/passwd");

fn Z10500(_Z10500K1: &str) -> String {
    PASSWD.to_owned()
}
