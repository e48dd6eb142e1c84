//! The access rules and a bad PUT, against a real process.

use serde_json::json;

use crate::common::{Server, add_user, call, put_js_function, request, z2};

#[test]
fn access_rules_and_bad_writes() {
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let admin = add_user(data.path(), "root", "admin");
    let config = data.path().join("zeval.toml");
    std::fs::write(&config, "[access]\ncalls = \"approved\"\n").unwrap();
    let server = Server::start(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let orch = server.orch();

    // A write without a token, or with a wrong one, is refused.
    let object = z2("Z10000", json!("text"));
    assert_eq!(
        request(
            "PUT",
            &format!("{orch}/v1/objects/Z10000"),
            None,
            Some(&object)
        )
        .status,
        401
    );
    assert_eq!(
        request(
            "PUT",
            &format!("{orch}/v1/objects/Z10000"),
            Some("wrong"),
            Some(&object)
        )
        .status,
        401
    );
    put_js_function(orch, &editor);

    // A bad PUT gets 400 with the Z5 and changes nothing.
    let before = request("GET", &format!("{orch}/v1/objects/Z10001"), None, None).text;
    let mut bad: serde_json::Value = serde_json::from_str(&before).unwrap();
    bad["Z2K2"]["Z14K3"]["Z16K2"] = json!(["not", "a", "string"]);
    let answer = request(
        "PUT",
        &format!("{orch}/v1/objects/Z10001"),
        Some(&editor),
        Some(&bad),
    );
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.json()["Z1K1"], "Z5");
    assert_eq!(
        request("GET", &format!("{orch}/v1/objects/Z10001"), None, None).text,
        before
    );
    let history = request(
        "GET",
        &format!("{orch}/v1/objects/Z10001/history"),
        None,
        None,
    )
    .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);

    // Under "approved": anonymous calls of an unapproved implementation are refused, a
    // user's run; once an admin approves, anonymous calls run too.
    let refused = call(orch, None, "x");
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json()["Z5K1"], "Z559");
    assert_eq!(call(orch, Some("wrong"), "x").status, 401);
    assert_eq!(call(orch, Some(&editor), "x").json()["Z22K1"], "X");
    let approve = format!("{orch}/v1/objects/Z10001/approve");
    assert_eq!(request("POST", &approve, Some(&editor), None).status, 403);
    assert_eq!(request("POST", &approve, Some(&admin), None).status, 200);
    let allowed = call(orch, None, "x");
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(allowed.json()["Z22K1"], "X");

    // The approval holds under the stored signature only: a function given inline that
    // lists the approved implementation runs it with the stored argument names and return
    // type, and is refused with any other (`access::an_inline_function_runs_approved_code_
    // only_under_its_stored_signature` in the server crate checks the same below a server).
    let inline_call = |key: &str, returns: &str| {
        json!({"zobject": {
            "Z1K1": "Z7",
            "Z7K1": {
                "Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": key,
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": returns, "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000",
            },
            key: "x",
        }})
    };
    let evaluate = format!("{orch}/wikifunctions.org/v1/evaluate/");
    let same = request(
        "POST",
        &evaluate,
        None,
        Some(&inline_call("Z10000K1", "Z6")),
    );
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.json()["Z22K1"], "X", "{}", same.text);
    for (key, returns) in [("Z10000K7", "Z6"), ("Z10000K1", "Z1")] {
        let other = request("POST", &evaluate, None, Some(&inline_call(key, returns)));
        assert_eq!(other.status, 403, "{key} → {returns}: {}", other.text);
        assert_eq!(other.json()["Z5K1"], "Z559", "{}", other.text);
    }
}
