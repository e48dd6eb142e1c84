//! Two `zeval serve --database-url postgres://…` processes on one PostgreSQL database (a
//! server the test starts itself, see `postgres_server`): a write through one is read through
//! the other at once, concurrent creates get distinct ZIDs, a stale `PUT` gets 409; and
//! `zeval export` / `zeval import` move a store from PostgreSQL to SQLite and back without
//! loss.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Server, request, z2, zeval_binary};

#[path = "../../crates/store/tests/all/postgres_server.rs"]
pub(crate) mod postgres_server;

/// Runs `zeval ARGS`, failing the test on a non-zero exit; its standard output.
fn zeval(args: &[&str]) -> String {
    let output = Command::new(zeval_binary()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "zeval {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A `PUT` of `z2` with `If-Match: "<base>"`: (status, body).
fn put_based_on(orch: &str, token: &str, zid: &str, base: u64, z2: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .put(&format!("{orch}/v1/objects/{zid}"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("If-Match", &format!("\"{base}\""))
        .send(z2.to_string().as_bytes())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Adds the editor `alice` to the database at `url` (with `data_dir` as the command's own);
/// her token.
fn add_editor(url: &str, data_dir: &Path) -> String {
    add_user(url, data_dir, "alice", "editor")
}

/// Adds user `name` with `role` to the database at `url`; their token.
fn add_user(url: &str, data_dir: &Path, name: &str, role: &str) -> String {
    zeval(&[
        "user",
        "add",
        name,
        "--role",
        role,
        "--database-url",
        url,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
    .trim()
    .to_owned()
}

#[test]
fn two_servers_share_one_postgresql_store() {
    let url = postgres_server::fresh_database();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token = add_editor(&url, dir_a.path());
    let a = Server::start(dir_a.path(), &["--database-url", &url], &[]);
    // The other one by the environment variable, and with its own (unused) data directory.
    let b = Server::start(dir_b.path(), &[], &[("ZEVAL_DATABASE_URL", &url)]);
    assert!(!dir_b.path().join("zeval.sqlite").exists());

    // Written through A, read through B at once (and the token B checks is A's user's).
    let object = z2("Z10500", json!("from a"));
    let put = request(
        "PUT",
        &format!("{}/v1/objects/Z10500", a.orch()),
        Some(&token),
        Some(&object),
    );
    assert_eq!(put.status, 200, "{}", put.text);
    let read = request(
        "GET",
        &format!("{}/v1/objects/Z10500", b.orch()),
        None,
        None,
    );
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json(), object);

    // Concurrent creates through both get distinct, consecutive ZIDs.
    let mut zids: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = [a.orch(), b.orch(), a.orch(), b.orch()]
            .into_iter()
            .map(|orch| {
                let token = &token;
                scope.spawn(move || {
                    (0..5)
                        .map(|_| {
                            let created = request(
                                "POST",
                                &format!("{orch}/v1/objects"),
                                Some(token),
                                Some(&z2("Z0", json!("new"))),
                            );
                            assert_eq!(created.status, 201, "{}", created.text);
                            created.json()["zid"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    zids.sort_by_key(|z| z[1..].parse::<u64>().unwrap());
    zids.dedup();
    assert_eq!(zids.len(), 20, "{zids:?}");
    assert_eq!((zids[0].as_str(), zids[19].as_str()), ("Z10501", "Z10520"));

    // Two editors based on revision 1: the second gets 409 with the current revision.
    let (status, body) = put_based_on(a.orch(), &token, "Z10500", 1, &z2("Z10500", json!("a2")));
    assert_eq!(
        (status, body["revision"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let (status, body) = put_based_on(b.orch(), &token, "Z10500", 1, &z2("Z10500", json!("b2")));
    assert_eq!(
        (status, body["revision"].as_u64()),
        (409, Some(2)),
        "{body}"
    );
    let read = request(
        "GET",
        &format!("{}/v1/objects/Z10500", b.orch()),
        None,
        None,
    );
    assert_eq!(read.json()["Z2K2"], "a2");
    assert!(a.stop() && b.stop());
}

/// Every file of an export directory (objects and artifacts), by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("artifacts"), dir.join("store")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn export_and_import_move_a_store_between_postgresql_and_sqlite() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    // A store on PostgreSQL with user objects (one edited twice) and an artifact.
    let source = tempfile::tempdir().unwrap();
    std::fs::write(
        source.path().join("Z10001.json"),
        z2("Z10001", json!("one")).to_string(),
    )
    .unwrap();
    std::fs::write(
        source.path().join("Z10002.json"),
        z2("Z10002", json!("two \u{e9}")).to_string(),
    )
    .unwrap();
    let artifacts = source.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let key = "ab".repeat(32);
    std::fs::write(artifacts.join(format!("{key}.wasm")), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(artifacts.join(format!("{key}.meta")), "c\nclang 19\n").unwrap();
    let postgres_url = postgres_server::fresh_database();
    let source_dir = source.path().to_str().unwrap();
    let token = zeval(&[
        "user",
        "add",
        "ada",
        "--role",
        "admin",
        "--database-url",
        &postgres_url,
        "--data-dir",
        &path("unused"),
    ]);
    zeval(&[
        "import",
        source_dir,
        "--database-url",
        &postgres_url,
        "--data-dir",
        &path("unused"),
    ]);
    std::fs::write(
        source.path().join("Z10001.json"),
        z2("Z10001", json!("one, edited")).to_string(),
    )
    .unwrap();
    zeval(&[
        "import",
        source_dir,
        "--database-url",
        &postgres_url,
        "--data-dir",
        &path("unused"),
    ]);
    assert!(!work.path().join("unused").join("zeval.sqlite").exists());

    // PostgreSQL → export → SQLite → export → a new PostgreSQL database → export.
    zeval(&[
        "export",
        &path("from-pg"),
        "--database-url",
        &postgres_url,
        "--data-dir",
        &path("unused"),
    ]);
    zeval(&["import", &path("from-pg"), "--data-dir", &path("sqlite")]);
    zeval(&[
        "export",
        &path("from-sqlite"),
        "--data-dir",
        &path("sqlite"),
    ]);
    let second_url = postgres_server::fresh_database();
    zeval(&[
        "import",
        &path("from-sqlite"),
        "--database-url",
        &second_url,
        "--data-dir",
        &path("unused"),
    ]);
    zeval(&[
        "export",
        &path("again"),
        "--database-url",
        &second_url,
        "--data-dir",
        &path("unused"),
    ]);

    let exported = files(&work.path().join("from-pg"));
    assert!(
        exported.len() > zeval_catalogue_count(),
        "{}",
        exported.len()
    );
    assert!(
        exported
            .iter()
            .any(|(name, _)| name == &format!("artifacts/{key}.wasm"))
    );
    let edited = exported
        .iter()
        .find(|(name, _)| name == "Z10001.json")
        .unwrap();
    assert!(String::from_utf8_lossy(&edited.1).contains("one, edited"));
    assert_eq!(exported, files(&work.path().join("from-sqlite")));
    assert_eq!(exported, files(&work.path().join("again")));
    // The user came along with their token hash (never the token).
    let users = exported
        .iter()
        .find(|(name, _)| name == "store/users.json")
        .unwrap();
    let users = String::from_utf8_lossy(&users.1);
    assert!(
        users.contains("\"ada\"") && users.contains("admin"),
        "{users}"
    );
    assert!(!users.contains(token.trim()), "{users}");
    let listed = zeval(&[
        "user",
        "list",
        "--database-url",
        &second_url,
        "--data-dir",
        &path("unused"),
    ]);
    assert_eq!(listed.trim(), "ada\tadmin");
}

/// How many objects the built-in catalogue has (every store is seeded with them).
fn zeval_catalogue_count() -> usize {
    let listed = zeval(&["export", "--help"]);
    assert!(listed.contains("--database-url"), "{listed}");
    // The export of an empty SQLite store is the catalogue.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    zeval(&[
        "export",
        out.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    files(&out).len()
}

/// Two servers on one PostgreSQL store, without a shared Redis: a new revision of an
/// implementation written through one is run by the other within the object cache's maximum
/// age (`SHARED_STORE_OBJECT_MAX_AGE`, 5 s). The other kept running the revision it had read
/// for as long as it stayed in its cache: also as approved, once an admin approved a newer one.
#[test]
fn a_revision_written_through_one_server_runs_on_the_other_within_seconds() {
    let url = postgres_server::fresh_database();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token = add_editor(&url, dir_a.path());
    let a = Server::start(dir_a.path(), &["--database-url", &url], &[]);
    let b = Server::start(dir_b.path(), &["--database-url", &url], &[]);
    crate::common::put_js_function(a.orch(), &token);
    // Past any result cache: the answer is computed from the objects each time.
    let call = |orch: &str| {
        let answer = request(
            "POST",
            &format!("{orch}/wikifunctions.org/v1/evaluate/"),
            Some(&token),
            Some(&json!({
                "zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"},
                "bypassCache": true,
            })),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["Z22K1"].clone()
    };
    assert_eq!(call(b.orch()), "ABC");
    put_prefixing_implementation(a.orch(), &token, "second");
    assert_eq!(call(a.orch()), "second abc");
    let written = std::time::Instant::now();
    loop {
        let seen = call(b.orch());
        if seen == "second abc" {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(15),
            "the other server still runs the first revision: {seen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!("seen on the other server after {:?}", written.elapsed());
    assert!(a.stop() && b.stop());
}

/// Stores, through `orch` as the holder of `token`, a revision of Z10001 (an implementation
/// of Z10000) that answers its argument after `word` and a space.
fn put_prefixing_implementation(orch: &str, token: &str, word: &str) {
    let code = format!("function Z10000( Z10000K1 ) {{ return '{word} ' + Z10000K1; }}");
    let z14 = json!({"Z1K1": "Z14", "Z14K1": "Z10000",
                     "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}});
    crate::common::put_object(orch, token, "Z10001", &z2("Z10001", z14));
}

/// Two servers, a and b, on one fresh PostgreSQL database under `calls = "approved"`, an
/// editor's token and an admin's, and the servers' data directories (which live as long as
/// they do).
fn approved_cluster() -> (Server, Server, String, String, [tempfile::TempDir; 2]) {
    let url = postgres_server::fresh_database();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let editor = add_editor(&url, dir_a.path());
    let admin = add_user(&url, dir_a.path(), "ada", "admin");
    let config = dir_a.path().join("zeval.toml");
    std::fs::write(&config, "[access]\ncalls = \"approved\"\n").unwrap();
    let args = ["--database-url", &url, "--config", config.to_str().unwrap()];
    let a = Server::start(dir_a.path(), &args, &[]);
    let b = Server::start(dir_b.path(), &args, &[]);
    (a, b, editor, admin, [dir_a, dir_b])
}

/// Under `calls = "approved"`, a node whose cache holds an older revision of an implementation
/// does not run it for anonymous callers once an admin approves a newer one through another
/// node: the approval is of the store's revision, and the copy that runs must be that one.
/// Until 2026-12-06 the other node ran the revision it had cached, which no admin had
/// reviewed, as approved for up to `SHARED_STORE_OBJECT_MAX_AGE` (5 s): an editor could have
/// a draft run for every anonymous caller by having a harmless revision approved. Now the
/// call that finds the older copy is refused, and drops it: the next reads the approved one.
#[test]
fn a_node_does_not_run_its_older_copy_of_a_newly_approved_implementation() {
    let (a, b, editor, admin, _dirs) = approved_cluster();
    // The draft: upper case, never approved. The editor's call reads it into b's cache.
    crate::common::put_js_function(a.orch(), &editor);
    let call = |token: Option<&str>| {
        request(
            "POST",
            &format!("{}/wikifunctions.org/v1/evaluate/", b.orch()),
            token,
            Some(&json!({
                "zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"},
                "bypassCache": true,
            })),
        )
    };
    let drafted = call(Some(&editor));
    assert_eq!(drafted.json()["Z22K1"], "ABC", "{}", drafted.text);
    // The reviewed revision, approved through a.
    put_prefixing_implementation(a.orch(), &editor, "reviewed");
    let approved = request(
        "POST",
        &format!("{}/v1/objects/Z10001/approve", a.orch()),
        Some(&admin),
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.text);
    let since = std::time::Instant::now();
    let mut refused = 0;
    loop {
        let answer = call(None);
        if answer.status == 200 && answer.json()["Z22K1"] == "reviewed abc" {
            break;
        }
        // Refused while b holds the draft.
        assert_eq!(
            answer.status, 403,
            "the draft ran as approved: {}",
            answer.text
        );
        assert!(
            answer.text.contains("not the revision an admin approved"),
            "{}",
            answer.text
        );
        refused += 1;
        assert!(
            since.elapsed() < std::time::Duration::from_secs(15),
            "b never ran the approved revision"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "refused {refused} times; the approved revision ran after {:?}",
        since.elapsed()
    );
    assert!(
        refused > 0,
        "b had read the approved revision at once: no test"
    );
    assert_eq!(refused, 1, "the refusal did not drop b's older copy");
    assert!(a.stop() && b.stop());
}

/// Under `calls = "approved"`, approved code runs only under the signature its function had
/// when approved, as the store has it: a node whose cache holds another copy of the
/// function does not run it under that copy's signature. Here an editor widened Z10000 to
/// take and return any value (which withdrew the approval), had node b read that copy, and
/// narrowed it back to text through node a: until 2026-12-07 b then ran the composition
/// reviewed for text on a Boolean, for anonymous callers, for as long as its copy lasted
/// (`SHARED_STORE_OBJECT_MAX_AGE`, 5 s), and again after every such pair of edits. Now the
/// call that finds the other copy is refused, and drops it: the next reads the store's.
#[test]
fn a_node_does_not_run_approved_code_under_its_older_copy_of_the_functions_signature() {
    let (a, b, editor, admin, _dirs) = approved_cluster();
    let function = |types: &str| {
        z2(
            "Z10000",
            json!({"Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": types, "Z17K2": "Z10000K1",
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": types, "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000"}),
        )
    };
    // Answers its argument: If(true, argument, "no").
    let composition = z2(
        "Z10001",
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K2": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41",
                      "Z802K2": {"Z1K1": "Z18", "Z18K1": "Z10000K1"}, "Z802K3": "no"}}),
    );
    crate::common::put_object(a.orch(), &editor, "Z10000", &function("Z6"));
    crate::common::put_object(a.orch(), &editor, "Z10001", &composition);
    let approved = request(
        "POST",
        &format!("{}/v1/objects/Z10001/approve", a.orch()),
        Some(&admin),
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.text);
    let call = |token: Option<&str>, argument: Value| {
        request(
            "POST",
            &format!("{}/wikifunctions.org/v1/evaluate/", b.orch()),
            token,
            Some(&json!({
                "zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": argument},
                "bypassCache": true,
            })),
        )
    };
    let boolean = json!({"Z1K1": "Z40", "Z40K1": "Z41"});
    crate::common::put_object(a.orch(), &editor, "Z10000", &function("Z1"));
    let widened = call(Some(&editor), boolean.clone());
    assert_eq!(widened.json()["Z22K1"], boolean, "{}", widened.text);
    crate::common::put_object(a.orch(), &editor, "Z10000", &function("Z6"));
    let since = std::time::Instant::now();
    let refused = call(None, boolean.clone());
    assert!(
        since.elapsed() < std::time::Duration::from_secs(4),
        "too slow to find b's copy: no test"
    );
    assert_ne!(
        refused.json()["Z22K1"],
        boolean,
        "ran under b's copy of the signature: {}",
        refused.text
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("declares other arguments"),
        "{}",
        refused.text
    );
    // The refusal dropped b's copy: the next call reads the store's, and runs under it.
    let text = call(None, json!("abc"));
    assert_eq!(text.status, 200, "{}", text.text);
    assert_eq!(text.json()["Z22K1"], "abc", "{}", text.text);
    assert!(a.stop() && b.stop());
}

/// An approval keeps the stored types its function names as they were, and a node runs the
/// approved code only while the types it reads (through its cache, as calls do) are those:
/// here an editor widened type Z10010's key to take any value, an anonymous call had node b
/// read that copy (refused: it is not what was approved), and the editor narrowed it back
/// through node a. With the rule reading the store's copy, b ran the approved composition
/// under its own copy for as long as that lasted (5 s), after every such pair of edits. Now
/// the call that finds the other copy is refused, and drops it.
#[test]
fn a_node_does_not_run_approved_code_under_its_older_copy_of_a_type() {
    let (a, b, editor, admin, _dirs) = approved_cluster();
    let one_key_type = |key_type: &str| {
        z2(
            "Z10010",
            json!({"Z1K1": "Z4", "Z4K1": "Z10010",
                "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": key_type, "Z3K2": "Z10010K1",
                    "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z4K3": "Z101"}),
        )
    };
    let function = z2(
        "Z10020",
        json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z10010", "Z17K2": "Z10020K1",
                "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z10010", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10021", "Z10022"],
            "Z8K5": "Z10020"}),
    );
    // Two approved implementations: the second is compared with the copy the first was.
    let argument = json!({"Z1K1": "Z18", "Z18K1": "Z10020K1"});
    let identity = z2(
        "Z10021",
        json!({"Z1K1": "Z14", "Z14K1": "Z10020", "Z14K2": argument}),
    );
    let either = z2(
        "Z10022",
        json!({"Z1K1": "Z14", "Z14K1": "Z10020",
            "Z14K2": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41",
                "Z802K2": argument, "Z802K3": argument}}),
    );
    crate::common::put_object(a.orch(), &editor, "Z10010", &one_key_type("Z6"));
    crate::common::put_object(a.orch(), &editor, "Z10020", &function);
    crate::common::put_object(a.orch(), &editor, "Z10021", &identity);
    crate::common::put_object(a.orch(), &editor, "Z10022", &either);
    for implementation in ["Z10021", "Z10022"] {
        let approved = request(
            "POST",
            &format!(
                "{}/v1/objects/{implementation}/approve?function=Z10020&function_revision=1",
                a.orch()
            ),
            Some(&admin),
            None,
        );
        assert_eq!(approved.status, 200, "{}", approved.text);
    }
    let call = |token: Option<&str>, key: Value| {
        request(
            "POST",
            &format!("{}/wikifunctions.org/v1/evaluate/", b.orch()),
            token,
            Some(&json!({
                "zobject": {"Z1K1": "Z7", "Z7K1": "Z10020",
                    "Z10020K1": {"Z1K1": "Z10010", "Z10010K1": key}},
                "bypassCache": true,
            })),
        )
    };
    // (Not called on b before: its cache would hold the approved copy for 5 s, and b run
    // under it, as approved.)
    let boolean = json!({"Z1K1": "Z40", "Z40K1": "Z41"});
    crate::common::put_object(a.orch(), &editor, "Z10010", &one_key_type("Z1"));
    let cached = std::time::Instant::now();
    let widened = call(None, boolean.clone());
    assert_eq!(widened.status, 403, "{}", widened.text);
    assert!(
        widened.text.contains("Z10010 differs; approving it again"),
        "{}",
        widened.text
    );
    crate::common::put_object(a.orch(), &editor, "Z10010", &one_key_type("Z6"));
    let refused = call(None, boolean.clone());
    // b's copy lasts 5 s from the call that read it.
    assert!(
        cached.elapsed() < std::time::Duration::from_secs(4),
        "too slow to find b's copy: no test"
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("the copy of it this call read is not the store's"),
        "{}",
        refused.text
    );
    // The refusal dropped b's copy: the next call reads the store's, and runs under it.
    let text = call(None, json!("abc"));
    assert_eq!(text.status, 200, "{}", text.text);
    assert_eq!(text.json()["Z22K1"]["Z10010K1"], "abc", "{}", text.text);
    assert!(a.stop() && b.stop());
}

/// A server on a fresh PostgreSQL database with a call deadline of `deadline_ms` and no
/// result cache, and Z10000 "upper case" stored (not yet called); the database's URL and the
/// server's data directory, which lives as long as it.
fn server_with_a_function(deadline_ms: &str) -> (Server, String, tempfile::TempDir) {
    let url = postgres_server::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let token = add_editor(&url, dir.path());
    let server = Server::start(
        dir.path(),
        &["--database-url", &url],
        &[
            ("ZEVAL_CALL_TIMEOUT_MS", deadline_ms),
            ("ZEVAL_CACHE", "false"),
        ],
    );
    crate::common::put_js_function(server.orch(), &token);
    (server, url, dir)
}

/// An anonymous call of `zid` with "abc" as its argument: the answer, and how long it took.
fn timed_call(server: &Server, zid: &str) -> (crate::common::Answer, std::time::Duration) {
    let started = std::time::Instant::now();
    let answer = request(
        "POST",
        &format!("{}/wikifunctions.org/v1/evaluate/", server.orch()),
        None,
        Some(&json!({"zobject": {"Z1K1": "Z7", "Z7K1": zid, format!("{zid}K1"): "abc"}})),
    );
    (answer, started.elapsed())
}

/// The answer of a call that must end by its deadline (Z558), at most 3.5 s after it was sent
/// (a deadline of 1.5 s).
fn assert_ended_by_the_deadline(answer: &crate::common::Answer, took: std::time::Duration) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.contains("Z558"),
        "an answer without the deadline's error: {}",
        answer.text
    );
    assert!(
        took < std::time::Duration::from_millis(3_500),
        "answered after {took:?}"
    );
}

/// A call answers by its deadline while a table it reads is locked elsewhere (an
/// administrator's `LOCK TABLE`, a long migration): its statement is cancelled at the
/// deadline. It ran to PostgreSQL's `statement_timeout` (30 s) until 2026-12-06, holding its
/// work slot, however short the call's deadline.
#[test]
fn a_call_answers_by_its_deadline_while_a_table_it_reads_is_locked() {
    let (server, url, _dir) = server_with_a_function("1500");
    let call = |zid: &str| timed_call(&server, zid);
    let mut locker = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    // A function no call has read yet: its fetch reads the locked table.
    let (answer, took) = call("Z10100");
    lock.rollback().unwrap();
    assert_ended_by_the_deadline(&answer, took);
    // The store answers as before once the lock is gone.
    let (answer, _) = call("Z10000");
    assert_eq!(answer.json()["Z22K1"], "ABC", "{}", answer.text);
}

/// A call answers by its deadline while the database takes its statements and never
/// answers (every backend serving the server stopped: a hung or swapping server): the
/// connection gives up on its statement `CUT_AFTER_DEADLINE` past the deadline and is
/// closed. Until 2026-12-06 the request waited as long as the database did, here for ever,
/// holding its work slot. The server answers as before once the database does.
#[test]
fn a_call_answers_by_its_deadline_while_the_database_does_not_answer() {
    let (server, url, _dir) = server_with_a_function("1500");
    let call = |zid: &str| timed_call(&server, zid);
    let stopped = postgres_server::StoppedBackends::of(&url);
    // A function no call has read yet: its fetch asks the database.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = sender.send(call("Z10100"));
        });
        let answered = receiver.recv_timeout(std::time::Duration::from_secs(10));
        drop(stopped);
        let (answer, took) = answered.expect("no answer within 10 s while the database hung");
        assert_ended_by_the_deadline(&answer, took);
    });
    let (answer, _) = call("Z10000");
    assert_eq!(answer.json()["Z22K1"], "ABC", "{}", answer.text);
    assert!(server.stop());
}

/// Requests with made-up tokens (any route, `/healthz` here, before any work slot) check
/// them on the store's connections; with the `users` table locked elsewhere each check held
/// its connection up to the 30 s statement timeout, and 64 of them held all 8, so another
/// client's call could not read the objects it needed. Token checks now take two connections
/// at most, each for at most a second (`MAX_TOKEN_CHECKS_AT_ONCE`, `TOKEN_CHECK_TIME`),
/// which `pg_stat_activity` shows.
#[test]
fn made_up_tokens_cannot_take_every_database_connection() {
    let (server, url, _dir) = server_with_a_function("3000");
    let orch = server.orch().to_owned();
    let mut locker = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..64)
        .map(|n| {
            let (orch, stop) = (orch.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let junk = format!("made-up-{n}-{}", statuses.len());
                    statuses
                        .push(request("GET", &format!("{orch}/healthz"), Some(&junk), None).status);
                }
                statuses
            })
        })
        .collect();
    // The connections the server holds waiting for the lock: token checks, two at most.
    let mut observer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut most_waiting = 0;
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = 'zeval' AND datname = current_database()
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        most_waiting = most_waiting.max(waiting);
    }
    let started = std::time::Instant::now();
    // Z10000 has not been called: its objects are read from the database now.
    let answer = crate::common::call(&orch, None, "abc");
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    lock.rollback().unwrap();
    let statuses: Vec<u16> = attackers
        .into_iter()
        .flat_map(|attacker| attacker.join().unwrap())
        .collect();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["Z22K1"],
        "ABC",
        "the call beside made-up tokens, after {took:?}: {}",
        answer.text
    );
    // 429: the client's third check waiting (`token_checks`).
    assert!(
        statuses
            .iter()
            .all(|status| [401, 429, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        (1..=2).contains(&most_waiting),
        "{most_waiting} connections held by token checks at once"
    );
}
