//! What only the PostgreSQL store has: its migrations under an advisory lock, its pool and
//! statement bounds.

use std::time::{Duration, Instant};

use zeval_store::{PostgresLimits, PostgresStore, StoreError};

use crate::postgres_server::{StoppedBackends, fresh_database};
use crate::z2;

fn raw(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

#[test]
fn nodes_starting_at_once_migrate_once() {
    let url = fresh_database();
    let stores: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PostgresStore::connect(&url)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for store in &stores {
        assert!(store.is_ok(), "{store:?}");
    }
    let mut client = raw(&url);
    let versions = client
        .query("SELECT version FROM schema_version", &[])
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].get::<_, i64>(0), 3);
    // Connecting again leaves the data and the version alone.
    stores[0]
        .as_ref()
        .unwrap()
        .put("Z10001", &z2("Z10001", "x", "l"), "a")
        .unwrap();
    let again = PostgresStore::connect(&url).unwrap();
    assert_eq!(again.count().unwrap(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let url = fresh_database();
    drop(PostgresStore::connect(&url).unwrap());
    raw(&url)
        .batch_execute("UPDATE schema_version SET version = 99")
        .unwrap();
    let err = PostgresStore::connect(&url).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// What a read stuck behind the lock gave, and how long it took.
type StuckRead = (Result<Option<serde_json::Value>, StoreError>, Duration);

/// A store of two connections with `Z10001` stored, and `check` run on it while both
/// connections are stuck (each reading `Z10001` behind a table lock held elsewhere, for
/// `statement_timeout`); then what each stuck read gave, and how long it took.
fn with_every_connection_stuck(
    pool_wait: Duration,
    statement_timeout: Duration,
    check: impl FnOnce(&PostgresStore),
) -> (PostgresStore, Vec<StuckRead>) {
    let url = fresh_database();
    let limits = PostgresLimits {
        pool_size: 2,
        pool_wait,
        connect_timeout: Duration::from_secs(5),
        statement_timeout,
    };
    let store = PostgresStore::connect_with(&url, limits).unwrap();
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let mut locker = raw(&url);
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let stuck = std::thread::scope(|scope| {
        let stuck: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    (store.get("Z10001"), started.elapsed())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        check(&store);
        stuck
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    });
    lock.rollback().unwrap();
    (store, stuck)
}

/// With every connection stuck (a table lock held elsewhere), a further caller waits
/// `pool_wait` for one and fails as busy (the server's 503); the stuck statements end at
/// `statement_timeout`, busy too (they were a 500).
#[test]
fn the_pool_and_statements_are_bounded() {
    let pool_wait = Duration::from_millis(300);
    let (store, stuck) =
        with_every_connection_stuck(pool_wait, Duration::from_millis(1_500), |store| {
            let started = Instant::now();
            let err = store.get("Z10001").unwrap_err();
            let waited = started.elapsed();
            assert!(
                matches!(err, StoreError::Busy(ref m) if m.contains("all 2 database connections")),
                "{err}"
            );
            assert!(
                waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_200),
                "{waited:?}"
            );
        });
    for (result, took) in stuck {
        let err = result.unwrap_err();
        assert!(
            matches!(err, StoreError::Busy(ref m) if m.contains("ran past its time limit")),
            "{err}"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // The connections that timed out are usable again.
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "x");
}

/// A call's fetch waits for a connection no later than the call's deadline
/// (`DeadlineExceeded`), not the whole pool wait.
#[test]
fn a_fetch_waits_for_a_connection_no_later_than_its_deadline() {
    use zeval_store::ObjectSource;
    let zids = ["Z10001".to_owned()];
    let (store, _) = with_every_connection_stuck(
        Duration::from_secs(3),
        Duration::from_millis(2_500),
        |store| {
            let started = Instant::now();
            let outcome = store.fetch_before(&zids, Some(started + Duration::from_millis(200)));
            let waited = started.elapsed();
            assert!(
                matches!(outcome, Err(StoreError::DeadlineExceeded { ref zids }) if zids == "Z10001"),
                "{outcome:?}"
            );
            assert!(waited < Duration::from_millis(1_500), "waited {waited:?}");
        },
    );
    let far = Some(Instant::now() + Duration::from_secs(60));
    assert_eq!(store.fetch_before(&zids, far).unwrap().len(), 1);
}

/// A statement a call sends is cancelled at the call's deadline (`call_deadline::within`):
/// behind a table lock held elsewhere it ran to the statement timeout (30 s by default, 5 s
/// here) until 2026-12-06, however little of the call's time was left. The connection it ran
/// on is not reused, and the store answers as before once the lock is gone.
#[test]
fn a_calls_statement_is_cancelled_at_its_deadline() {
    let url = fresh_database();
    let limits = PostgresLimits {
        pool_size: 2,
        pool_wait: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    };
    let store = PostgresStore::connect_with(&url, limits).unwrap();
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let mut locker = raw(&url);
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = Instant::now();
    let outcome = zeval_store::call_deadline::within(started + Duration::from_millis(300), || {
        store.get("Z10001")
    });
    let took = started.elapsed();
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(took < Duration::from_millis(2_000), "took {took:?}");
    lock.rollback().unwrap();
    // Both connections again, one of them new.
    std::thread::scope(|scope| {
        let reads: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| store.get("Z10001")))
            .collect();
        for read in reads {
            assert_eq!(read.join().unwrap().unwrap().unwrap()["Z2K2"], "x");
        }
    });
}

