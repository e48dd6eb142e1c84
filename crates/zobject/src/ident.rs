//! ZIDs, keys and reference-like strings (spec §1.1).

/// `^Z[1-9]\d*$`: a ZID such as `Z40` or `Z10000`.
pub fn is_zid(s: &str) -> bool {
    s.strip_prefix('Z').is_some_and(is_positive_number)
}

/// `^[A-JL-Z][1-9]\d*$`: the test normalize and canonicalize use to tell references from
/// strings. It also matches `Q42` but not `K1`, `Z0` or `Z1K1`.
pub fn is_reference(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_uppercase() && c != 'K' => is_positive_number(chars.as_str()),
        _ => false,
    }
}

/// `^(Z[1-9]\d*)?K[1-9]\d*$`: a global key (`Z802K1`) or a local key (`K1`).
pub fn is_key(s: &str) -> bool {
    parse_key(s).is_some()
}

/// Splits a key into its optional ZID part and its number: `Z802K1` → `(Some("Z802"), 1)`,
/// `K2` → `(None, 2)`.
pub fn parse_key(s: &str) -> Option<(Option<&str>, u64)> {
    let k = s.rfind('K')?;
    let (zid, number) = (&s[..k], &s[k + 1..]);
    if !is_positive_number(number) {
        return None;
    }
    let zid = if zid.is_empty() {
        None
    } else if is_zid(zid) {
        Some(zid)
    } else {
        return None;
    };
    Some((zid, number.parse().ok()?))
}

/// The local form `K<n>` of a global or local key.
pub fn local_key(s: &str) -> Option<&str> {
    let k = s.rfind('K')?;
    parse_key(s).map(|_| &s[k..])
}

/// The numeric part of a ZID (`Z10000` → 10000).
pub fn zid_number(s: &str) -> Option<u64> {
    s.strip_prefix('Z')
        .filter(|n| is_positive_number(n))?
        .parse()
        .ok()
}

fn is_positive_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty() && bytes[0] != b'0' && bytes.iter().all(u8::is_ascii_digit)
}

/// The 29 "built-in types" of `builtInTypes()` in function-schemata. Nested references to
/// these are never dereferenced by the orchestrator (spec §2.3).
pub const BUILT_IN_TYPES: [&str; 29] = [
    "Z1", "Z2", "Z3", "Z4", "Z5", "Z6", "Z7", "Z8", "Z9", "Z11", "Z12", "Z14", "Z16", "Z17", "Z18",
    "Z20", "Z21", "Z22", "Z23", "Z31", "Z32", "Z39", "Z40", "Z50", "Z60", "Z61", "Z80", "Z86",
    "Z99",
];

/// Whether `zid` is one of [`BUILT_IN_TYPES`].
pub fn is_built_in_type(zid: &str) -> bool {
    BUILT_IN_TYPES.contains(&zid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(is_reference("Z1"));
        assert!(is_reference("Q42"));
        assert!(is_reference("A1"));
        assert!(!is_reference("K3"));
        assert!(!is_reference("Z0"));
        assert!(!is_reference("Z1K1"));
        assert!(!is_reference(" Z1"));
        assert!(!is_reference("Z"));
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("Z802K1"), Some((Some("Z802"), 1)));
        assert_eq!(parse_key("K12"), Some((None, 12)));
        assert_eq!(parse_key("K0"), None);
        assert_eq!(parse_key("Z0K1"), None);
        assert_eq!(parse_key("ZK1"), None);
        assert_eq!(local_key("Z802K3"), Some("K3"));
        assert!(is_zid("Z10000"));
        assert!(!is_zid("Z01"));
    }
}
