//! The key of a call: a SHA-256 of the call in one form, whatever form it came in.
//!
//! The call is normalized (so canonical and normal input give the same key), then hashed as
//! a stream of tagged tokens with every object's keys sorted (so key order does not matter).
//! The normal form, not the canonical one: compacting it to canonical form drops what a list
//! whose cells are not quite a list holds (the original does the same, and zeval's answers
//! follow it), so two different calls shared a key, and anyone could have their answer
//! served for someone else's call. The walk uses an explicit stack: its work is bounded by
//! the size of the call, which the server's body limit bounds, never by the Rust stack.

use sha2::{Digest, Sha256};
use zeval_zobject::Value;

/// A call's identity (32 bytes of SHA-256).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallKey({})", self.to_hex())
    }
}

impl CallKey {
    /// The key of `call` (a Z7 in any form) answered under `context`: whatever else decides
    /// the answer besides the call and the objects it reads (the access scope, whether it
    /// was validated, the program's version). `None` when the call does not normalize (its
    /// answer is an immediate error not worth remembering).
    pub fn for_call(call: &Value, context: &[&str]) -> Option<CallKey> {
        let normal = zeval_zobject::normalize(call).ok()?;
        let key = Self::of_value(&normal, context);
        zeval_zobject::depth::drop_iteratively(normal);
        Some(key)
    }

    /// The key of `value` as it is (no normalization), with object keys sorted.
    pub fn of_value(value: &Value, context: &[&str]) -> CallKey {
        let mut hasher = Sha256::new();
        // 2: of the normal form (1 was of the canonical form, whose keys could be forged).
        hasher.update(b"zeval-call-key-2\0");
        for part in context {
            token(&mut hasher, b'c', part.as_bytes());
        }
        enum Work<'a> {
            Value(&'a Value),
            Key(&'a str),
        }
        let mut stack = vec![Work::Value(value)];
        while let Some(work) = stack.pop() {
            let value = match work {
                Work::Key(k) => {
                    token(&mut hasher, b'k', k.as_bytes());
                    continue;
                }
                Work::Value(v) => v,
            };
            match value {
                Value::Object(map) => {
                    token(&mut hasher, b'o', &(map.len() as u64).to_le_bytes());
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (k, v) in entries.into_iter().rev() {
                        stack.push(Work::Value(v));
                        stack.push(Work::Key(k));
                    }
                }
                Value::Array(items) => {
                    token(&mut hasher, b'a', &(items.len() as u64).to_le_bytes());
                    stack.extend(items.iter().rev().map(Work::Value));
                }
                Value::String(s) => token(&mut hasher, b's', s.as_bytes()),
                other => token(&mut hasher, b'x', other.to_string().as_bytes()),
            }
        }
        CallKey(hasher.finalize().into())
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The key of one entry: this call under the given epoch with each dependency at its
    /// generation. A write of any dependency changes its generation, hence this key.
    pub fn entry_key<'a>(
        &self,
        epoch: u64,
        generations: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"zeval-entry-key-1\0");
        hasher.update(self.0);
        hasher.update(epoch.to_le_bytes());
        for (zid, generation) in generations {
            token(&mut hasher, b'd', zid.as_bytes());
            hasher.update(generation.to_le_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// A tag, a length and the bytes: no two token streams of different values collide.
fn token(hasher: &mut Sha256, tag: u8, bytes: &[u8]) {
    hasher.update([tag]);
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_form_do_not_matter() {
        let canonical = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"});
        let reordered = json!({"Z10000K1": "abc", "Z7K1": "Z10000", "Z1K1": "Z7"});
        let normal = zeval_zobject::normalize(&canonical).unwrap();
        let a = CallKey::for_call(&canonical, &["open"]).unwrap();
        assert_eq!(a, CallKey::for_call(&reordered, &["open"]).unwrap());
        assert_eq!(a, CallKey::for_call(&normal, &["open"]).unwrap());
    }

    #[test]
    fn arguments_and_context_do_matter() {
        let call = |arg: &str| json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": arg});
        let a = CallKey::for_call(&call("abc"), &["open"]).unwrap();
        assert_ne!(a, CallKey::for_call(&call("abd"), &["open"]).unwrap());
        assert_ne!(a, CallKey::for_call(&call("abc"), &["approved"]).unwrap());
        // Token boundaries: "ab" + "c" is not "a" + "bc".
        assert_ne!(
            CallKey::of_value(&json!(["ab", "c"]), &[]),
            CallKey::of_value(&json!(["a", "bc"]), &[])
        );
    }

    #[test]
    fn calls_on_cells_that_are_not_a_list_do_not_share_a_list_calls_key() {
        // Z912 (a list's tail) returns `K2` as it is: on these cells, the Z6 "pwned". Their
        // canonical form is the list ["Z6", "a"], so when keys were made of it this call's
        // answer was remembered as the answer of the honest call, for every caller.
        let forged = json!({"Z1K1": "Z7", "Z7K1": "Z912", "Z912K1": {
            "Z1K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"},
            "K1": "a",
            "K2": {"Z1K1": "Z6", "Z6K1": "pwned"},
        }});
        let honest = json!({"Z1K1": "Z7", "Z7K1": "Z912", "Z912K1": ["Z6", "a"]});
        let honest_normal = zeval_zobject::normalize(&honest).unwrap();
        let key = CallKey::for_call(&honest, &[]).unwrap();
        assert_eq!(key, CallKey::for_call(&honest_normal, &[]).unwrap());
        assert_ne!(key, CallKey::for_call(&forged, &[]).unwrap());
        // Nor do cells typed otherwise further down, or with a key more.
        let mut other_type = honest_normal.clone();
        other_type["Z912K1"]["K2"]["Z1K1"]["Z881K1"]["Z9K1"] = json!("Z40");
        let mut extra_key = honest_normal.clone();
        extra_key["Z912K1"]["K2"]["K3"] = json!({"Z1K1": "Z6", "Z6K1": "x"});
        for call in [other_type, extra_key] {
            assert_ne!(key, CallKey::for_call(&call, &[]).unwrap(), "{call}");
        }
    }

    #[test]
    fn entry_keys_change_with_any_generation() {
        let key = CallKey::of_value(&json!("x"), &[]);
        let base = key.entry_key(0, [("Z10000", 1), ("Z10001", 7)]);
        assert_ne!(base, key.entry_key(0, [("Z10000", 1), ("Z10001", 8)]));
        assert_ne!(base, key.entry_key(1, [("Z10000", 1), ("Z10001", 7)]));
        assert_ne!(base, key.entry_key(0, [("Z10000", 1)]));
        assert_eq!(base, key.entry_key(0, [("Z10000", 1), ("Z10001", 7)]));
    }

    #[test]
    fn a_deep_value_hashes_without_recursion() {
        let mut deep = json!("leaf");
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        let key = CallKey::of_value(&deep, &[]);
        assert_eq!(key, CallKey::of_value(&deep, &[]));
        zeval_zobject::depth::drop_iteratively(deep);
    }
}
