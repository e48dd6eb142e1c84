//! The catalogue-equivalence test (issue 2, item 3): the catalogue authored in this crate
//! against the original's definitions in `../shared/wikifunctions/definitions` (the pinned
//! set, 1132 `Z*.json` files), which this test alone reads.
//!
//! For every definition file the catalogue must have the object with the same ZID, and its
//! `Z2K2` must be equal as JSON (key order aside), for every kind: types, functions,
//! implementations, error types, languages, and also testers, Booleans, Z24 and Z13. That
//! includes the labels of keys (`Z3K3` of every key of every type and error type), since
//! results that embed a built-in type show them. Other labels may differ: `Z2K3`/`Z2K4`, and
//! the `Z17K3` labels of arguments, are compared only for being present and well-formed.
//!
//! The reverse holds too: the catalogue has nothing the definitions lack, except the objects
//! in [`zeval_catalogue::NOT_IN_PINNED_DEFINITIONS`] (Z559, Z590). Every catalogue object is a
//! canonical Z2 that the schema validator accepts, and the language indexes
//! (`naturalLanguages.json`, `softwareLanguages.json`) agree with the lookup functions.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use zeval_zobject::{Form, Value};

/// Keys whose values are labels inside `Z2K2` that may differ from the original's (key labels,
/// `Z3K3`, may not).
const NESTED_LABEL_KEYS: [&str; 1] = ["Z17K3"];

fn definitions_dir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/wikifunctions/definitions");
    assert!(
        dir.is_dir(),
        "the original definitions are not at {}",
        dir.display()
    );
    dir
}

fn read_json(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zeval_zobject::json::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `Z*.json` definition, by ZID (the file name).
fn definitions() -> BTreeMap<u64, (String, Value)> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(definitions_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if let Some(n) = zeval_zobject::ident::zid_number(&name) {
            all.insert(n, (name, read_json(&path)));
        }
    }
    all
}

/// A copy of `value` with the nested labels replaced by `null`; panics (naming `zid`) if a
/// nested label is not a Z12 and `check` is set.
fn without_nested_labels(value: &Value, zid: &str, check: bool) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    if NESTED_LABEL_KEYS.contains(&k.as_str()) {
                        if check {
                            assert_well_formed_label(v, zid);
                        }
                        (k.clone(), Value::Null)
                    } else {
                        (k.clone(), without_nested_labels(v, zid, check))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| without_nested_labels(v, zid, check))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A Z12 with at least one non-empty English text.
fn assert_well_formed_label(label: &Value, zid: &str) {
    assert_eq!(label["Z1K1"], "Z12", "{zid}: label {label}");
    let texts = label["Z12K1"]
        .as_array()
        .unwrap_or_else(|| panic!("{zid}: label {label}"));
    assert_eq!(
        texts.first(),
        Some(&Value::from("Z11")),
        "{zid}: label {label}"
    );
    assert!(
        texts[1..].iter().any(|t| t["Z1K1"] == "Z11"
            && t["Z11K1"] == "Z1002"
            && zeval_zobject::build::string_value(&t["Z11K2"]).is_some_and(|s| !s.is_empty())),
        "{zid}: no English label in {label}"
    );
}

/// The kind of an object: the `Z1K1` of its `Z2K2`, or "list" for a benjamin array.
fn kind(object: &Value) -> String {
    match &object["Z2K2"] {
        Value::Array(_) => "list".into(),
        value => value["Z1K1"].as_str().unwrap_or("?").into(),
    }
}

