//! The walls around a compiler process, probed with ordinary programs.

use std::time::Duration;

use zeval_compiler::{Limits, run_confined_for_test};

fn limits() -> Limits {
    Limits {
        cpu: Duration::from_secs(5),
        address_space: 1 << 30,
        output_bytes: 1 << 20,
        wall: Duration::from_secs(10),
        temp_bytes: 8 << 20,
        captured_bytes: 64 << 10,
    }
}

fn run(argv: &[&str]) -> (bool, String, String) {
    let (status, stdout, stderr, _) = run_confined_for_test(argv, limits()).expect("spawn");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn the_walls_let_ordinary_programs_run() {
    let (ok, stdout, _) = run(&["/usr/bin/cat", "/usr/include/wasm32-wasi/stdio.h"]);
    assert!(ok && stdout.contains("fopen"));
    let (ok, _, stderr) = run(&["/bin/sh", "-c", "echo x > out && cat out"]);
    assert!(ok, "{stderr}");
}

#[test]
fn files_outside_the_toolchains_cannot_be_read() {
    for path in [
        "/etc/passwd",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        "/proc/1/environ",
    ] {
        let (ok, stdout, stderr) = run(&["/usr/bin/cat", path]);
        assert!(!ok, "{path} was readable: {stdout}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("Permission denied") || stderr.contains("No such"),
            "{stderr}"
        );
    }
    let (ok, _, _) = run(&["/bin/sh", "-c", "echo x > /tmp/zeval-compiler-escape-test"]);
    assert!(!ok);
    assert!(!std::path::Path::new("/tmp/zeval-compiler-escape-test").exists());
}

#[test]
fn there_is_no_network() {
    let (ok, stdout, _) = run(&["/usr/bin/getent", "ahosts", "example.com"]);
    assert!(!ok, "name lookup worked: {stdout}");
    // A TCP connect to a public address and to the loopback.
    for target in ["/dev/tcp/1.1.1.1/80", "/dev/tcp/127.0.0.1/22"] {
        let script = format!("exec 3<>{target} && echo connected");
        if std::path::Path::new("/bin/bash").exists() {
            let (ok, stdout, _) = run(&["/bin/bash", "-c", &script]);
            assert!(!ok && !stdout.contains("connected"), "{target}");
        }
    }
}

#[test]
fn no_capabilities_survive_and_the_server_cannot_be_signalled() {
    let (ok, stdout, _) = run(&["/usr/bin/cat", "/proc/self/status"]);
    // /proc is not readable under landlock; when it is (no landlock), the sets must be empty.
    if ok {
        for line in stdout.lines().filter(|l| l.starts_with("Cap")) {
            if !line.starts_with("CapBnd") || rustix_root() {
                assert!(line.ends_with("0000000000000000"), "{line}");
            }
        }
    }
    let parent = std::process::id().to_string();
    let (ok, _, stderr) = run(&["/bin/kill", "-0", &parent]);
    assert!(
        !ok,
        "the confined process could signal the server: {stderr}"
    );
}

fn rustix_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
        .unwrap_or(false)
}

#[test]
fn limits_apply_to_the_child() {
    // (`/dev/zero` is not readable in there: `yes` makes the bytes.)
    let (ok, _, stderr) = run(&["/bin/sh", "-c", "yes | head -c 2000000 > big"]);
    assert!(!ok, "a file over RLIMIT_FSIZE was written");
    assert!(!stderr.contains("Permission denied"), "{stderr}");
    let (ok, _, stderr) = run(&["/bin/sh", "-c", "yes | head -c 900000 > small"]);
    assert!(ok, "{stderr}");
    let (status, _, _, confinement) = run_confined_for_test(
        &["/bin/sh", "-c", "while :; do :; done"],
        Limits {
            cpu: Duration::from_secs(1),
            ..limits()
        },
    )
    .expect("spawn");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc_sigxcpu())
    );
    assert!(
        confinement.landlock.contains("ABI"),
        "{}",
        confinement.landlock
    );
}

/// Runs `script` (which writes, then sleeps 8 s) confined, and checks it was killed well
/// before its sleep ended.
fn killed_soon(script: &str) {
    let started = std::time::Instant::now();
    let (status, _, _, _) =
        run_confined_for_test(&["/bin/sh", "-c", script], limits()).expect("spawn");
    let took = started.elapsed();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{script}: {status:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{script}: {took:?}");
}

/// `RLIMIT_FSIZE` bounds each file; until 2026-12-06 nothing bounded them together (a
/// compiler writes several: rustc with `-Ccodegen-units=16`, sixteen objects).
#[test]
fn the_temp_dir_is_bounded_in_all() {
    // Twelve files, each under the 1 MiB file bound, 12 MiB in all past the 8 MiB bound.
    killed_soon(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do yes | head -c 1000000 > f$i; done; sleep 8",
    );
    // Blocks taken without growing a file's length count too: `RLIMIT_FSIZE` does not stop
    // them, and a walk that summed lengths saw 0 bytes.
    killed_soon(": > blocks; fallocate -n -l 12M blocks; sleep 8");
    // Within the bound, the same files are fine.
    let (ok, _, stderr) = run(&[
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6; do yes | head -c 1000000 > f$i; done; sleep 0.2",
    ]);
    assert!(ok, "{stderr}");
}

fn libc_sigxcpu() -> i32 {
    24
}
