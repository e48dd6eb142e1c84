//! Integration tests of the store's sources, one module per source.

mod layered;
mod sqlite;
mod users;
mod wiki;

use serde_json::json;
use zeval_zobject::Value;

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