#[test]
fn every_definition_has_its_counterpart() {
    let definitions = definitions();
    assert_eq!(
        definitions.len(),
        1132,
        "the pinned definitions have 1132 Z files"
    );
    let mut mismatches = Vec::new();
    let mut matched: BTreeMap<String, usize> = BTreeMap::new();
    for (zid, original) in definitions.values() {
        let Some(ours) = zeval_catalogue::get(zid) else {
            mismatches.push(format!("{zid}: missing from the catalogue"));
            continue;
        };
        if ours["Z2K1"] != original["Z2K1"] {
            mismatches.push(format!(
                "{zid}: Z2K1 {} vs {}",
                ours["Z2K1"], original["Z2K1"]
            ));
        }
        if kind(ours) != kind(original) {
            mismatches.push(format!("{zid}: kind {} vs {}", kind(ours), kind(original)));
            continue;
        }
        let ours_value = without_nested_labels(&ours["Z2K2"], zid, true);
        let original_value = without_nested_labels(&original["Z2K2"], zid, false);
        if ours_value != original_value {
            mismatches.push(format!(
                "{zid}: Z2K2\n  ours:     {ours_value}\n  original: {original_value}"
            ));
            continue;
        }
        *matched.entry(kind(original)).or_default() += 1;
    }
    eprintln!("Z2K2 equal, by kind: {matched:?}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn catalogue_has_nothing_the_definitions_lack() {
    let definitions = definitions();
    let known: Vec<&str> = definitions.values().map(|(zid, _)| zid.as_str()).collect();
    let extra: Vec<&str> = zeval_catalogue::zids()
        .filter(|z| !known.contains(z))
        .collect();
    assert_eq!(extra, zeval_catalogue::NOT_IN_PINNED_DEFINITIONS);

    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for zid in zeval_catalogue::zids() {
        *by_kind
            .entry(kind(zeval_catalogue::get(zid).unwrap()))
            .or_default() += 1;
    }
    eprintln!("catalogue objects by kind: {by_kind:?}");
    assert_eq!(
        zeval_catalogue::zids().count(),
        definitions.len() + zeval_catalogue::NOT_IN_PINNED_DEFINITIONS.len()
    );
}

#[test]
fn every_catalogue_object_is_a_valid_canonical_z2() {
    for zid in zeval_catalogue::zids() {
        let object = zeval_catalogue::get(zid).unwrap();
        let map = object
            .as_object()
            .unwrap_or_else(|| panic!("{zid} is not an object"));
        assert_eq!(map["Z1K1"], "Z2", "{zid}");
        assert_eq!(
            map["Z2K1"],
            serde_json::json!({"Z1K1": "Z6", "Z6K1": zid}),
            "{zid}"
        );
        assert!(map.contains_key("Z2K2"), "{zid} has no value");
        assert!(
            map.keys()
                .all(|k| ["Z1K1", "Z2K1", "Z2K2", "Z2K3", "Z2K4"].contains(&k.as_str()))
        );
        assert_well_formed_label(&map["Z2K3"], zid);
        if let Some(aliases) = map.get("Z2K4") {
            assert_eq!(aliases["Z1K1"], "Z32", "{zid}");
        }
        without_nested_labels(&map["Z2K2"], zid, true);
        if let Err(error) = zeval_zobject::validate(object, "Z2", Form::Canonical) {
            panic!("{zid} is not a valid canonical Z2: {error}");
        }
    }
    // The validator is not vacuous: a Z2 whose value is a number is refused.
    let mut broken = zeval_catalogue::get("Z802").unwrap().clone();
    broken["Z2K2"] = Value::from(5);
    assert!(zeval_zobject::validate(&broken, "Z2", Form::Canonical).is_err());
}

#[test]
fn language_indexes_agree_with_the_lookups() {
    let dir = definitions_dir();
    let natural = read_json(&dir.join("naturalLanguages.json"));
    let natural = natural.as_object().unwrap();
    assert_eq!(natural.len(), 895);
    for (code, zid) in natural {
        assert_eq!(zeval_catalogue::language_zid(code), zid.as_str(), "{code}");
    }
    let zids: HashMap<&str, ()> = natural
        .values()
        .map(|z| (z.as_str().unwrap(), ()))
        .collect();
    assert_eq!(zids.len(), 885);
    for zid in zids.keys() {
        let code = zeval_catalogue::language_code(zid).unwrap();
        assert_eq!(natural[code], *zid);
    }

    let software = read_json(&dir.join("softwareLanguages.json"));
    let software = software.as_object().unwrap();
    assert_eq!(software.len(), 16);
    for (code, zid) in software {
        assert_eq!(
            zeval_catalogue::programming_language_zid(code),
            zid.as_str(),
            "{code}"
        );
        assert_eq!(
            zeval_catalogue::programming_language_code(zid.as_str().unwrap()),
            Some(code.as_str())
        );
    }
}
