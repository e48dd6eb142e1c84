use zeval_store::{
    ArtifactOutcome, Compilation, MAX_HISTORY_REVISIONS, SqliteStore, StoreError, StoredArtifact,
};

use crate::{function, implementation, z2};

#[test]
fn concurrent_creates_never_share_a_zid() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open_in(dir.path()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| store.create(&function("Z0", "f"), "a").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut zids: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    zids.sort();
    zids.dedup();
    assert_eq!(zids.len(), 40);
}

#[test]
fn data_survives_reopening_and_the_file_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open_in(dir.path().join("nested")).unwrap();
        store
            .put("Z10001", &z2("Z10001", "kept", "l"), "alice")
            .unwrap();
        store
            .put("Z10001", &z2("Z10001", "kept 2", "l"), "alice")
            .unwrap();
    }
    let store = SqliteStore::open_in(dir.path().join("nested")).unwrap();
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "kept 2");
    assert_eq!(
        store
            .history("Z10001", 0, MAX_HISTORY_REVISIONS)
            .unwrap()
            .revisions
            .len(),
        2
    );
    let path = store.path().unwrap().to_path_buf();
    drop(store);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // Version 5: objects, users, approvals (1), compiled artifacts (2), ranking figures (3),
    // artifacts' sizes and compilations' authors (4), approvals' signatures (5).
    assert_eq!((mode.as_str(), version), ("wal", 5));
}

/// A store of version 3 gets its artifacts' sizes and its compilations' authors from
/// migration 4, so the budget counts what was stored before it.
#[test]
fn migration_4_sizes_artifacts_names_authors_and_drops_what_no_call_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = StoredArtifact {
        language: "c".into(),
        compiler: "clang".into(),
        outcome: ArtifactOutcome::Compiled(vec![0; 1000]),
    };
    let compilation = |zid, key, author_budget| Compilation {
        zid,
        revision: 1,
        key,
        artifact: Some(&artifact),
        author_budget,
    };
    let path = {
        let store = SqliteStore::open_in(dir.path()).unwrap();
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "a"), "ed")
            .unwrap();
        store
            .record_compilation(&compilation("Z10001", "a", u64::MAX))
            .unwrap();
        store.path().unwrap().to_path_buf()
    };
    // Back to version 3's shape, with what version 3 stored.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "DROP INDEX compilations_by_key;
         DROP INDEX compilations_by_author;
         ALTER TABLE compilations DROP COLUMN author;
         ALTER TABLE artifacts DROP COLUMN bytes;
         ALTER TABLE approvals DROP COLUMN signature;
         ALTER TABLE approvals DROP COLUMN signature_revision;
         INSERT INTO artifacts (key, language, compiler, wasm, error, created_ms)
             VALUES ('unnamed', 'c', 'clang', x'00', NULL, 0),
                    ('earlier', 'c', 'clang', x'00', NULL, 0);
         INSERT INTO compilations (zid, revision, key) VALUES ('Z10001', 7, 'earlier');
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(raw);
    let store = SqliteStore::open_in(dir.path()).unwrap();
    // What no call can reach is gone: a compilation of a revision that is not current, and
    // artifacts no compilation names.
    assert_eq!(store.artifact_keys().unwrap(), ["a"]);
    assert_eq!(store.compilation("Z10001", 7).unwrap(), None);
    store
        .put("Z10002", &implementation("Z10002", "Z10000", "b"), "ed")
        .unwrap();
    assert!(matches!(
        store.record_compilation(&compilation("Z10002", "b", 1500)),
        Err(StoreError::OverBudget { bytes: 2000, .. })
    ));
    store
        .record_compilation(&compilation("Z10002", "b", 2000))
        .unwrap();
}

