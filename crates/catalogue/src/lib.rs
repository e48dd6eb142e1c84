//! The built-in catalogue: zeval's own definition of every built-in ZObject the original
//! backend preloads or serves (spec §1.5, §2.6, §5), as canonical Z2 objects.
//!
//! It holds the 29 built-in types plus Z7015 and Z7138–Z7140; the functions Z801–Z899 and the
//! type validators Z101–Z199 with their implementations Z901–Z999 and Z201–Z299 (Z985 is a
//! composition, the rest are built-ins); the testers Z8010–Z8882; the error types Z500–Z559;
//! the programming languages Z600–Z620; Z41, Z42, Z24 and Z13; and the 885 natural languages
//! Z1001–Z1889.
//!
//! The facts (ZIDs, keys, types) are written as compact tables in the modules below and
//! expanded into canonical Z2s once, on first use. Labels (`Z2K3`, and the `Z3K3`/`Z17K3` of
//! keys and arguments) are zeval's own English texts; they need not match the original's.
//! The test `tests/equivalence.rs` checks everything else against the original definitions.

use std::collections::HashMap;
use std::sync::LazyLock;

use zeval_zobject::Value;
use zeval_zobject::ident::zid_number;

mod canon;
mod errors;
mod functions;
mod languages;
mod testers;
mod types;
mod values;

pub use errors::NOT_IN_PINNED_DEFINITIONS;

static OBJECTS: LazyLock<HashMap<String, Value>> = LazyLock::new(build_all);

static SORTED_ZIDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut zids: Vec<&'static str> = OBJECTS.keys().map(String::as_str).collect();
    zids.sort_by_key(|z| zid_number(z));
    zids
});

/// Every natural-language code and other code → ZID.
static LANGUAGE_BY_CODE: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for &(zid, code, others) in languages::NATURAL_LANGUAGES {
        for c in std::iter::once(code).chain(others.iter().copied()) {
            map.insert(c, zid);
        }
    }
    map
});

fn build_all() -> HashMap<String, Value> {
    let mut objects = HashMap::new();
    let mut add = |(zid, object): (String, Value)| {
        let previous = objects.insert(zid.clone(), object);
        assert!(previous.is_none(), "catalogue defines {zid} twice");
    };
    types::TYPES
        .iter()
        .map(|t| (t.zid.to_string(), types::build(t)))
        .for_each(&mut add);
    functions::FUNCTIONS
        .iter()
        .flat_map(functions::build_function)
        .for_each(&mut add);
    functions::VALIDATORS
        .iter()
        .flat_map(functions::build_validator)
        .for_each(&mut add);
    testers::testers()
        .into_iter()
        .map(testers::build)
        .for_each(&mut add);
    errors::ERROR_TYPES
        .iter()
        .map(errors::build)
        .for_each(&mut add);
    languages::PROGRAMMING_LANGUAGES
        .iter()
        .map(languages::build_programming)
        .for_each(&mut add);
    languages::NATURAL_LANGUAGES
        .iter()
        .map(languages::build_natural)
        .for_each(&mut add);
    values::build().into_iter().for_each(&mut add);
    objects
}

/// The canonical Z2 of a built-in object, e.g. `get("Z802")` is the function If.
pub fn get(zid: &str) -> Option<&'static Value> {
    OBJECTS.get(zid)
}

/// Every ZID in the catalogue, in numeric order (Z1, Z2, …, Z8882).
pub fn zids() -> impl Iterator<Item = &'static str> {
    SORTED_ZIDS.iter().copied()
}

/// The ZID of a natural language by its code or one of its other codes: `en` → `Z1002`,
/// `zh-yue` → `Z1202`. Codes are matched exactly (they are lower case).
pub fn language_zid(code: &str) -> Option<&'static str> {
    LANGUAGE_BY_CODE.get(code).copied()
}

/// The code (`Z60K1`) of a natural language: `Z1002` → `en`.
pub fn language_code(zid: &str) -> Option<&'static str> {
    languages::NATURAL_LANGUAGES
        .iter()
        .find(|(z, _, _)| *z == zid)
        .map(|&(_, code, _)| code)
}

/// The ZID of a programming language by its code: `python-3` → `Z611`. There is no
/// `python-3-7` (the original has none either).
pub fn programming_language_zid(code: &str) -> Option<&'static str> {
    languages::PROGRAMMING_LANGUAGES
        .iter()
        .find(|(_, c, _, _)| *c == code)
        .map(|&(z, ..)| z)
}

