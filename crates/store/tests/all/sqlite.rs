use serde_json::json;
use zeval_store::{FIRST_USER_ZID, MAX_ZID_NUMBER, ObjectSource, SqliteStore, StoreError};

use crate::{function, z2};

#[test]
fn every_put_adds_a_revision_with_author_and_time() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        store
            .put("Z10001", &z2("Z10001", "one", "first"), "alice")
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .put("Z10001", &z2("Z10001", "two", "second"), "bob")
            .unwrap(),
        2
    );
    let history = store.history("Z10001").unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| (r.revision, r.author.as_str()))
            .collect::<Vec<_>>(),
        [(1, "alice"), (2, "bob")]
    );
    assert_eq!(history[0].object["Z2K2"], "one");
    assert!(
        history[1].timestamp_ms >= history[0].timestamp_ms
            && history[0].timestamp_ms > 1_700_000_000_000
    );
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "two");
    assert_eq!(store.current_revision("Z10001").unwrap(), Some(2));
    assert!(store.history("Z10002").unwrap().is_empty());
    assert_eq!(store.get("Z10002").unwrap(), None);
}

#[test]
fn a_z2_whose_z2k1_does_not_match_is_refused_and_nothing_is_stored() {
    let store = SqliteStore::open_in_memory().unwrap();
    let err = store
        .put("Z10001", &z2("Z10002", "x", "x"), "alice")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref m) if m.contains("Z10002")),
        "{err}"
    );
    assert!(matches!(
        store.put("Z10001", &json!({"Z1K1": "Z6"}), "a"),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put("nonsense", &z2("nonsense", "x", "x"), "a"),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.count().unwrap(), 0);
    assert!(store.history("Z10001").unwrap().is_empty());
}

#[test]
fn a_failed_batch_leaves_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .put("Z10001", &z2("Z10001", "before", "l"), "alice")
        .unwrap();
    let batch = vec![
        ("Z10001".to_string(), z2("Z10001", "after", "l")),
        ("Z10002".to_string(), z2("Z10002", "new", "l")),
        ("Z10003".to_string(), z2("Z99999", "mismatch", "l")),
    ];
    assert!(store.put_all(&batch, "bob").is_err());
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "before");
    assert_eq!(store.history("Z10001").unwrap().len(), 1);
    assert_eq!(store.get("Z10002").unwrap(), None);
    assert_eq!(store.put_all(&batch[..2], "bob").unwrap(), [2, 1]);
}

#[test]
fn create_allocates_from_z10000_and_rewrites_the_placeholder() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .put("Z802", &z2("Z802", "built-in", "l"), "seed")
        .unwrap();
    let mut new = function("Z0", "Reverse");
    new.as_object_mut().unwrap().remove("Z2K1");
    new["Z2K2"]["Z8K1"] = json!(["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z0K1"}]);
    let first = store.create(&new, "alice").unwrap();
    assert_eq!(first, format!("Z{FIRST_USER_ZID}"));
    let stored = store.get(&first).unwrap().unwrap();
    assert_eq!(stored["Z2K1"], json!({"Z1K1": "Z6", "Z6K1": "Z10000"}));
    assert_eq!(stored["Z2K2"]["Z8K5"], "Z10000");
    assert_eq!(stored["Z2K2"]["Z8K1"][1]["Z17K2"], "Z10000K1");
    assert_eq!(
        stored
            .as_object()
            .unwrap()
            .keys()
            .take(2)
            .collect::<Vec<_>>(),
        ["Z1K1", "Z2K1"]
    );

    assert_eq!(
        store.create(&function("Z0", "Second"), "alice").unwrap(),
        "Z10001"
    );
    store
        .put("Z10050", &z2("Z10050", "far", "l"), "bob")
        .unwrap();
    assert_eq!(store.next_zid().unwrap(), "Z10051");
    assert_eq!(
        store.create(&function("Z0", "Third"), "alice").unwrap(),
        "Z10051"
    );
    assert!(matches!(
        store.create(&function("Z12345", "named"), "alice"),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.count().unwrap(), 5);
}

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
fn search_by_type_and_label() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .put("Z10001", &function("Z10001", "Reverse a String"), "a")
        .unwrap();
    store
        .put("Z10002", &function("Z10002", "Join 100% strings"), "a")
        .unwrap();
    store
        .put("Z10003", &z2("Z10003", "text", "reverse text"), "a")
        .unwrap();
    let zids =
        |hits: Vec<zeval_store::ObjectSummary>| hits.into_iter().map(|h| h.zid).collect::<Vec<_>>();
    assert_eq!(
        zids(store.search(Some("Z8"), None, 10).unwrap()),
        ["Z10001", "Z10002"]
    );
    assert_eq!(
        zids(store.search(None, Some("REVERSE"), 10).unwrap()),
        ["Z10001", "Z10003"]
    );
    assert_eq!(
        zids(store.search(Some("Z8"), Some("reverse"), 10).unwrap()),
        ["Z10001"]
    );
    assert_eq!(
        zids(store.search(None, Some("100%"), 10).unwrap()),
        ["Z10002"]
    );
    assert_eq!(
        zids(store.search(None, Some("0%"), 10).unwrap()),
        ["Z10002"]
    );
    assert!(store.search(None, Some("%"), 10).unwrap().len() == 1);
    assert_eq!(
        zids(store.search(None, Some("Z10003"), 10).unwrap()),
        ["Z10003"]
    );
    assert_eq!(store.search(None, None, 2).unwrap().len(), 2);
    let hit = &store.search(None, Some("join"), 1).unwrap()[0];
    assert_eq!(
        (hit.type_zid.as_deref(), hit.label.as_deref(), hit.revision),
        (Some("Z8"), Some("Join 100% strings"), 1)
    );
    let by_type = store.count_by_type().unwrap();
    assert_eq!((by_type["Z8"], by_type["Z6"]), (2, 1));
}