/// Past a call's deadline no connection is lent: it would only be cancelled and closed at
/// once, a reconnection for every read of a call out of time. No connection is opened.
#[test]
fn no_connection_is_lent_past_a_calls_deadline() {
    let url = fresh_database();
    let store = PostgresStore::connect(&url).unwrap();
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let mut observer = raw(&url);
    let mut connections = || -> i64 {
        observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = 'zeval' AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = connections();
    // Two at once: the idle connection would serve one of them.
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let reads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    zeval_store::call_deadline::within(Instant::now(), || store.get("Z10001"))
                })
            })
            .collect();
        reads.into_iter().map(|read| read.join().unwrap()).collect()
    });
    for outcome in outcomes {
        assert!(
            matches!(outcome, Err(StoreError::DeadlineExceeded { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(
        connections(),
        before,
        "a connection was opened past the deadline"
    );
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "x");
}

/// A search runs at most its own time limit (`statement_timeout` set for it alone), then
/// fails with `Busy` (the server's 503), instead of the pool's 30 s statement timeout: a text
/// that matches little reads every label, and the route is anonymous. Within the limit it
/// answers.
#[test]
fn a_search_stops_at_its_time_limit() {
    let url = fresh_database();
    let label = "a label that matches nothing asked for ".repeat(100);
    let objects: Vec<(String, serde_json::Value)> = (0..3_000)
        .map(|n| {
            let zid = format!("Z{}", 20_000 + n);
            let object = z2(&zid, "x", &label);
            (zid, object)
        })
        .collect();
    let store = PostgresStore::connect(&url)
        .unwrap()
        .with_search_time_limit(Duration::from_millis(1));
    store
        .seed(objects.iter().map(|(zid, object)| (zid.as_str(), object)))
        .unwrap();
    let outcome = store.search(None, Some("zzz not there"), 10);
    assert!(matches!(outcome, Err(StoreError::Busy(_))), "{outcome:?}");
    assert!(store.get("Z20000").unwrap().is_some());
    let store = store.with_search_time_limit(zeval_store::SEARCH_TIME_LIMIT);
    assert_eq!(store.search(None, Some("zzz not there"), 10).unwrap(), []);
    assert_eq!(store.search(None, Some("Z20001"), 10).unwrap().len(), 1);
}

/// Scans (searches, history pages, counts) take every connection of the pool but one: a
/// lookup (a token check, an object) still finds one while scans are stuck. One client's
/// searches could hold the whole pool, and every token check waited, then failed as busy.
#[test]
fn scans_leave_a_connection_for_lookups() {
    let url = fresh_database();
    let limits = PostgresLimits {
        pool_size: 2,
        pool_wait: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
    };
    let store = PostgresStore::connect_with(&url, limits)
        .unwrap()
        .with_search_time_limit(Duration::from_secs(3));
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let mut locker = raw(&url);
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    std::thread::scope(|scope| {
        let stuck = scope.spawn(|| store.search(None, Some("l"), 10));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let second = store.search(None, Some("l"), 10);
        assert!(
            matches!(second, Err(StoreError::Busy(ref m)) if m.contains("database connections")),
            "{second:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
        let started = Instant::now();
        assert!(store.authenticate("not a token").unwrap().is_none());
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "a token check waited {:?} beside a stuck search",
            started.elapsed()
        );
        lock.rollback().unwrap();
        assert!(stuck.join().unwrap().is_ok());
    });
    drop(locker);
    assert!(store.search(None, Some("l"), 10).is_ok());
}

/// The SQLite store's `migration_4_sizes_artifacts_names_authors_and_drops_what_no_call_reaches`,
/// for PostgreSQL's migration 2.
#[test]
fn migration_2_sizes_artifacts_names_authors_and_drops_what_no_call_reaches() {
    let url = fresh_database();
    let artifact = zeval_store::StoredArtifact {
        language: "c".into(),
        compiler: "clang".into(),
        outcome: zeval_store::ArtifactOutcome::Compiled(vec![0; 1000]),
    };
    let compilation = |zid, key, author_budget| zeval_store::Compilation {
        zid,
        revision: 1,
        key,
        artifact: Some(&artifact),
        author_budget,
    };
    {
        let store = PostgresStore::connect(&url).unwrap();
        store
            .put(
                "Z10001",
                &crate::implementation("Z10001", "Z10000", "a"),
                "ed",
            )
            .unwrap();
        store
            .record_compilation(&compilation("Z10001", "a", u64::MAX))
            .unwrap();
    }
    // Back to version 1's shape, with what version 1 stored.
    raw(&url)
        .batch_execute(
            "DROP INDEX compilations_by_key;
             DROP INDEX compilations_by_author;
             ALTER TABLE compilations DROP COLUMN author;
             ALTER TABLE artifacts DROP COLUMN bytes;
             ALTER TABLE approvals DROP COLUMN signature;
             ALTER TABLE approvals DROP COLUMN signature_revision;
             INSERT INTO artifacts (key, language, compiler, wasm, error, created_ms)
                 VALUES ('unnamed', 'c', 'clang', '\\x00', NULL, 0),
                        ('earlier', 'c', 'clang', '\\x00', NULL, 0);
             INSERT INTO compilations (zid, revision, key) VALUES ('Z10001', 7, 'earlier');
             UPDATE schema_version SET version = 1;",
        )
        .unwrap();
    let store = PostgresStore::connect(&url).unwrap();
    assert_eq!(store.artifact_keys().unwrap(), ["a"]);
    assert_eq!(store.compilation("Z10001", 7).unwrap(), None);
    store
        .put(
            "Z10002",
            &crate::implementation("Z10002", "Z10000", "b"),
            "ed",
        )
        .unwrap();
    assert!(matches!(
        store.record_compilation(&compilation("Z10002", "b", 1500)),
        Err(StoreError::OverBudget { bytes: 2000, .. })
    ));
    store
        .record_compilation(&compilation("Z10002", "b", 2000))
        .unwrap();
}

/// Migration 3 (the SQLite store's 5) gives each approval the signature its function had
/// when approved, by the function's history, not the one it has at the upgrade; and an
/// approval an older zeval writes during a rolling upgrade (which sets no signature, and
/// leaves the column as the earlier approval had it) keeps none: the earlier approval's
/// signature is not the one the new revision was reviewed under.
#[test]
fn migration_3_keeps_the_signature_approvals_ran_under_and_an_older_nodes_approval_none() {
    let url = fresh_database();
    let admin = zeval_store::User {
        name: "ada".into(),
        role: zeval_store::Role::Admin,
    };
    {
        let store = PostgresStore::connect(&url).unwrap();
        store
            .put("Z10000", &crate::function("Z10000", "f"), "ed")
            .unwrap();
        store
            .put(
                "Z10001",
                &crate::implementation("Z10001", "Z10000", "a"),
                "ed",
            )
            .unwrap();
        store.approve("Z10001", &admin).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let mut widened = crate::function("Z10000", "f");
        widened["Z2K2"]["Z8K2"] = serde_json::json!("Z1");
        store.put("Z10000", &widened, "ed").unwrap();
    }
    raw(&url)
        .batch_execute(
            "ALTER TABLE approvals DROP COLUMN signature;
             ALTER TABLE approvals DROP COLUMN signature_revision;
             UPDATE schema_version SET version = 2;",
        )
        .unwrap();
    let store = PostgresStore::connect(&url).unwrap();
    let approved = store.approved_object("Z10001").unwrap().unwrap();
    assert_eq!(
        approved.signature,
        Some(serde_json::json!({"Z8K1": [], "Z8K2": "Z6"}))
    );
    store
        .put(
            "Z10001",
            &crate::implementation("Z10001", "Z10000", "b"),
            "ed",
        )
        .unwrap();
    // As an older zeval approves.
    raw(&url)
        .batch_execute(
            "INSERT INTO approvals (zid, revision, approved_by, timestamp_ms)
             VALUES ('Z10001', 2, 'old', 0)
             ON CONFLICT (zid) DO UPDATE SET revision = EXCLUDED.revision,
               approved_by = EXCLUDED.approved_by, timestamp_ms = EXCLUDED.timestamp_ms",
        )
        .unwrap();
    let approved = store.approved_object("Z10001").unwrap().unwrap();
    assert_eq!(approved.signature, None);
}

/// What `work` gave and how long it took, or a failure (the backends continued first) when
/// it gave nothing within `bound`.
fn within_bound<T: Send + 'static>(
    stopped: StoppedBackends,
    bound: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let outcome = work();
        let _ = sender.send((outcome, started.elapsed()));
    });
    let answered = receiver.recv_timeout(bound);
    drop(stopped);
    answered.unwrap_or_else(|_| panic!("no answer within {bound:?} from a server that is stopped"))
}

