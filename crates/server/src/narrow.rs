//! Narrowing a call to some of its function's implementations, by rewriting it: `Z7K1`
//! becomes the function's Z8 inline, with `Z8K4` holding only the chosen implementations.
//! `Z8K5` (the identity) still names the function, so evaluators see the same function name
//! and the metadata the same implementation IDs.
//!
//! Two users:
//! - testers run each tester once per implementation ([`crate::testers`]);
//! - under `calls = "approved"`, an anonymous call keeps only approved implementations
//!   ([`approved_only`]). Only the top-level function is checked: a composition that an admin
//!   approved may call other functions, as on Wikifunctions, where approving a composition
//!   vouches for what it calls.

use zeval_zobject::build::ref_zid;
use zeval_zobject::{Map, Value};

use crate::access::permission_error;
use crate::{Repository, RepositoryError};

/// The implementations of a canonical or normal Z8 (`Z8K4`), in list order.
pub fn implementations(z8: &Value) -> Vec<Value> {
    list(z8.get("Z8K4"))
}

/// The testers of a Z8 (`Z8K3`), in list order.
pub fn testers(z8: &Value) -> Vec<Value> {
    list(z8.get("Z8K3"))
}

/// The items of a canonical benjamin array or a normal typed list.
pub fn list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.iter().skip(1).cloned().collect(),
        Some(list @ Value::Object(_)) => zeval_zobject::build::list_items(list)
            .map(|items| items.into_iter().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `call` with `Z7K1` replaced by `z8` whose `Z8K4` holds only `keep` (canonical).
pub fn with_implementations(call: &Value, z8: &Value, keep: &[Value]) -> Value {
    let mut z8 = z8.clone();
    if let Value::Object(m) = &mut z8 {
        let mut list = vec![Value::String("Z14".into())];
        list.extend(keep.iter().cloned());
        m.insert("Z8K4".into(), Value::Array(list));
    }
    let mut call = call.clone();
    if let Value::Object(m) = &mut call {
        m.insert("Z7K1".into(), z8);
    }
    call
}

/// The function ZID a call names in `Z7K1`, when it is a reference.
pub fn called_function(call: &Value) -> Option<&str> {
    ref_zid(call.get("Z7K1")?)
}

/// The value of a stored object (`Z2K2`).
pub fn stored_value(
    repository: &dyn Repository,
    zid: &str,
) -> Result<Option<Value>, RepositoryError> {
    Ok(repository.get(zid)?.and_then(|z2| match z2 {
        Value::Object(mut m) => m.remove("Z2K2"),
        _ => None,
    }))
}

/// For an anonymous call under `calls = "approved"`: the call narrowed to the approved
/// implementations of its function, or the Z5 (Z559) that says why it may not run.
///
/// Built-in functions (the catalogue) are always allowed. A call whose `Z7K1` is not a
/// reference cannot be checked, so it is refused.
pub fn approved_only(
    repository: &dyn Repository,
    call: &Value,
) -> Result<Result<Value, Value>, RepositoryError> {
    let Some(function) = called_function(call).map(str::to_owned) else {
        return Ok(Err(permission_error(
            "Anonymous calls may only call a stored function by its ZID (calls = \"approved\"); \
             send a bearer token to call anything else.",
        )));
    };
    if zeval_catalogue::get(&function).is_some() {
        return Ok(Ok(call.clone()));
    }
    // A function that does not exist runs nothing: let the orchestrator report it.
    let Some(z8) = stored_value(repository, &function)? else {
        return Ok(Ok(call.clone()));
    };
    let all = implementations(&z8);
    let mut approved = Vec::new();
    for implementation in &all {
        if let Some(zid) = ref_zid(implementation)
            && repository.is_approved(zid)?
        {
            approved.push(implementation.clone());
        }
    }
    if approved.is_empty() {
        let names: Vec<String> = all
            .iter()
            .map(|i| ref_zid(i).unwrap_or("an inline implementation").to_owned())
            .collect();
        return Ok(Err(permission_error(&format!(
            "No implementation of {function} is approved ({}), and anonymous calls may only run \
             approved implementations (calls = \"approved\"). Send a bearer token, or ask an \
             admin to approve one.",
            if names.is_empty() {
                "it has none".to_owned()
            } else {
                names.join(", ")
            }
        ))));
    }
    if approved.len() == all.len() {
        return Ok(Ok(call.clone()));
    }
    Ok(Ok(with_implementations(call, &z8, &approved)))
}

/// Replaces every `Z0` placeholder (a string `Z0`, or a key or string starting `Z0K`) by
/// `zid`, as WikiLambda does when it creates an object.
pub fn replace_placeholder(value: &Value, zid: &str) -> Value {
    fn fix(s: &str, zid: &str) -> String {
        if s == "Z0" {
            zid.to_owned()
        } else if let Some(rest) = s.strip_prefix("Z0K") {
            format!("{zid}K{rest}")
        } else {
            s.to_owned()
        }
    }
    match value {
        Value::String(s) => Value::String(fix(s, zid)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| replace_placeholder(v, zid)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (fix(k, zid), replace_placeholder(v, zid)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn narrowing_keeps_identity_and_arguments() {
        let z8 = json!({"Z1K1": "Z8", "Z8K4": ["Z14", "Z10001", "Z10002"], "Z8K5": "Z10000"});
        let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"});
        let narrowed = with_implementations(&call, &z8, &[json!("Z10002")]);
        assert_eq!(narrowed["Z7K1"]["Z8K4"], json!(["Z14", "Z10002"]));
        assert_eq!(narrowed["Z7K1"]["Z8K5"], json!("Z10000"));
        assert_eq!(narrowed["Z10000K1"], json!("abc"));
        assert_eq!(implementations(&z8), vec![json!("Z10001"), json!("Z10002")]);
    }

    #[test]
    fn placeholders_become_the_new_zid() {
        let v = json!({"Z2K1": {"Z1K1": "Z6", "Z6K1": "Z0"}, "Z2K2": {"Z8K5": "Z0",
            "Z8K1": ["Z17", {"Z17K2": "Z0K1"}], "Z0K1": "x", "text": "Z01"}});
        let fixed = replace_placeholder(&v, "Z10004");
        assert_eq!(fixed["Z2K1"]["Z6K1"], "Z10004");
        assert_eq!(fixed["Z2K2"]["Z8K5"], "Z10004");
        assert_eq!(fixed["Z2K2"]["Z8K1"][1]["Z17K2"], "Z10004K1");
        assert_eq!(fixed["Z2K2"]["Z10004K1"], "x");
        assert_eq!(fixed["Z2K2"]["text"], "Z01");
    }
}
