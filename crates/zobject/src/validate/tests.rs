use serde_json::json;

use super::*;
use crate::error::error_code;

fn codes(z5: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![z5];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(s)) = m.get("Z9K1") {
                    out.push(s.clone());
                }
                stack.extend(m.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

#[test]
fn normal_strings_and_references() {
    assert!(validate(&json!({"Z1K1": "Z6", "Z6K1": "x"}), "Z6", Form::Normal).is_ok());
    assert!(validate(&json!({"Z1K1": "Z9", "Z9K1": "Z6"}), "Z6", Form::Normal).is_ok());
    let err = validate(&json!({"Z1K1": "Z6"}), "Z6", Form::Normal).unwrap_err();
    assert_eq!(error_code(&err), Some("Z502"));
    assert!(codes(&err).contains(&"Z532".to_string()));
    validate(&err, "Z5", Form::Normal).unwrap();
}

#[test]
fn canonical_z6_escapes() {
    assert!(validate(&json!("hello"), "Z6", Form::Canonical).is_ok());
    assert!(validate(&json!({"Z1K1": "Z6", "Z6K1": "Z6"}), "Z6", Form::Canonical).is_ok());
    assert!(validate(&json!(3), "Z6", Form::Canonical).is_err());
}

#[test]
fn errors_per_key_and_siblings() {
    let z2 = json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": 3},
        "Z2K2": "x",
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]},
    });
    let err = validate(&z2, "Z2", Form::Canonical).unwrap_err();
    let found = codes(&err);
    for code in ["Z502", "Z526", "Z533"] {
        assert!(found.contains(&code.to_string()), "{code} missing in {err}");
    }
    validate(&err, "Z5", Form::Normal).unwrap();
}

#[test]
fn key_sub_schemas() {
    let ok = json!({"Z1K1": "Z6", "Z6K1": "label"});
    assert!(validate_key("Z2", "Z2K1", &ok, Form::Normal).is_ok());
    let bad = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z40"}});
    assert!(validate_key("Z2", "Z2K1", &bad, Form::Normal).is_err());
    let missing = validate_key("Z2", "Z2K9", &ok, Form::Normal).unwrap_err();
    assert_eq!(error_code(&missing), Some("Z525"));
    // Z7 arguments are any key-named Z1.
    assert!(validate_key("Z7", "Z802K1", &ok, Form::Normal).is_ok());
}

#[test]
fn unknown_schema_is_z543() {
    let err = validate(&json!("x"), "Z10001", Form::Normal).unwrap_err();
    assert_eq!(error_code(&err), Some("Z543"));
}

/// The normal Z4 of the schemata fixture's user-defined type: a list-like type whose `K1`
/// is a Z6 and whose `K2` is the type itself.
fn list_like_z4() -> Value {
    crate::normalize(&json!({
        "Z1K1": "Z4",
        "Z4K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"},
        "Z4K2": ["Z3",
            {"Z1K1": "Z3", "Z3K1": "Z6", "Z3K2": {"Z1K1": "Z6", "Z6K1": "K1"},
             "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}},
            {"Z1K1": "Z3", "Z3K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"},
             "Z3K2": {"Z1K1": "Z6", "Z6K1": "K2"},
             "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z4K3": "Z831"
    }))
    .unwrap()
}

#[test]
fn user_defined_types_recurse_into_their_own_keys() {
    let z4 = list_like_z4();
    let cell = |head: Value, tail: Value| json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z10001"}, "K1": head, "K2": tail});
    let end = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z10001"}});
    let good = cell(
        json!({"Z1K1": "Z6", "Z6K1": "a"}),
        cell(json!({"Z1K1": "Z6", "Z6K1": "b"}), end.clone()),
    );
    assert!(validate_with_type(&good, &z4, Form::Normal).is_ok());
    let wrong_inner =
        json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z39"}, "Z39K1": {"Z1K1": "Z6", "Z6K1": "x"}});
    let bad = cell(json!({"Z1K1": "Z6", "Z6K1": "a"}), cell(wrong_inner, end));
    let err = validate_with_type(&bad, &z4, Form::Normal).unwrap_err();
    assert_eq!(error_code(&err), Some("Z502"));
}

#[test]
fn mixed_form_accepts_any_form_and_rejects_numbers_and_bad_keys() {
    assert!(validate_mixed(&json!(["Z6", {"Z1K1": "Z6", "Z6K1": "a"}, "b"])).is_ok());
    assert!(validate_mixed(&json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z2", "K7": "x"}})).is_ok());
    let bad_key = validate_mixed(&json!({"Z1K1": "Z2", "4K4": "Z3"})).unwrap_err();
    assert!(codes(&bad_key).contains(&"Z525".to_string()));
    let missing_type = validate_mixed(&json!({"Z4K4": "Z3"})).unwrap_err();
    assert!(codes(&missing_type).contains(&"Z523".to_string()));
    let number = validate_mixed(&json!([1])).unwrap_err();
    assert!(codes(&number).contains(&"Z521".to_string()));
}

#[test]
fn sibling_errors_are_listed_in_a_z509_of_z5s() {
    // As with Ajv, the Z2 literal stops at its first bad key (Z2K1), and the resolver
    // branches (Z18, Z7) add a root-level Z511: two siblings under the root, in a Z509.
    let z2 = json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": 1},
        "Z2K2": {"Z1K1": "Z6", "Z6K1": 2},
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]},
    });
    let err = validate(&z2, "Z2", Form::Canonical).unwrap_err();
    validate(&err, "Z5", Form::Normal).unwrap();
    assert_eq!(err["Z5K2"]["Z502K1"]["Z9K1"], "Z509");
    let siblings = crate::build::list_items(&err["Z5K2"]["Z502K2"]["Z5K2"]["Z509K1"]).unwrap();
    let first = siblings[0];
    assert_eq!(error_code(first), Some("Z526"), "{err}");
    assert_eq!(first["Z5K2"]["Z526K1"]["Z39K1"]["Z6K1"], "Z2K1");
    assert!(codes(first).contains(&"Z533".to_string()));
    assert!(
        !codes(&err).iter().any(|c| c == "Z553"),
        "Z2K2 is never reached"
    );
    assert_eq!(error_code(siblings[siblings.len() - 1]), Some("Z511"));
}