#[test]
fn seeding_is_idempotent_and_keeps_edits() {
    let store = SqliteStore::open_in_memory().unwrap();
    let objects = [("Z1", z2("Z1", "a", "one")), ("Z2", z2("Z2", "b", "two"))];
    assert_eq!(store.seed(objects.iter().map(|(z, v)| (*z, v))).unwrap(), 2);
    store
        .put("Z1", &z2("Z1", "edited", "one"), "alice")
        .unwrap();
    assert_eq!(store.seed(objects.iter().map(|(z, v)| (*z, v))).unwrap(), 0);
    assert_eq!(store.get("Z1").unwrap().unwrap()["Z2K2"], "edited");
    assert_eq!(
        store.history("Z2").unwrap()[0].author,
        zeval_store::CATALOGUE_AUTHOR
    );
}

#[test]
fn a_failed_seed_leaves_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    let objects = [
        ("Z1", z2("Z1", "a", "one")),
        ("Z2", z2("Z3", "b", "mismatch")),
    ];
    assert!(store.seed(objects.iter().map(|(z, v)| (*z, v))).is_err());
    assert_eq!(store.count().unwrap(), 0);
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
    assert_eq!(store.history("Z10001").unwrap().len(), 2);
    let path = store.path().unwrap().to_path_buf();
    drop(store);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // Version 3: objects, users, approvals (1), compiled artifacts (2), ranking figures (3).
    assert_eq!((mode.as_str(), version), ("wal", 3));
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
fn fetch_returns_only_stored_zids() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let found = store
        .fetch(&["Z10001".into(), "Z10002".into(), "Z10001".into()])
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["Z10001"]);
}

#[test]
fn hostile_nesting_is_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut deep = json!("x");
    for _ in 0..2_000 {
        deep = zeval_zobject::Value::Array(vec![deep]);
    }
    let mut object = z2("Z10001", "x", "l");
    object["Z2K2"] = deep;
    assert!(matches!(
        store.put("Z10001", &object, "a"),
        Err(StoreError::Invalid(_))
    ));
    zeval_zobject::depth::drop_iteratively(object);
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
    assert_eq!(store.history("Z802").unwrap().len(), 1);
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
    let history = store.history("Z10001").unwrap();
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

#[test]
fn zids_past_the_maximum_are_refused_on_every_write_path() {
    let store = SqliteStore::open_in_memory().unwrap();
    let too_large = format!("Z{}", MAX_ZID_NUMBER + 1);
    let refused = |result: Result<(), StoreError>| {
        matches!(result, Err(StoreError::ZidOutOfRange { zid, max })
            if zid == too_large && max == MAX_ZID_NUMBER)
    };
    assert!(refused(
        store
            .put(&too_large, &z2(&too_large, "x", "l"), "a")
            .map(drop)
    ));
    let batch = [
        ("Z10001".to_string(), z2("Z10001", "ok", "l")),
        (too_large.clone(), z2(&too_large, "x", "l")),
    ];
    assert!(refused(store.put_all(&batch, "import").map(drop)));
    let seeded = z2(&too_large, "x", "l");
    assert!(refused(
        store.seed([(too_large.as_str(), &seeded)]).map(drop)
    ));
    assert_eq!(
        store.count().unwrap(),
        0,
        "nothing of a refused batch is written"
    );
    let largest = format!("Z{MAX_ZID_NUMBER}");
    assert_eq!(
        store.put(&largest, &z2(&largest, "x", "l"), "a").unwrap(),
        1
    );
}

#[test]
fn allocation_after_the_largest_zid_takes_the_lowest_free_one() {
    let store = SqliteStore::open_in_memory().unwrap();
    let largest = format!("Z{MAX_ZID_NUMBER}");
    store.put(&largest, &z2(&largest, "top", "l"), "a").unwrap();
    store.put("Z10001", &z2("Z10001", "one", "l"), "a").unwrap();
    assert_eq!(store.next_zid().unwrap(), "Z10000");
    assert_eq!(store.create(&function("Z0", "f"), "a").unwrap(), "Z10000");
    assert_eq!(store.create(&function("Z0", "g"), "a").unwrap(), "Z10002");
    assert_eq!(store.get(&largest).unwrap().unwrap()["Z2K2"], "top");
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "one");
    assert_eq!(store.current_revision(&largest).unwrap(), Some(1));
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
        let history = store.history(zid).unwrap();
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