/// A store of version 4 gets, from migration 5, the signature each approval's function had
/// when it was approved, by the function's history: the upgrade leaves every approved
/// implementation running for anonymous callers under the signature it was approved under,
/// and an edit made before the upgrade is not taken for approved.
#[test]
fn migration_5_keeps_the_signature_approvals_ran_under() {
    let dir = tempfile::tempdir().unwrap();
    let admin = zeval_store::User {
        name: "ada".into(),
        role: zeval_store::Role::Admin,
    };
    let path = {
        let store = SqliteStore::open_in(dir.path()).unwrap();
        store.put("Z10000", &function("Z10000", "f"), "ed").unwrap();
        for zid in ["Z10001", "Z10002"] {
            store
                .put(zid, &implementation(zid, "Z10000", "a"), "ed")
                .unwrap();
            store.approve(zid, &admin).unwrap();
        }
        // Approved, then edited: no approval of a current revision to keep one for.
        store
            .put("Z10002", &implementation("Z10002", "Z10000", "b"), "ed")
            .unwrap();
        // The function edited after the approval, before the upgrade: the approval keeps the
        // signature it was given under, not this one.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut widened = function("Z10000", "f");
        widened["Z2K2"]["Z8K2"] = serde_json::json!("Z1");
        store.put("Z10000", &widened, "ed").unwrap();
        store.path().unwrap().to_path_buf()
    };
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "ALTER TABLE approvals DROP COLUMN signature;
         ALTER TABLE approvals DROP COLUMN signature_revision;
         PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(raw);
    let store = SqliteStore::open_in(dir.path()).unwrap();
    let approved = store.approved_object("Z10001").unwrap().unwrap();
    assert_eq!(
        approved.signature,
        Some(serde_json::json!({"Z8K1": [], "Z8K2": "Z6"}))
    );
    assert_eq!(store.approval("Z10002").unwrap().unwrap().signature, None);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeval.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_new_data_dir_is_seeded_with_the_catalogue_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_seeded(dir.path()).unwrap();
    let count = store.count().unwrap();
    assert_eq!(count as usize, zeval_catalogue::zids().count());
    assert_eq!(
        store.get("Z802").unwrap().as_ref(),
        zeval_catalogue::get("Z802")
    );
    assert!(store.count_by_type().unwrap()["Z14"] > 50);
    assert_eq!(
        store
            .search(Some("Z8"), Some("if"), 1000)
            .unwrap()
            .iter()
            .filter(|h| h.zid == "Z802")
            .count(),
        1
    );
    drop(store);
    let store = SqliteStore::open_seeded(dir.path()).unwrap();
    assert_eq!(store.count().unwrap(), count);
    assert_eq!(
        store
            .history("Z802", 0, MAX_HISTORY_REVISIONS)
            .unwrap()
            .revisions
            .len(),
        1
    );
}

/// Where [`killed_writer_child`] writes; set only when the parent test runs it.
const CRASH_DIR_VARIABLE: &str = "ZEVAL_STORE_CRASH_TEST_DIR";

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::killed_writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_VARIABLE, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acknowledged = 0u64;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("acknowledged ") {
            acknowledged = n.parse().unwrap();
            if acknowledged == 30 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acknowledged, 30);

    let store = SqliteStore::open_in(dir.path()).unwrap();
    // Every revision, page by page (the writer may have got far past one page).
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .history("Z10001", after, MAX_HISTORY_REVISIONS)
            .unwrap();
        history.extend(page.revisions);
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let current = store.current_revision("Z10001").unwrap().unwrap();
    assert!(
        current >= acknowledged,
        "revision {current} < acknowledged {acknowledged}"
    );
    assert_eq!(history.len() as u64, current);
    assert!(
        history
            .iter()
            .enumerate()
            .all(|(i, r)| r.revision == i as u64 + 1)
    );
    assert_eq!(
        store.get("Z10001").unwrap().unwrap(),
        history.last().unwrap().object
    );
}

#[test]
#[ignore = "the writer process of a_killed_writer_loses_nothing_it_acknowledged"]
fn killed_writer_child() {
    let dir = std::env::var(CRASH_DIR_VARIABLE)
        .expect("run by a_killed_writer_loses_nothing_it_acknowledged");
    let store = SqliteStore::open_in(dir).unwrap();
    for n in 1.. {
        let revision = store
            .put(
                "Z10001",
                &z2("Z10001", &"x".repeat(n % 5000), "l"),
                "writer",
            )
            .unwrap();
        println!("acknowledged {revision}");
    }
}

