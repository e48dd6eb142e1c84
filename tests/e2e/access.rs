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
}