#[test]
fn normal_typed_lists_check_their_items() {
    let list = crate::normalize(&json!(["Z6", "a", "b"])).unwrap();
    assert!(validate(&list, "LIST", Form::Normal).is_ok());
    assert!(validate(&list, "LIST_OF_Z6", Form::Normal).is_ok());
    let refs = crate::normalize(&json!(["Z6", "Z1", "b"])).unwrap();
    assert!(
        validate(&refs, "LIST_OF_Z6", Form::Normal).is_ok(),
        "a reference resolves to a Z6"
    );
    let z40s = crate::normalize(&json!(["Z40", {"Z1K1": "Z40", "Z40K1": "Z41"}])).unwrap();
    assert!(validate(&z40s, "LIST_OF_Z6", Form::Normal).is_err());
    assert!(validate(&json!(["Z6", "a"]), "LIST", Form::Canonical).is_ok());
    assert!(validate(&json!([]), "LIST", Form::Canonical).is_err());
}

fn r(zid: &str) -> Value {
    json!({"Z1K1": "Z9", "Z9K1": zid})
}

/// A call nested `depth` times under local keys, with an invalid error (an array where normal
/// form has a list) at the bottom.
fn nested_calls_over_an_invalid_error(depth: usize) -> Value {
    let bottom = json!({"Z1K1": "Z5", "Z5K1": {"Z1K1": "Z502"}, "Z5K2": ["Z1"]});
    (0..depth).fold(
        bottom,
        |inner, _| json!({"Z1K1": r("Z7"), "Z7K1": r("Z801"), "K1": inner}),
    )
}

/// Each `(schema, object)` pair is checked once, failures too: a value 200 levels deep is
/// checked at once, found invalid or valid. Each level used to cost some four times the one
/// below (57 s at 10 levels in a debug build), for valid values under a `Z99` too (5 s).
#[test]
fn a_deep_value_is_checked_once_per_schema_whatever_its_outcome() {
    let checked = std::thread::spawn(|| {
        let invalid = nested_calls_over_an_invalid_error(200);
        let quoted = json!({"Z1K1": r("Z99"), "Z99K1": invalid.clone()});
        let mut outcomes = Vec::new();
        for form in [Form::Normal, Form::Canonical] {
            outcomes
                .push(validate(&invalid, "Z1", form).map_err(|e| error_code(&e).map(String::from)));
            outcomes
                .push(validate(&quoted, "Z1", form).map_err(|e| error_code(&e).map(String::from)));
        }
        outcomes
    });
    let started = std::time::Instant::now();
    while !checked.is_finished() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still checking after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let z502 = || Err(Some("Z502".to_owned()));
    assert_eq!(checked.join().unwrap(), [z502(), Ok(()), z502(), z502()]);
}