/// A store written by a version without the bound may hold a ZID past `i64`'s range; the
/// next allocations then overflowed onto one ZID and overwrote each other.
#[test]
fn a_stored_zid_past_the_maximum_never_makes_creates_collide() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open_in(dir.path()).unwrap();
        store.put("Z10000", &z2("Z10000", "x", "l"), "a").unwrap();
        let legacy = rusqlite::Connection::open(store.path().unwrap()).unwrap();
        legacy
            .execute(
                "INSERT INTO objects (zid, number, search_text, revision, json)
                 VALUES ('Z9223372036854775807', 9223372036854775807, '', 1, ?1)",
                [z2("Z9223372036854775807", "legacy", "l").to_string()],
            )
            .unwrap();
    }
    let store = SqliteStore::open_in(dir.path()).unwrap();
    let first = store.create(&function("Z0", "first"), "alice").unwrap();
    let second = store.create(&function("Z0", "second"), "bob").unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("Z10001", "Z10002"));
    for (zid, author) in [(&first, "alice"), (&second, "bob")] {
        let history = store
            .history(zid, 0, MAX_HISTORY_REVISIONS)
            .unwrap()
            .revisions;
        assert_eq!(history.len(), 1, "{zid} was written once");
        assert_eq!(history[0].author, author);
    }
}

/// Another process holding the write lock stalls our writes for up to the busy timeout, but
/// reads and token checks go on meanwhile.
#[test]
fn reads_do_not_wait_for_a_write_held_up_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open_in(dir.path()).unwrap());
    store.put("Z10000", &z2("Z10000", "x", "l"), "a").unwrap();
    let token = store.add_user("ann", zeval_store::Role::Editor).unwrap();
    let other_process = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.put("Z10000", &z2("Z10000", "y", "l"), "a"))
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!writer.is_finished(), "the write waits for the lock");
    let started = std::time::Instant::now();
    assert_eq!(store.get("Z10000").unwrap().unwrap()["Z2K2"], "x");
    assert_eq!(store.authenticate(&token).unwrap().unwrap().name, "ann");
    assert_eq!(store.search(None, Some("l"), 10).unwrap().len(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "reads took {:?}",
        started.elapsed()
    );
    assert!(
        !writer.is_finished(),
        "the reads ran while the write waited"
    );
    other_process.execute_batch("COMMIT").unwrap();
    assert_eq!(writer.join().unwrap().unwrap(), 2);
    assert_eq!(store.get("Z10000").unwrap().unwrap()["Z2K2"], "y");
}

/// A database file someone else could have written is refused, before SQLite reads it:
/// until 2026-12-06 any file at the path was opened, and whoever created it first chose the
/// store's objects, users and tokens.
#[test]
fn a_database_file_others_could_have_written_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open_in(dir.path()).unwrap());
    let database = dir.path().join(zeval_store::DATABASE_FILE);
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = SqliteStore::open_in(dir.path()).map(drop).unwrap_err();
    assert!(
        refused.to_string().contains("writable by others"),
        "{refused}"
    );
    // Writable by this process's own group (Kubernetes' `fsGroup` makes volume files so).
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o664)).unwrap();
    SqliteStore::open_in(dir.path()).unwrap();
    // A link to a database elsewhere.
    let linked = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&database, linked.path().join(zeval_store::DATABASE_FILE)).unwrap();
    let refused = SqliteStore::open_in(linked.path()).map(drop).unwrap_err();
    assert!(
        refused.to_string().contains("not a regular file"),
        "{refused}"
    );
    // Another user's (only root can make one here).
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&database, Some(65534), Some(65534)).unwrap();
        let refused = SqliteStore::open_in(dir.path()).map(drop).unwrap_err();
        assert!(
            refused.to_string().contains("owned by uid 65534"),
            "{refused}"
        );
    }
}