/// The code (`Z61K1`) of a programming language: `Z600` → `javascript`.
pub fn programming_language_code(zid: &str) -> Option<&'static str> {
    languages::PROGRAMMING_LANGUAGES
        .iter()
        .find(|(z, ..)| *z == zid)
        .map(|&(_, c, ..)| c)
}

/// The built-in implementation a function runs: the ZID named by `Z14K4` of the
/// implementation its `Z8K4` lists, e.g. `Z802` → `Z902`, `Z123` → `Z220`. `None` for
/// anything that is not a catalogue function, and for Z885, whose implementation Z985 is a
/// composition.
pub fn builtin_implementation(function_zid: &str) -> Option<&'static str> {
    let function = get(function_zid)?.get("Z2K2")?;
    let listed = function.get("Z8K4")?.as_array()?.get(1)?.as_str()?;
    builtin_of(listed)
}

/// The builtin an implementation object stands for (`Z902` → `Z902`), if it is a built-in
/// implementation (`Z14K4`) in the catalogue.
pub fn builtin_of(implementation_zid: &str) -> Option<&'static str> {
    let implementation = get(implementation_zid)?.get("Z2K2")?;
    zeval_zobject::build::string_value(implementation.get("Z14K4")?)
}

/// Whether the original orchestrator preloads `zid` from its definitions at startup instead
/// of fetching it from the wiki (spec §2.6): the 29 built-in types, the functions Z801–Z899
/// except Z885, the validators Z101–Z123, Z139–Z199 (not Z131/Z132), and the built-in
/// implementations of all of these. Everything else in the catalogue (Z41/Z42, Z24, Z13, the
/// languages, the error types, Z885/Z985, the testers, Z7015, Z7138–Z7140) the original
/// fetches; a port that wants to reproduce its observable wiki fetches needs this split.
pub fn is_preloaded(zid: &str) -> bool {
    let Some(n) = zid_number(zid) else {
        return false;
    };
    let function = match n {
        101..=199 | 801..=899 => n,
        201..=299 | 901..=999 => n - 100,
        _ => return zeval_zobject::ident::is_built_in_type(zid),
    };
    function != 885 && function != 131 && function != 132 && get(zid).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(language_zid("en"), Some("Z1002"));
        assert_eq!(language_zid("zh-yue"), Some("Z1202"));
        assert_eq!(language_zid("xx-nonexistent"), None);
        assert_eq!(language_code("Z1002"), Some("en"));
        assert_eq!(language_code("Z1"), None);
        assert_eq!(programming_language_zid("python-3"), Some("Z611"));
        assert_eq!(programming_language_zid("python-3-7"), None);
        assert_eq!(programming_language_code("Z600"), Some("javascript"));
        assert_eq!(builtin_implementation("Z802"), Some("Z902"));
        assert_eq!(builtin_implementation("Z123"), Some("Z220"));
        assert_eq!(builtin_implementation("Z885"), None);
        assert_eq!(builtin_implementation("Z6"), None);
        assert_eq!(builtin_of("Z985"), None);
    }

    #[test]
    fn zids_are_numerically_sorted_and_all_resolve() {
        let all: Vec<&str> = zids().collect();
        assert_eq!(all.first(), Some(&"Z1"));
        assert_eq!(all.last(), Some(&"Z8882"));
        assert!(all.windows(2).all(|w| zid_number(w[0]) < zid_number(w[1])));
        assert!(all.iter().all(|z| get(z).is_some()));
    }

    #[test]
    fn every_object_names_itself() {
        for zid in zids() {
            let object = get(zid).unwrap();
            assert_eq!(object["Z2K1"]["Z6K1"], zid, "{zid}");
        }
    }

    #[test]
    fn functions_follow_the_implementation_rule() {
        for f in functions::FUNCTIONS {
            let own = functions::own_implementation(f.zid);
            assert_eq!(get(&own).unwrap()["Z2K2"]["Z14K1"], f.zid);
        }
    }

    #[test]
    fn preloaded_split() {
        assert!(is_preloaded("Z6"));
        assert!(is_preloaded("Z811"));
        assert!(is_preloaded("Z911"));
        assert!(is_preloaded("Z223"));
        assert!(!is_preloaded("Z885"));
        assert!(!is_preloaded("Z985"));
        assert!(!is_preloaded("Z131"));
        assert!(!is_preloaded("Z232"));
        assert!(!is_preloaded("Z41"));
        assert!(!is_preloaded("Z1002"));
        assert!(!is_preloaded("Z7015"));
        assert!(!is_preloaded("Z8010"));
    }
}
