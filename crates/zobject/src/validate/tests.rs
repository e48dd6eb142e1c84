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
