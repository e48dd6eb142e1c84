//! Compiled languages end to end: one function with JavaScript, Python, C and Rust
//! implementations passes the same testers through `zeval serve` (objects and testers APIs;
//! compiled code runs in the confined workers) and through `zeval call --objects DIR`;
//! compile errors are stored and reported; hostile sources are refused.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::put_object as put;
use crate::common::{Server, add_user, request, z2, zeval_binary};

const JS: &str =
    "function Z10000( Z10000K1 ) { return Array.from( Z10000K1 ).reverse().join( '' ); }";
const PYTHON: &str = "def Z10000(Z10000K1):\n    return Z10000K1[::-1]";
const C: &str = r#"#include <stdlib.h>
#include <string.h>

/* Reverses UTF-8 text code point by code point. */
char *Z10000(const char *Z10000K1) {
    size_t length = strlen(Z10000K1);
    char *reversed = malloc(length + 1);
    size_t out = length;
    for (size_t i = 0; i < length;) {
        size_t width = 1;
        while (i + width < length && (Z10000K1[i + width] & 0xC0) == 0x80) width++;
        out -= width;
        memcpy(reversed + out, Z10000K1 + i, width);
        i += width;
    }
    reversed[length] = '\0';
    return reversed;
}
"#;
const RUST: &str =
    "fn Z10000(Z10000K1: &str) -> String {\n    Z10000K1.chars().rev().collect()\n}\n";

/// `(zid, language, code)` of the four implementations.
const IMPLEMENTATIONS: [(&str, &str, &str); 4] = [
    ("Z10001", "Z600", JS),
    ("Z10002", "Z610", PYTHON),
    ("Z10003", "Z630", C),
    ("Z10004", "Z640", RUST),
];

fn function(implementations: &[&str]) -> Value {
    let mut list = vec![json!("Z14")];
    list.extend(implementations.iter().map(|zid| json!(zid)));
    z2(
        "Z10000",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20", "Z10005", "Z10006"], "Z8K4": list, "Z8K5": "Z10000",
        }),
    )
}

fn implementation(zid: &str, language: &str, code: &str) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
    )
}

fn tester(zid: &str, input: &str, expected: &str) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z20", "Z20K1": "Z10000",
               "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": input},
               "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected}}),
    )
}

fn testers() -> [(&'static str, Value); 2] {
    [
        ("Z10005", tester("Z10005", "abc", "cba")),
        ("Z10006", tester("Z10006", "héllo, 世界", "界世 ,olléh")),
    ]
}

fn call(orch: &str, z7: Value) -> Value {
    let answer = request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        None,
        Some(&json!({"zobject": z7, "doValidate": true})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

#[test]
fn four_languages_pass_the_same_testers_through_the_server() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "editor", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    let zids: Vec<&str> = IMPLEMENTATIONS.iter().map(|(zid, ..)| *zid).collect();
    put(orch, &token, "Z10000", &function(&zids));
    for (zid, language, code) in IMPLEMENTATIONS {
        put(orch, &token, zid, &implementation(zid, language, code));
    }
    for (zid, object) in testers() {
        put(orch, &token, zid, &object);
    }
    // Compiled when written.
    for zid in ["Z10003", "Z10004"] {
        let report = compilation_report(orch, zid);
        assert_eq!(report["status"], "compiled", "{report}");
        assert!(report["bytes"].as_u64().unwrap() > 0, "{report}");
    }
    let not_compiled = request(
        "GET",
        &format!("{orch}/v1/objects/Z10001/compilation"),
        None,
        None,
    );
    assert_eq!(not_compiled.status, 404);

    let matrix = request(
        "POST",
        &format!("{orch}/v1/test"),
        None,
        Some(&json!({"function": "Z10000"})),
    );
    assert_eq!(matrix.status, 200, "{}", matrix.text);
    let matrix = matrix.json();
    assert_eq!(matrix["total"], 8, "{matrix}");
    assert_eq!(matrix["passed"], 8, "{matrix}");

    // The metadata names the compiler and the runtime.
    let mut only_c = function(&["Z10003"]);
    only_c["Z2K1"] = json!({"Z1K1": "Z6", "Z6K1": "Z10000"});
    let z22 = call(
        orch,
        json!({"Z1K1": "Z7", "Z7K1": only_c["Z2K2"].clone(), "Z10000K1": "zeval"}),
    );
    assert_eq!(z22["Z22K1"], "lavez", "{z22}");
    let version = crate::common::metadata(&z22, "programmingLanguageVersion").unwrap();
    let version = version.as_str().unwrap();
    assert!(
        version.starts_with("C17 (") && version.contains("clang"),
        "{version}"
    );
    assert!(server.stop());
}

#[test]
fn compile_errors_are_stored_reported_and_answered() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "editor", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    put(orch, &token, "Z10000", &function(&["Z10003", "Z10004"]));
    let broken_c = "char *Z10000(const char *Z10000K1) {\n    return Z10000K1 +;\n}\n";
    put(
        orch,
        &token,
        "Z10003",
        &implementation("Z10003", "Z630", broken_c),
    );
    let passwd = "#include \"/etc/passwd\"\nchar *Z10000(const char *Z10000K1) { return 0; }\n";
    put(
        orch,
        &token,
        "Z10004",
        &implementation("Z10004", "Z630", passwd),
    );

    let report = request(
        "GET",
        &format!("{orch}/v1/objects/Z10003/compilation"),
        None,
        None,
    )
    .json();
    assert_eq!(report["status"], "failed", "{report}");
    let message = report["error"]["Z5K2"].as_str().unwrap();
    assert!(message.contains(":2:"), "the user's line number: {message}");
    assert!(!message.contains("/tmp"), "no host path: {message}");

    let refused = request(
        "GET",
        &format!("{orch}/v1/objects/Z10004/compilation"),
        None,
        None,
    )
    .json();
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        !refused["error"]["Z5K2"].as_str().unwrap().contains("root:"),
        "{refused}"
    );

    // A call answers with the stored error, for each implementation in turn.
    let z22 = call(
        orch,
        json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"}),
    );
    let text = z22.to_string();
    assert!(text.contains("Compilation failed"), "{text}");

    // The same source saved twice is one artifact.
    put(
        orch,
        &token,
        "Z10004",
        &implementation("Z10004", "Z630", broken_c),
    );
    let again = request(
        "GET",
        &format!("{orch}/v1/objects/Z10004/compilation"),
        None,
        None,
    )
    .json();
    assert_eq!(again["key"], report["key"], "{again}");
    assert!(server.stop());
}

