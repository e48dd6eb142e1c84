//! The README's worked example, run verbatim: the `sh` blocks between `<!-- example:start -->`
//! and `<!-- example:end -->` go to bash, pointed at a fresh server by `$ZEVAL`, `$ORCH` and
//! `$DATA`; then `/metrics` must show the call.

use std::process::Command;

use crate::common::{Server, ZEVAL, request};

pub(crate) fn example_script() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- example:start -->")
        .expect("no example:start marker");
    let end = readme
        .find("<!-- example:end -->")
        .expect("no example:end marker");
    let mut script = String::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if in_block {
            if line.trim_start().starts_with("```") {
                in_block = false;
            } else {
                script.push_str(line);
                script.push('\n');
            }
        } else if line.trim() == "```sh" {
            in_block = true;
        }
    }
    assert!(!script.is_empty(), "the example has no sh block");
    script
}

#[test]
fn the_readme_example_works_verbatim() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch().to_owned();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &example_script()])
        .current_dir(work.path())
        .env("ZEVAL", ZEVAL)
        .env("ORCH", &orch)
        .env("DATA", data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "function Z10000: implementations Z10001 (JavaScript), Z10002 (Python); testers Z10003, Z10004",
        "result: desserts",
        "Z10003 on Z10001: pass",
        "Z10003 on Z10002: pass",
        "Z10004 on Z10001: pass",
        "Z10004 on Z10002: pass",
        "Z10000: 4/4 pass",
        "implementationType: Evaluated",
        "implementationId: Z10001",
        "programmingLanguageVersion: QuickJS",
        "executionMemoryUsage: ",
        "orchestrationDuration: ",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}\nstderr:\n{stderr}"
        );
    }
    let metrics = request("GET", &format!("{orch}/metrics"), None, None).text;
    assert!(
        metrics.contains("zeval_calls_total{function=\"Z10000\",implementation_type=\"Evaluated\",outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zeval_code_runs_total{language=\"python\",outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("zeval_store_objects "), "{metrics}");
    assert!(
        server.stop(),
        "zeval serve did not shut down cleanly on SIGTERM"
    );
}