/// A server that takes statements and never answers is given up on by the client: a call's
/// statement `CUT_AFTER_DEADLINE` past the call's deadline, any other one
/// `CUT_AFTER_STATEMENT_TIMEOUT` past the statement timeout (its own timeout needs the server
/// to act, and so does the cancel request). Until 2026-12-06 each waited for as long as the
/// server was stopped: for ever, over a unix socket as here, and over TCP too, since the
/// server's kernel answers TCP's probes. The connections given up on are closed, and the
/// store answers as before once the server does.
#[test]
fn a_server_that_does_not_answer_is_given_up_on() {
    let url = fresh_database();
    let limits = PostgresLimits {
        pool_size: 2,
        pool_wait: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(1),
    };
    let store = std::sync::Arc::new(PostgresStore::connect_with(&url, limits).unwrap());
    store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();

    let deadline = Duration::from_millis(300);
    let (read, took) = within_bound(StoppedBackends::of(&url), Duration::from_secs(10), {
        let store = std::sync::Arc::clone(&store);
        move || {
            zeval_store::call_deadline::within(Instant::now() + deadline, || store.get("Z10001"))
        }
    });
    assert!(
        matches!(read, Err(StoreError::DeadlineExceeded { .. })),
        "{read:?}"
    );
    let bound = deadline + zeval_store::CUT_AFTER_DEADLINE + Duration::from_secs(1);
    assert!(took < bound, "a call's read gave up after {took:?}");

    // A new connection for the write to find idle.
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "x");
    let (write, took) = within_bound(StoppedBackends::of(&url), Duration::from_secs(20), {
        let store = std::sync::Arc::clone(&store);
        move || store.put("Z10002", &z2("Z10002", "y", "l"), "a")
    });
    assert!(matches!(write, Err(StoreError::Busy(_))), "{write:?}");
    let bound = limits.statement_timeout
        + zeval_store::CUT_AFTER_STATEMENT_TIMEOUT
        + Duration::from_secs(1);
    assert!(took < bound, "a write gave up after {took:?}");

    // The backends continue; the store answers on new connections, and the write was not
    // made.
    assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "x");
    assert_eq!(store.get("Z10002").unwrap(), None);
    store.put("Z10002", &z2("Z10002", "y", "l"), "a").unwrap();
}

/// A write that fails on the store's own checks (a conflict) rolls back at once. Its
/// transaction holds the write lock every writer of every node waits for; tokio-postgres
/// only queues the rollback of a transaction dropped uncommitted, and without a rollback of
/// the store's own it kept that lock until the pool lent the connection again: another
/// node's write waited for the statement timeout and failed.
#[test]
fn a_failed_write_gives_the_write_lock_back_at_once() {
    let url = fresh_database();
    let limits = PostgresLimits {
        statement_timeout: Duration::from_secs(3),
        ..PostgresLimits::default()
    };
    let node_a = PostgresStore::connect_with(&url, limits).unwrap();
    let node_b = PostgresStore::connect_with(&url, limits).unwrap();
    node_a.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
    let stale = node_a.put_based_on("Z10001", &z2("Z10001", "y", "l"), "a", Some(0));
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let started = Instant::now();
    let other = node_b.put("Z10002", &z2("Z10002", "z", "l"), "b");
    let took = started.elapsed();
    assert!(other.is_ok(), "{other:?}");
    assert!(
        took < Duration::from_secs(1),
        "the other node's write waited {took:?}"
    );
}
