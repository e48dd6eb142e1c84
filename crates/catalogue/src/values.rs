//! The few built-in instances: the Booleans Z41 and Z42, void Z24 and the empty list Z13.

use serde_json::json;

use crate::canon::persistent;
use zeval_zobject::Value;

/// Every built-in instance as `(zid, canonical Z2)`.
pub(crate) fn build() -> Vec<(String, Value)> {
    [
        ("Z41", json!({"Z1K1": "Z40", "Z40K1": "Z41"}), "true"),
        ("Z42", json!({"Z1K1": "Z40", "Z40K1": "Z42"}), "false"),
        ("Z24", json!({"Z1K1": "Z21"}), "void"),
        ("Z13", json!(["Z1"]), "empty list"),
    ]
    .into_iter()
    .map(|(zid, value, label)| (zid.to_string(), persistent(zid, value, label, &[])))
    .collect()
}
