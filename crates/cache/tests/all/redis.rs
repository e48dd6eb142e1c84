//! The Redis backend: shared between nodes, invalidated by writes on any node, bounded in
//! time when Redis is slow or gone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeval_cache::{
    CallKey, Entry, Limits, Lookup, RedisCache, RedisSettings, ResultCache, Stored, Ticket,
};

use crate::RedisServer;

fn node(url: &str, told: Option<Arc<Mutex<Vec<String>>>>) -> ResultCache {
    let settings = RedisSettings {
        url: url.to_owned(),
        timeout: Duration::from_millis(100),
        retry_after: Duration::from_millis(200),
        dependencies_ttl: Duration::from_secs(60),
    };
    let tell = told.map(|told| {
        Box::new(move |zid: &str| told.lock().unwrap().push(zid.to_owned()))
            as zeval_cache::redis_backend::OnRemoteWrite
    });
    let backend = RedisCache::new(settings, tell).unwrap();
    ResultCache::new(Box::new(backend), Limits::default(), "redis")
}

fn key(text: &str) -> CallKey {
    CallKey::for_call(
        &serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": text}),
        &["open"],
    )
    .unwrap()
}

fn deps() -> Vec<String> {
    ["Z10000", "Z10001", "Z10002"].map(String::from).to_vec()
}

fn entry<'a>(deps: &'a [String], bytes: &'a [u8], ttl: Duration) -> Entry<'a> {
    Entry {
        dependencies: deps,
        bytes,
        computed_at_ms: 1_700_000_000_000,
        ttl,
    }
}

fn miss(cache: &ResultCache, k: &CallKey) -> Ticket {
    match cache.lookup(k) {
        Lookup::Miss(t) => t,
        Lookup::Hit(hit) => panic!("unexpected hit: {hit:?}"),
    }
}

fn hit(cache: &ResultCache, k: &CallKey) -> zeval_cache::Cached {
    match cache.lookup(k) {
        Lookup::Hit(hit) => hit,
        Lookup::Miss(_) => panic!("expected a hit"),
    }
}

#[test]
fn two_nodes_share_answers_and_a_write_on_one_invalidates_on_the_other() {
    let redis = RedisServer::start();
    let told = Arc::new(Mutex::new(Vec::new()));
    let a = node(&redis.url(), None);
    let b = node(&redis.url(), Some(told.clone()));
    let k = key("abc");
    let d = deps();
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"answer 1", Duration::from_secs(60))),
        Stored::Yes
    );
    let shared = hit(&b, &k);
    assert_eq!(&*shared.bytes, b"answer 1");
    assert_eq!(shared.computed_at_ms, 1_700_000_000_000);
    assert!(told.lock().unwrap().is_empty(), "nothing was written yet");
    // A writes the deepest dependency: B misses, and hears of the write first.
    a.bump("Z10000");
    let t = miss(&b, &k);
    assert_eq!(*told.lock().unwrap(), ["Z10000"]);
    assert_eq!(
        b.store(&t, &entry(&d, b"answer 2", Duration::from_secs(60))),
        Stored::Yes
    );
    let fresh = hit(&a, &k);
    assert_eq!(&*fresh.bytes, b"answer 2");
    assert_ne!(fresh.key, shared.key);
    assert_eq!(b.stats().errors, 0);
}

#[test]
fn a_write_that_races_the_evaluation_is_not_stored() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let k = key("race");
    let d = deps();
    let t = miss(&a, &k);
    a.bump("Z10001");
    assert_eq!(
        a.store(&t, &entry(&d, b"maybe stale", Duration::from_secs(60))),
        Stored::Raced
    );
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"fresh", Duration::from_secs(60))),
        Stored::Yes
    );
    assert_eq!(&*hit(&a, &k).bytes, b"fresh");
}

#[test]
fn brief_entries_expire_in_redis() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let k = key("brief");
    let d = deps();
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"timeout", Duration::from_millis(150))),
        Stored::Yes
    );
    hit(&a, &k);
    std::thread::sleep(Duration::from_millis(300));
    miss(&a, &k);
}