#[test]
fn a_validation_leaves_its_emptied_memo_to_the_next_unless_it_grew_too_large() {
    let spare = || {
        engine::SPARE_KNOWN.with(|spare| {
            spare
                .borrow()
                .as_ref()
                .map(|known| (known.len(), known.capacity()))
        })
    };
    assert!(validate(&json!({"Z1K1": "Z6", "Z6K1": "x"}), "Z1", Form::Normal).is_ok());
    let (len, capacity) = spare().expect("a memo kept");
    assert_eq!(len, 0);
    assert!(capacity > 0);
    // An object of 5,000 strings memoises more pairs than a kept memo may hold.
    let mut wide = serde_json::Map::new();
    wide.insert("Z1K1".to_owned(), json!({"Z1K1": "Z9", "Z9K1": "Z10000"}));
    for n in 1..=5000 {
        wide.insert(format!("Z10000K{n}"), json!({"Z1K1": "Z6", "Z6K1": "x"}));
    }
    let wide = Value::Object(wide);
    assert!(validate(&wide, "Z1", Form::Normal).is_ok());
    // The large memo was dropped; the small one taken by that validation is gone with it.
    assert_eq!(spare(), None);
    assert!(validate(&json!({"Z1K1": "Z6", "Z6K1": "x"}), "Z1", Form::Normal).is_ok());
    let (_, capacity) = spare().expect("a memo kept");
    assert!(capacity <= engine::MAX_SPARE_KNOWN);
}

#[test]
fn a_session_keeps_a_larger_memo_while_sessions_fill_a_quarter_of_it() {
    let spare = || {
        engine::SPARE_SESSION_KNOWN
            .with(|spare| spare.borrow().as_ref().map(|known| known.capacity()))
    };
    let strings = |count: usize| {
        let mut wide = serde_json::Map::new();
        wide.insert("Z1K1".to_owned(), json!({"Z1K1": "Z9", "Z9K1": "Z10000"}));
        for n in 1..=count {
            wide.insert(format!("Z10000K{n}"), json!({"Z1K1": "Z6", "Z6K1": "x"}));
        }
        Value::Object(wide)
    };
    let session_of = |value: &Value| {
        let mut session = Session::new(value, Form::Normal);
        assert!(session.validate(value, "Z1").is_ok());
    };
    session_of(&strings(2500));
    let large = spare().expect("a memo kept");
    assert!(large > engine::MAX_SPARE_KNOWN, "{large}");
    assert!(large <= engine::MAX_SPARE_SESSION_KNOWN, "{large}");
    session_of(&strings(2500));
    assert_eq!(spare(), Some(large));
    // A single validation has its own memo, and leaves the session's alone.
    assert!(validate(&strings(2500), "Z1", Form::Normal).is_ok());
    assert_eq!(spare(), Some(large));
    session_of(&json!({"Z1K1": "Z6", "Z6K1": "x"}));
    let small = spare().expect("a memo kept");
    assert!(small <= engine::MAX_SPARE_KNOWN, "{small}");
    // Past the largest, a session's memo is not kept.
    session_of(&strings(20_000));
    assert_eq!(spare(), None);
}

#[test]
fn a_session_answers_each_part_as_validate_does() {
    // A key whose value is a bad string: the whole is invalid as a Z3, and so is the part.
    let bad_string = json!({"Z1K1": "Z6", "Z6K2": "x"});
    let root = json!({
        "Z1K1": {"Z1K1": "Z9", "Z9K1": "Z3"},
        "Z3K1": {"Z1K1": "Z9", "Z9K1": "Z6"},
        "Z3K2": {"Z1K1": "Z6", "Z6K1": "Z1000K1"},
        "Z3K3": bad_string,
    });
    let parts = [
        (&root, "Z3"),
        (&root["Z3K1"], "Z9"),
        (&root["Z3K2"], "Z6"),
        (&root["Z3K3"], "Z6"),
        (&root["Z3K2"], "Z1"),
        (&root["Z3K3"], "Z1"),
        (&root, "Z3"),
        (&root["Z3K1"], "Z99999"),
    ];
    let mut session = Session::new(&root, Form::Normal);
    for (part, schema) in parts {
        let alone = validate(part, schema, Form::Normal);
        assert_eq!(session.validate(part, schema), alone, "{part} as {schema}");
    }
    assert!(validate(&root, "Z3", Form::Normal).is_err());
    assert!(validate(&root["Z3K2"], "Z6", Form::Normal).is_ok());
}