/// Writes every object as `<zid>.json` into `dir`.
fn write_objects(dir: &Path, objects: &[(&str, Value)]) {
    for (zid, object) in objects {
        std::fs::write(dir.join(format!("{zid}.json")), object.to_string()).unwrap();
    }
}

#[test]
fn zeval_call_compiles_on_first_use() {
    let artifacts = tempfile::tempdir().unwrap();
    for (zid, language, code) in IMPLEMENTATIONS {
        let objects = tempfile::tempdir().unwrap();
        write_objects(
            objects.path(),
            &[
                ("Z10000", function(&[zid])),
                (zid, implementation(zid, language, code)),
            ],
        );
        for (input, expected) in [("abc", "cba"), ("héllo, 世界", "界世 ,olléh")] {
            let output = Command::new(zeval_binary())
                .args(["call", "--objects"])
                .arg(objects.path())
                .env("ZEVAL_ARTIFACT_DIR", artifacts.path())
                .arg("-")
                .stdin_bytes(
                    json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": input}).to_string(),
                );
            let z22: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
                panic!("{zid}: {e}: {}", String::from_utf8_lossy(&output.stderr))
            });
            // The error first and short: a CI log may keep only the start of a long line.
            let error = zeval_zobject::build::get_metadata(&z22["Z22K2"], "errors")
                .map(|error| error.to_string().chars().take(800).collect::<String>());
            assert_eq!(
                z22["Z22K1"],
                expected,
                "{language} ({zid}) on {input:?}: error {error:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
                    .chars()
                    .take(800)
                    .collect::<String>()
            );
        }
    }
    // One artifact per compiled language, kept under its key.
    let kept = std::fs::read_dir(artifacts.path())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "wasm")
        })
        .count();
    assert_eq!(kept, 2);
}

/// Runs a command with `input` on its standard input.
trait StdinBytes {
    fn stdin_bytes(&mut self, input: String) -> std::process::Output;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, input: String) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Runs `zeval` with `args`, asserting success; its standard output.