#[test]
fn a_redis_that_is_gone_is_a_miss_within_the_timeout() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = node(&url, None);
    drop(redis);
    let k = key("gone");
    let started = Instant::now();
    let t = miss(&a, &k);
    let d = deps();
    assert_eq!(
        a.store(&t, &entry(&d, b"x", Duration::from_secs(60))),
        Stored::Failed
    );
    a.bump("Z10000");
    // While down, Redis is not even tried: many calls cost next to nothing.
    for _ in 0..100 {
        miss(&a, &k);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(a.stats().errors >= 3, "{:?}", a.stats());
}

#[test]
fn a_paused_redis_is_skipped_and_a_lost_write_drops_every_entry_once_it_is_back() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let other = node(&redis.url(), None);
    let k = key("paused");
    let d = deps();
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"old", Duration::from_secs(60))),
        Stored::Yes
    );
    hit(&other, &k);
    // Redis stops answering for 600 ms: commands time out after 100 ms.
    redis.command(&["CLIENT", "PAUSE", "600", "ALL"]).unwrap();
    let started = Instant::now();
    a.bump("Z10002");
    miss(&a, &k);
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    // The write of Z10002 was lost, so the generation did not move; once Redis answers
    // again the epoch is raised and the old entry misses on every node.
    std::thread::sleep(Duration::from_millis(800));
    miss(&a, &k);
    miss(&other, &k);
}

#[test]
fn the_generations_a_node_remembers_are_bounded_and_forgetting_costs_only_misses() {
    let redis = RedisServer::start();
    let settings = RedisSettings {
        url: redis.url(),
        timeout: Duration::from_millis(100),
        retry_after: Duration::from_millis(200),
        dependencies_ttl: Duration::from_secs(60),
    };
    let told = Arc::new(Mutex::new(Vec::new()));
    let heard = told.clone();
    let tell: zeval_cache::redis_backend::OnRemoteWrite =
        Box::new(move |zid: &str| heard.lock().unwrap().push(zid.to_owned()));
    let b = ResultCache::new(
        Box::new(
            RedisCache::new(settings, Some(tell))
                .unwrap()
                .with_max_known_generations(2),
        ),
        Limits::default(),
        "redis",
    );
    let a = node(&redis.url(), None);
    let d = deps();
    for zid in &d {
        a.bump(zid);
    }
    // B has not seen these writes: it hears of all three, and keeps at most two.
    let k = key("bounded");
    let t = miss(&b, &k);
    assert_eq!(
        b.store(&t, &entry(&d, b"x", Duration::from_secs(60))),
        Stored::Raced
    );
    assert_eq!(told.lock().unwrap().len(), 3);
    // Having forgotten one, B hears of it again and again skips the store: never stale.
    let t = miss(&b, &k);
    let stored = b.store(&t, &entry(&d, b"x", Duration::from_secs(60)));
    assert_eq!(stored, Stored::Raced);
    assert!(told.lock().unwrap().len() > 3);
}

#[test]
fn an_answer_computed_while_the_node_noticed_another_nodes_write_is_not_stored() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let b = node(&redis.url(), None);
    let d = deps();
    let (k1, k2) = (key("one"), key("two"));
    let t = miss(&a, &k1);
    assert_eq!(
        a.store(&t, &entry(&d, b"1", Duration::from_secs(60))),
        Stored::Yes
    );
    a.bump("Z10000");
    // B starts computing k2 (no entry, so nothing to notice yet): its object cache may
    // still hold the old Z10000.
    let late = miss(&b, &k2);
    // Another call on B notices A's write (and drops Z10000 from B's object cache).
    miss(&b, &k1);
    // k2's answer may have read the old Z10000: not stored.
    assert_eq!(
        b.store(&late, &entry(&d, b"2", Duration::from_secs(60))),
        Stored::Raced
    );
    // Computed after the notice, it is.
    let t = miss(&b, &k2);
    assert_eq!(
        b.store(&t, &entry(&d, b"2", Duration::from_secs(60))),
        Stored::Yes
    );
}

