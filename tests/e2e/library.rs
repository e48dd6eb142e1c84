//! `zeval bench library` as a test: its 16 functions (JavaScript, Python and compositions)
//! stored in a real `zeval serve` and every tester run on every implementation over HTTP. The
//! bench fails on the first check that does not pass, so this holds the library, the testers
//! route and both guests together.

use std::process::Command;

use crate::common::ZEVAL;

#[test]
fn every_tester_of_the_library_passes_on_every_implementation_over_http() {
    let output = Command::new(ZEVAL)
        .args(["bench", "library", "--rounds", "1"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("running zeval bench library");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "zeval bench library failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("16 functions, 52 checks"),
        "unexpected summary: {stdout}"
    );
    for kind in [
        "| all | 52 |",
        "| JavaScript | 20 |",
        "| Python | 20 |",
        "| composition | 12 |",
    ] {
        assert!(stdout.contains(kind), "no {kind:?} row: {stdout}");
    }
}