fn zeval(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(zeval_binary()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "zeval {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The artifacts `zeval export` finds in the store of `data`.
fn stored_artifacts(data: &Path) -> String {
    let exported = tempfile::tempdir().unwrap();
    let os = |s: &str| std::ffi::OsStr::new(s).to_owned();
    let said = zeval(&[
        &os("export"),
        exported.path().as_os_str(),
        &os("--no-catalogue"),
        &os("--data-dir"),
        data.as_os_str(),
    ]);
    let count = said
        .split(" and ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{said}"));
    count.to_owned()
}

fn compilation_report(orch: &str, zid: &str) -> Value {
    let report = request(
        "GET",
        &format!("{orch}/v1/objects/{zid}/compilation"),
        None,
        None,
    );
    assert_eq!(report.status, 200, "{}", report.text);
    report.json()
}

/// Until 2026-12-06 every save of compiled code kept its artifact for good: an editor saving
/// distinct code again and again (a C or Rust artifact for a few hundred bytes of source, up
/// to 32 MiB) could fill the disk. The store keeps the artifacts of current and approved
/// revisions only, each author's within `[compiler] stored_artifact_bytes_per_author`.
#[test]
fn an_editors_saves_keep_only_the_artifacts_calls_can_reach() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "editor", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    put(orch, &token, "Z10000", &function(&["Z10003"]));
    for save in 0..4 {
        let code = format!("/* save {save} */\n{C}");
        put(
            orch,
            &token,
            "Z10003",
            &implementation("Z10003", "Z630", &code),
        );
        let report = compilation_report(orch, "Z10003");
        assert_eq!(report["status"], "compiled", "{report}");
        assert_eq!(report["stored"], true, "{report}");
    }
    assert_eq!(stored_artifacts(data.path()), "1");
    assert!(server.stop());

    // A budget smaller than one artifact: the save is kept, its artifact is not, and calls
    // still run it.
    let config = data.path().join("zeval.toml");
    std::fs::write(
        &config,
        "[compiler]\nstored_artifact_bytes_per_author = 1000\n",
    )
    .unwrap();
    let server = Server::start(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let orch = server.orch();
    put(orch, &token, "Z10003", &implementation("Z10003", "Z630", C));
    let report = compilation_report(orch, "Z10003");
    assert_eq!(report["status"], "compiled", "{report}");
    assert_eq!(report["stored"], false, "{report}");
    // The refused recording is rolled back whole: the earlier revision keeps its artifact
    // until the next recording for the implementation, and nothing new is stored.
    assert_eq!(stored_artifacts(data.path()), "1");
    let z22 = call(
        orch,
        json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"}),
    );
    assert_eq!(z22["Z22K1"], "cba", "{z22}");
    assert!(server.stop());
}

#[test]
fn import_compiles_and_export_carries_the_artifacts() {
    let objects = tempfile::tempdir().unwrap();
    write_objects(
        objects.path(),
        &[
            ("Z10000", function(&["Z10003", "Z10004"])),
            ("Z10003", implementation("Z10003", "Z630", C)),
            ("Z10004", implementation("Z10004", "Z640", RUST)),
        ],
    );
    let first = tempfile::tempdir().unwrap();
    let os = |s: &str| std::ffi::OsStr::new(s).to_owned();
    let imported = zeval(&[
        &os("import"),
        objects.path().as_os_str(),
        &os("--data-dir"),
        first.path().as_os_str(),
    ]);
    assert!(imported.contains("compiled Z10003 (C)"), "{imported}");
    assert!(imported.contains("compiled Z10004 (Rust)"), "{imported}");

    let exported = tempfile::tempdir().unwrap();
    let said = zeval(&[
        &os("export"),
        exported.path().as_os_str(),
        &os("--no-catalogue"),
        &os("--data-dir"),
        first.path().as_os_str(),
    ]);
    assert!(said.contains("and 2 artifacts"), "{said}");

    // A second node imports the artifacts and finds them instead of compiling.
    let second = tempfile::tempdir().unwrap();
    let imported = zeval(&[
        &os("import"),
        exported.path().as_os_str(),
        &os("--data-dir"),
        second.path().as_os_str(),
    ]);
    assert!(imported.contains("imported 2 artifacts"), "{imported}");
    assert!(imported.contains("Z10003: artifact found"), "{imported}");
    assert!(imported.contains("Z10004: artifact found"), "{imported}");
}

/// C whose preprocessing doubles its tokens at each of 40 steps: it compiles until its
/// limit. `n` makes each source its own.
fn compiler_bomb(n: usize) -> String {
    let mut bomb = format!("/* bomb {n} */\n#define A0 1+\n");
    for step in 1..=40 {
        bomb += &format!("#define A{step} A{0} A{0}\n", step - 1);
    }
    bomb + "static int sum(void) { return A40 0; }\nchar *Z10000(const char *Z10000K1) { return sum() ? (char *)Z10000K1 : \"never\"; }\n"
}

/// Four calls of `mallory`'s, of distinct C that compiles until its deadline, 300 ms apart,
/// then one of `alice`'s: the answers to mallory's calls, and alice's Z22.
fn four_bombs_then_another_client(orch: &str, mallory: &str, alice: &str) -> (Vec<String>, Value) {
    use crate::hostile::{Client, call_of, code_function};
    use std::time::Duration;

    let c_call = |code: &str| {
        call_of(
            code_function("Z10000", json!("Z6"), "Z6", "Z630", code),
            "Z10000",
            json!("called"),
        )
    };
    std::thread::scope(|scope| {
        let bombs: Vec<_> = (0..4)
            .map(|n| {
                let call = c_call(&compiler_bomb(n));
                let client = Client::new(orch, Some(mallory), Duration::from_secs(20));
                let bomb = scope.spawn(move || client.evaluate(&call).unwrap().text);
                std::thread::sleep(Duration::from_millis(300));
                bomb
            })
            .collect();
        let client = Client::new(orch, Some(alice), Duration::from_secs(20));
        let other = client
            .evaluate(&c_call(
                "char *Z10000(const char *Z10000K1) { return (char *)Z10000K1; }\n",
            ))
            .unwrap()
            .text;
        let bombs: Vec<String> = bombs.into_iter().map(|bomb| bomb.join().unwrap()).collect();
        (bombs, serde_json::from_str(&other).unwrap())
    })
}

/// Whether `bombs` has three answers turned away for their client's place in line, and
/// `other` compiled and ran.
fn one_place_per_client(bombs: &[String], other: &Value) {
    assert_eq!(other["Z22K1"], json!("called"), "{other}");
    let turned_away = bombs
        .iter()
        .filter(|answer| answer.contains("another call of this client's"))
        .count();
    assert_eq!(turned_away, 3, "{bombs:#?}");
}

/// One compiler runs what calls compile, and it went to waiters first come, first served:
/// one client's calls of distinct inline C that compiles until its deadline, sent one after
/// another, queued ahead of every other client's, and each held the compiler to its deadline.
/// A client (here, each token) now has one call in line for it: its others meanwhile are
/// answered at once, and another client's call waits behind one of them at most.
#[test]
fn one_clients_inline_code_leaves_the_call_time_compiler_to_another() {
    let data = tempfile::tempdir().unwrap();
    let mallory = add_user(data.path(), "mallory", "editor");
    let alice = add_user(data.path(), "alice", "editor");
    let server = Server::start(
        data.path(),
        &[],
        &[
            ("ZEVAL_CALL_TIMEOUT_MS", "2000"),
            ("ZEVAL_CALLS", "open"),
            ("ZEVAL_CACHE", "false"),
        ],
    );
    let (bombs, other) = four_bombs_then_another_client(server.orch(), &mallory, &alice);
    one_place_per_client(&bombs, &other);
}

/// The same with the evaluator in another process (`--role evaluator`, reached with the
/// evaluator secret): the orchestrator names each call's client in a header, as a digest
/// (`CLIENT_HEADER`), and the evaluator believes it from a request with the secret only.
/// Before, a remote evaluator counted no client at all.
#[test]
fn a_remote_evaluator_gives_each_client_of_its_orchestrator_one_place_for_its_compiler() {
    let secret = "0123456789abcdef0123456789abcdef";
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(
        evaluator_data.path(),
        &["--role", "evaluator"],
        &[
            ("ZEVAL_EVALUATOR_SECRET", secret),
            ("ZEVAL_CALL_TIMEOUT_MS", "2000"),
        ],
    );
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let data = tempfile::tempdir().unwrap();
    let mallory = add_user(data.path(), "mallory", "editor");
    let alice = add_user(data.path(), "alice", "editor");
    // JSON carries the function (a compiled implementation needs its signature; Avro does
    // not carry it).
    let orchestrator = Server::start_orchestrator_configured(
        data.path(),
        &format!("[evaluators]\nc17 = {{ url = \"{evaluate_url}\", format = \"json\" }}\n"),
        &[
            ("ZEVAL_EVALUATOR_SECRET", secret),
            ("ZEVAL_CALL_TIMEOUT_MS", "2000"),
            ("ZEVAL_CALLS", "open"),
            ("ZEVAL_CACHE", "false"),
        ],
    );
    let (bombs, other) = four_bombs_then_another_client(orchestrator.orch(), &mallory, &alice);
    one_place_per_client(&bombs, &other);
}