#[test]
fn a_redis_that_may_evict_generations_is_refused() {
    let settings = |url: &str| RedisSettings {
        url: url.to_owned(),
        timeout: Duration::from_millis(200),
        retry_after: Duration::from_millis(200),
        dependencies_ttl: Duration::from_secs(60),
    };
    let evicting = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let error = RedisCache::new(settings(&evicting.url()), None)
        .unwrap()
        .check_eviction_policy()
        .unwrap_err();
    assert!(error.to_string().contains("allkeys-lru"), "{error}");
    let safe = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
    RedisCache::new(settings(&safe.url()), None)
        .unwrap()
        .check_eviction_policy()
        .unwrap();
    // A Redis that cannot be asked is not refused: calls go uncached until it answers.
    let gone = format!("unix://{}/none.sock", std::env::temp_dir().display());
    RedisCache::new(settings(&gone), None)
        .unwrap()
        .check_eviction_policy()
        .unwrap();
}

/// What a lookup reads from Redis is bounded by what a node stores: an entry longer than the
/// largest answer kept, or a dependency list longer than any node keeps (or not UTF-8), is a
/// miss, not read and parsed whole, and not a failure of Redis that switches the cache off.
/// Anyone who can reach Redis can write there; a 512 MB entry used to be read on every hit.
#[test]
fn entries_and_dependency_lists_past_the_limits_are_misses() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let k = key("bounded");
    let d = deps();
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"small", Duration::from_secs(60))),
        Stored::Yes
    );
    hit(&a, &k);
    let ::redis::Value::Array(keys) = redis.command(&["KEYS", "zeval:result:*"]).unwrap() else {
        panic!("no entry keys");
    };
    let ::redis::Value::BulkString(entry_key) = &keys[0] else {
        panic!("{keys:?}");
    };
    let entry_key = String::from_utf8(entry_key.clone()).unwrap();
    let huge = format!(
        "1\n\"{}\"",
        "x".repeat(Limits::default().max_value_bytes + 100)
    );
    redis.command(&["SET", &entry_key, &huge]).unwrap();
    miss(&a, &k);

    let deps_key = format!("zeval:deps:{}", k.to_hex());
    let many: Vec<String> = (1..=Limits::default().max_dependencies + 1)
        .map(|n| format!("Z{n}"))
        .collect();
    redis
        .command(&["SET", &deps_key, &many.join("\n")])
        .unwrap();
    miss(&a, &k);
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(&deps_key)
        .arg(&[0xff_u8, b'\n', b'Z'][..])
        .query(&mut connection)
        .unwrap();
    miss(&a, &k);
    assert_eq!(
        a.stats().errors,
        0,
        "a forged value counted as Redis failing"
    );
}

/// Every value a lookup reads from Redis is read with `GETRANGE`, bounded by what a node of
/// these limits writes: the dependency list, `seq`, `epoch` and each generation. Whoever can
/// write to Redis made every lookup read each of them whole (`GET`, `MGET`), up to 512 MB a
/// key. Measured by the bytes Redis sends.
#[test]
fn a_lookup_reads_a_bounded_number_of_bytes_whatever_redis_holds() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), None);
    let k = key("read bounded");
    let d = deps();
    let t = miss(&a, &k);
    assert_eq!(
        a.store(&t, &entry(&d, b"\"small\"", Duration::from_secs(60))),
        Stored::Yes
    );
    hit(&a, &k);
    let huge = "1".repeat(16 << 20);
    let deps_key = format!("zeval:deps:{}", k.to_hex());
    let huge_list = "Z1\n".repeat((16 << 20) / 3);
    for (forged, value) in [
        ("zeval:gen:Z10001", huge.as_str()),
        ("zeval:seq", huge.as_str()),
        ("zeval:epoch", huge.as_str()),
        (deps_key.as_str(), huge_list.as_str()),
    ] {
        redis.command(&["SET", forged, value]).unwrap();
        let before = redis.output_bytes();
        let _ = a.lookup(&k);
        let sent = redis.output_bytes() - before;
        assert!(
            sent < 256 << 10,
            "a lookup read {sent} bytes with a 16 MiB {forged}"
        );
        redis.command(&["DEL", forged]).unwrap();
    }
    // Keys of another type read as missing, not as Redis failing.
    for forged in [
        "zeval:gen:Z10001",
        "zeval:seq",
        "zeval:epoch",
        deps_key.as_str(),
    ] {
        redis.command(&["HSET", forged, "f", "v"]).unwrap();
        let _ = a.lookup(&k);
        redis.command(&["DEL", forged]).unwrap();
    }
    assert_eq!(
        a.stats().errors,
        0,
        "a forged value counted as Redis failing"
    );
}
