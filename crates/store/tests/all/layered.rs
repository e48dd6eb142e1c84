use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zeval_store::catalogue::CatalogueSource;
use zeval_store::{DirSource, Layered, ObjectSource, SharedCache, SqliteStore, StoreError};
use zeval_zobject::Value;

use crate::z2;

/// The ZIDs of each fetch, in order.
type Asked = Arc<Mutex<Vec<Vec<String>>>>;

/// Records which ZIDs each fetch asked a real source for.
struct Recorded<S> {
    source: S,
    asked: Asked,
}

impl<S: ObjectSource> ObjectSource for Recorded<S> {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.asked.lock().unwrap().push(zids.to_vec());
        self.source.fetch(zids)
    }
}

fn recorded<S: ObjectSource>(source: S) -> (Recorded<S>, Asked) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    (
        Recorded {
            source,
            asked: asked.clone(),
        },
        asked,
    )
}

fn strings(zids: &[&str]) -> Vec<String> {
    zids.iter().map(|z| z.to_string()).collect()
}

#[test]
fn the_first_layer_wins_and_lower_layers_see_only_what_is_missing() {
    let local = SqliteStore::open_in_memory().unwrap();
    local
        .put(
            "Z802",
            &z2("Z802", "a local Z802 never wins over the catalogue", "l"),
            "a",
        )
        .unwrap();
    local
        .put("Z10001", &z2("Z10001", "local", "l"), "a")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Z10001.json"),
        z2("Z10001", "dir", "l").to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Z10002.json"),
        z2("Z10002", "dir", "l").to_string(),
    )
    .unwrap();

    let (local, asked_local) = recorded(local);
    let (dir, asked_dir) = recorded(DirSource::new(dir.path()).unwrap());
    let layered = Layered::new().with(CatalogueSource).with(local).with(dir);
    assert_eq!(layered.len(), 3);

    let found = layered
        .fetch(&strings(&["Z802", "Z10001", "Z10002", "Z10003", "Z802"]))
        .unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found["Z802"]["Z2K2"]["Z1K1"], "Z8");
    assert_eq!(found["Z10001"]["Z2K2"], "local");
    assert_eq!(found["Z10002"]["Z2K2"], "dir");
    assert_eq!(
        *asked_local.lock().unwrap(),
        [strings(&["Z10001", "Z10002", "Z10003"])]
    );
    assert_eq!(*asked_dir.lock().unwrap(), [strings(&["Z10002", "Z10003"])]);

    layered.fetch(&strings(&["Z802"])).unwrap();
    assert_eq!(
        asked_local.lock().unwrap().len(),
        1,
        "nothing missing: lower layers not asked"
    );
}

#[test]
fn a_failing_layer_fails_the_fetch() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wiki = zeval_store::WikiSource::new(format!("http://127.0.0.1:{port}/w/api.php"));
    let layered = Layered::new().with(CatalogueSource).with(wiki);
    assert!(layered.fetch(&strings(&["Z802"])).is_ok());
    assert!(matches!(
        layered.fetch(&strings(&["Z802", "Z10001"])),
        Err(StoreError::Fetch { .. })
    ));
}

#[test]
fn the_shared_cache_serves_repeats_and_forgets_invalidated_zids() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    store.put("Z10001", &z2("Z10001", "v1", "l"), "a").unwrap();
    store.put("Z10002", &z2("Z10002", "x", "l"), "a").unwrap();
    let (source, asked) = recorded(Layered::new().with_shared(store.clone()));
    let cache = SharedCache::new(source, 10);

    assert_eq!(
        cache.fetch(&strings(&["Z10001", "Z10009"])).unwrap()["Z10001"]["Z2K2"],
        "v1"
    );
    assert_eq!(
        cache.fetch(&strings(&["Z10001", "Z10002"])).unwrap().len(),
        2
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [strings(&["Z10001", "Z10009"]), strings(&["Z10002"])]
    );

    store.put("Z10001", &z2("Z10001", "v2", "l"), "a").unwrap();
    assert_eq!(
        cache.fetch(&strings(&["Z10001"])).unwrap()["Z10001"]["Z2K2"],
        "v1",
        "not invalidated yet"
    );
    cache.invalidate("Z10001");
    assert_eq!(
        cache.fetch(&strings(&["Z10001"])).unwrap()["Z10001"]["Z2K2"],
        "v2"
    );

    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 4, 2));
}

#[test]
fn the_shared_cache_stays_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..20 {
        let zid = format!("Z{}", 10_000 + n);
        std::fs::write(
            dir.path().join(format!("{zid}.json")),
            z2(&zid, "x", "l").to_string(),
        )
        .unwrap();
    }
    let (source, asked) = recorded(DirSource::new(dir.path()).unwrap());
    let cache = SharedCache::new(source, 5);
    let zids: Vec<String> = (0..20).map(|n| format!("Z{}", 10_000 + n)).collect();
    assert_eq!(cache.fetch(&zids).unwrap().len(), 20);
    assert_eq!(cache.stats().entries, 5);
    // The five most recent are cached; an older one is fetched again.
    cache.fetch(&zids[15..]).unwrap();
    cache.fetch(&zids[..1]).unwrap();
    assert_eq!(asked.lock().unwrap().len(), 2);
    assert_eq!(cache.stats().entries, 5);
}
