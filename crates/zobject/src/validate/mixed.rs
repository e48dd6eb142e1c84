//! The MIXED schema that `normalize` checks its input against (spec §1.3): a string, an
//! array of mixed objects, or an object with `Z1K1` whose other keys all match the key
//! pattern.

use super::dsl::{k, one_of, r};
use super::engine::{JsonType, Registry};
use super::patterns::Pattern;

/// Builds the MIXED registry; its root is `Z1`.
pub(crate) fn registry() -> Registry {
    let mut d = Registry::default();
    d.insert("Z1", r("mixed_zobject"));
    d.insert(
        "mixed_zobject",
        one_of([r("mixed_array"), r("mixed_string"), r("mixed_record")]),
    );
    d.insert("mixed_string", k().ty(JsonType::String).node());
    d.insert(
        "mixed_array",
        k().ty(JsonType::Array).all_items(r("mixed_zobject")).node(),
    );
    d.insert(
        "mixed_record",
        k().ty(JsonType::Object)
            .required(&["Z1K1"])
            .prop("Z1K1", r("mixed_zobject"))
            .pattern_prop(Pattern::Key, r("mixed_zobject"))
            .closed()
            .node(),
    );
    d
}
