//! Integration tests of the store's sources, one module per source. The store's own tests
//! (`objects`, `users`, `figures`) run on both backends through [`each_backend`]; `sqlite`
//! holds what only the SQLite file has (WAL, crash safety, its schema version).

mod figures;
mod layered;
mod objects;
mod postgres;
mod postgres_server;
mod sqlite;
mod users;
mod wiki;

use serde_json::json;
use zeval_store::Store;
use zeval_zobject::Value;

/// Runs `test` on a new empty store of each backend: SQLite in memory, then a new database on
/// the test PostgreSQL server ([`postgres_server`]). The backend is printed first, so a
/// failure's output says which one failed.
pub(crate) fn each_backend(test: impl Fn(&Store)) {
    eprintln!("backend: sqlite");
    test(&Store::open_in_memory().unwrap());
    eprintln!("backend: postgres");
    test(&Store::connect(&postgres_server::fresh_database()).unwrap());
}

/// Runs `test` with two handles on one new store of each backend, as two nodes (or two
/// processes) see it: the same SQLite file opened twice, or the same PostgreSQL database
/// connected twice.
pub(crate) fn each_backend_twice(test: impl Fn(&Store, &Store)) {
    eprintln!("backend: sqlite");
    let dir = tempfile::tempdir().unwrap();
    test(
        &Store::open_in(dir.path()).unwrap(),
        &Store::open_in(dir.path()).unwrap(),
    );
    eprintln!("backend: postgres");
    let url = postgres_server::fresh_database();
    test(
        &Store::connect(&url).unwrap(),
        &Store::connect(&url).unwrap(),
    );
}

/// A canonical Z2 of a string with an English label.
pub(crate) fn z2(zid: &str, text: &str, label: &str) -> Value {
    json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
        "Z2K2": text,
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": label}]}
    })
}

/// A canonical Z2 of a function (Z8) with an English label.
pub(crate) fn function(zid: &str, label: &str) -> Value {
    json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
        "Z2K2": {"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14"], "Z8K5": zid},
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": label}]}
    })
}

/// A canonical Z2 of a JavaScript implementation (Z14) of `function`.
pub(crate) fn implementation(zid: &str, function: &str, code: &str) -> Value {
    json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
        "Z2K2": {"Z1K1": "Z14", "Z14K1": function,
                 "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}},
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}
    })
}
