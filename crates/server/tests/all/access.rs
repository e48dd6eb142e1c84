//! Who may do what: writes need a token, approving needs an admin, a wrong token is always
//! 401, and under `calls = "approved"` anonymous calls run only approved implementations.

use zeval_server::config::CallPolicy;
use zeval_store::Role;

use crate::common::{call_body, put, put_composition, send, server, token, z2};

const EVALUATE: &str = "/wikifunctions.org/v1/evaluate/";

/// A server under `calls = "approved"`, with [`put_composition`]'s objects stored: the
/// server, an editor's token, an admin's, and Z10000 as stored.
async fn approved_site() -> (crate::common::Server, String, String, serde_json::Value) {
    let (server, editor, admin) = approved_server();
    put_composition(&server, &editor).await;
    let function = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    (server, editor, admin, function)
}

/// A server under `calls = "approved"`, with an editor's and an admin's tokens.
fn approved_server() -> (crate::common::Server, String, String) {
    let server = server(|c| c.access.calls = CallPolicy::Approved);
    let editor = token(&server, "ed", Role::Editor);
    let admin = token(&server, "root", Role::Admin);
    (server, editor, admin)
}

/// `POST`s the call `body` to the evaluate route as the holder of `token` (`None`:
/// anonymously).
async fn evaluate(
    server: &crate::common::Server,
    token: Option<&str>,
    body: Option<String>,
) -> crate::common::Answer {
    send(server, "POST", EVALUATE, token, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_a_token_and_wrong_tokens_are_401() {
    let server = server(|_| {});
    let object = z2("Z10000", serde_json::json!("text")).to_string();
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        None,
        Some(object.clone()),
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(answer.headers["www-authenticate"], "Bearer");
    let answer = send(&server, "POST", "/v1/objects", None, Some(object.clone())).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z10000", None, None)
            .await
            .status,
        404
    );
    for (method, path, body) in [
        ("PUT", "/v1/objects/Z10000", Some(object.clone())),
        ("POST", EVALUATE, Some(call_body("x"))),
        ("GET", "/v1/objects/Z802", None),
    ] {
        let answer = send(&server, method, path, Some("not-a-token"), body).await;
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_approve() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let admin = token(&server, "root", Role::Admin);
    put_composition(&server, &editor).await;
    let answer = send(
        &server,
        "POST",
        "/v1/objects/Z10001/approve",
        Some(&editor),
        None,
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert_eq!(answer.json()["Z5K1"], "Z559");
    let answer = send(
        &server,
        "POST",
        "/v1/objects/Z10000/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        answer.status, 400,
        "a function is not an implementation: {}",
        answer.text
    );
    let answer = send(
        &server,
        "POST",
        "/v1/objects/Z10001/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_mode_runs_only_approved_implementations_for_anonymous_callers() {
    let (server, editor, admin) = approved_server();
    put_composition(&server, &editor).await;
    let refused = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let z5 = refused.json();
    assert_eq!(z5["Z5K1"], "Z559", "{z5}");
    assert!(
        z5.to_string()
            .contains("No implementation of Z10000 may run"),
        "{z5}"
    );
    // A user may run it; built-ins are always allowed.
    let with_token = evaluate(&server, Some(&editor), Some(call_body("hi"))).await;
    assert_eq!(with_token.json()["Z22K1"], "hi", "{}", with_token.text);
    let builtin = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z42", "Z802K2": "a", "Z802K3": "b"}});
    assert_eq!(
        send(&server, "POST", EVALUATE, None, Some(builtin.to_string()))
            .await
            .json()["Z22K1"],
        "b"
    );
    assert_eq!(
        send(
            &server,
            "POST",
            "/v1/objects/Z10001/approve",
            Some(&admin),
            None
        )
        .await
        .status,
        200
    );
    let allowed = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(allowed.json()["Z22K1"], "hi", "{}", allowed.text);
    // Writing the implementation again withdraws the approval.
    let implementation = send(&server, "GET", "/v1/objects/Z10001", None, None)
        .await
        .text;
    assert_eq!(
        send(
            &server,
            "PUT",
            "/v1/objects/Z10001",
            Some(&editor),
            Some(implementation)
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(&server, "POST", EVALUATE, None, Some(call_body("hi")))
            .await
            .status,
        403
    );
}

/// Under `calls = "approved"`, a function given inline runs an approved implementation only
/// under the stored function's own signature. Before, any argument names and types would do:
/// with a C or Rust implementation, each new name was a new artifact key, so an anonymous
/// caller could make approved code compile again at every call.
#[tokio::test(flavor = "multi_thread")]
async fn an_inline_function_runs_approved_code_only_under_its_stored_signature() {
    let (server, editor, admin) = approved_server();
    put_composition(&server, &editor).await;
    let approval = send(
        &server,
        "POST",
        "/v1/objects/Z10001/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let inline_call = |key: &str, returns: &str| {
        serde_json::json!({"zobject": {
            "Z1K1": "Z7",
            "Z7K1": {
                "Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": key,
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": returns,
                "Z8K3": ["Z20"],
                "Z8K4": ["Z14", "Z10001"],
                "Z8K5": "Z10000",
            },
            key: "hi",
        }})
        .to_string()
    };
    // The stored function's signature, given inline (as testers narrow calls): it runs.
    let same = evaluate(&server, None, Some(inline_call("Z10000K1", "Z6"))).await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.json()["Z22K1"], "hi", "{}", same.text);
    for (key, returns) in [("Z10000K7", "Z6"), ("Z10000K1", "Z1")] {
        let other = evaluate(&server, None, Some(inline_call(key, returns))).await;
        assert_eq!(other.status, 403, "{key} → {returns}: {}", other.text);
        let z5 = other.json();
        assert_eq!(z5["Z5K1"], "Z559", "{z5}");
        assert!(z5.to_string().contains("other arguments"), "{z5}");
    }
    // Stored under another ZID, naming Z10000 as its identity with another signature: the
    // same as given inline.
    let impostor = crate::common::z2(
        "Z10002",
        serde_json::json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K7",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6",
            "Z8K3": ["Z20"],
            "Z8K4": ["Z14", "Z10001"],
            "Z8K5": "Z10000",
        }),
    );
    let saved = send(
        &server,
        "PUT",
        "/v1/objects/Z10002",
        Some(&editor),
        Some(impostor.to_string()),
    )
    .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let by_another_name = serde_json::json!({"zobject": {
        "Z1K1": "Z7", "Z7K1": "Z10002", "Z10000K7": "hi"
    }})
    .to_string();
    let refused = send(&server, "POST", EVALUATE, None, Some(by_another_name)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // With a token, the caller's own signature is the caller's business.
    let with_token = evaluate(&server, Some(&editor), Some(inline_call("Z10000K1", "Z1"))).await;
    assert_eq!(with_token.json()["Z22K1"], "hi", "{}", with_token.text);
}

/// An approval keeps the signature its function had: reviewed code runs for anonymous callers
/// only while the function keeps it. Until 2026-12-07 an editor who changed a function's
/// argument or return types had every anonymous call run the approved code under them: here
/// a composition reviewed for text returned a Boolean (200).
#[tokio::test(flavor = "multi_thread")]
async fn an_edit_of_a_functions_signature_withdraws_its_implementations_approvals() {
    let (server, editor, admin, mut function) = approved_site().await;
    let approve = "/v1/objects/Z10001/approve";
    let approval = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    assert_eq!(
        evaluate(&server, None, Some(call_body("hi"))).await.json()["Z22K1"],
        "hi"
    );
    // Labels are not the signature: editing them keeps the approval.
    function["Z2K2"]["Z8K1"][1]["Z17K3"]["Z12K1"] = serde_json::json!(
        ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "text"}]
    );
    put(&server, &editor, "Z10000", &function).await;
    assert_eq!(
        evaluate(&server, None, Some(call_body("hi"))).await.json()["Z22K1"],
        "hi"
    );
    // Any value in, any value out.
    function["Z2K2"]["Z8K1"][1]["Z17K1"] = serde_json::json!("Z1");
    function["Z2K2"]["Z8K2"] = serde_json::json!("Z1");
    put(&server, &editor, "Z10000", &function).await;
    let boolean = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000",
        "Z10000K1": {"Z1K1": "Z40", "Z40K1": "Z41"}}})
    .to_string();
    let refused = evaluate(&server, None, Some(boolean.clone())).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("Z10001 was approved when Z10000 had other arguments"),
        "{}",
        refused.text
    );
    let with_token = evaluate(&server, Some(&editor), Some(boolean.clone())).await;
    assert_eq!(with_token.status, 200, "{}", with_token.text);
    // Approved again, under the new signature.
    let approval = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let runs = evaluate(&server, None, Some(boolean)).await;
    assert_eq!(runs.status, 200, "{}", runs.text);
    assert_eq!(runs.json()["Z22K1"]["Z40K1"], "Z41", "{}", runs.text);
}

/// Under `calls = "approved"`, a function given inline runs only the implementations the
/// stored function it names lists now: an approved implementation an editor took out of the
/// function's list (as Wikifunctions disconnects a faulty one) still ran, until 2026-12-06,
/// for any anonymous caller who named it in an inline copy of the function.
#[tokio::test(flavor = "multi_thread")]
async fn an_implementation_taken_out_of_its_functions_list_does_not_run_for_anonymous_callers() {
    let (server, editor, admin, mut function) = approved_site().await;
    let code = "function Z10000( Z10000K1 ) { return 'second ' + Z10000K1; }";
    let second = z2(
        "Z10005",
        serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}}),
    );
    put(&server, &editor, "Z10005", &second).await;
    for zid in ["Z10001", "Z10005"] {
        let path = format!("/v1/objects/{zid}/approve");
        let approval = send(&server, "POST", &path, Some(&admin), None).await;
        assert_eq!(approval.status, 200, "{zid}: {}", approval.text);
    }
    // Z10001 taken out of the list.
    function["Z2K2"]["Z8K4"] = serde_json::json!(["Z14", "Z10005"]);
    put(&server, &editor, "Z10000", &function).await;
    let inline_call = |implementation: &str| {
        let mut z8 = function["Z2K2"].clone();
        z8["Z8K4"] = serde_json::json!(["Z14", implementation]);
        serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": z8, "Z10000K1": "hi"}}).to_string()
    };
    let listed = send(&server, "POST", EVALUATE, None, Some(inline_call("Z10005"))).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["Z22K1"], "second hi", "{}", listed.text);
    let unlisted = send(&server, "POST", EVALUATE, None, Some(inline_call("Z10001"))).await;
    assert_eq!(unlisted.status, 403, "{}", unlisted.text);
    assert!(
        unlisted
            .text
            .contains("Z10001 is not among the implementations Z10000 lists"),
        "{}",
        unlisted.text
    );
    // With a token, any implementation may be tried.
    let with_token = evaluate(&server, Some(&editor), Some(inline_call("Z10001"))).await;
    assert_eq!(with_token.json()["Z22K1"], "hi", "{}", with_token.text);
}

/// An approval covers the implementation's own revision, so what an approved composition
/// refers to must be a definition (a function or a type), whose own use passes the rule, as
/// calls read it. Until 2026-12-06 a composition whose body
/// referred to Z10050, a function when it was approved, answered whatever an editor later
/// made Z10050 compute, for every anonymous caller ("pwned", 200).
#[tokio::test(flavor = "multi_thread")]
async fn an_approved_composition_refers_only_to_definitions() {
    let (server, editor, admin, mut function) = approved_site().await;
    let as_a_function = {
        let mut copy = function.clone();
        copy["Z2K1"]["Z6K1"] = serde_json::json!("Z10050");
        copy["Z2K2"]["Z8K5"] = serde_json::json!("Z10050");
        copy["Z2K2"]["Z8K1"][1]["Z17K2"] = serde_json::json!("Z10050K1");
        copy
    };
    function["Z2K2"]["Z8K4"] = serde_json::json!(["Z14", "Z10006"]);
    let composition = z2(
        "Z10006",
        serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": "Z10050"}),
    );
    for (zid, object) in [
        ("Z10050", as_a_function),
        ("Z10006", composition),
        ("Z10000", function),
    ] {
        put(&server, &editor, zid, &object).await;
    }
    let approve = "/v1/objects/Z10006/approve";
    let approval = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    // Z10050 made to compute an answer of the editor's choosing.
    let computed = z2(
        "Z10050",
        serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "pwned"}),
    );
    put(&server, &editor, "Z10050", &computed).await;
    let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert!(!call.text.contains("pwned\""), "{}", call.text);
    assert_eq!(call.status, 403, "{}", call.text);
    assert!(
        call.text
            .contains("refers to Z10050, a Z7 an editor may change"),
        "{}",
        call.text
    );
    // Nor is it approved again.
    let refused = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("refers to Z10050"),
        "{}",
        refused.text
    );
    // An editor's call still runs it.
    let with_token = evaluate(&server, Some(&editor), Some(call_body("hi"))).await;
    assert_eq!(with_token.json()["Z22K1"], "pwned", "{}", with_token.text);
}

/// An approval covers the implementation's own revision, so the code that runs must be
/// written in it. A source that referred to another stored object (`"Z16K2": "Z10003"`)
/// was approved, and then ran whatever an editor later wrote into Z10003, for every
/// anonymous caller. Such an implementation is now refused approval, and one approved by
/// other means (before the rule, say) does not run.
#[tokio::test(flavor = "multi_thread")]
async fn approved_code_is_written_in_the_implementation_itself() {
    let (server, editor, admin, mut function) = approved_site().await;
    let code = "function Z10000( Z10000K1 ) { return Z10000K1; }";
    function["Z2K2"]["Z8K4"] = serde_json::json!(["Z14", "Z10004"]);
    let implementation = |source: serde_json::Value| {
        z2(
            "Z10004",
            serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10000",
                "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": source}}),
        )
    };
    for (zid, object) in [
        ("Z10000", function),
        ("Z10003", z2("Z10003", serde_json::json!(code))),
        ("Z10004", implementation(serde_json::json!("Z10003"))),
    ] {
        put(&server, &editor, zid, &object).await;
    }
    let approve = "/v1/objects/Z10004/approve";
    let refused = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("source (Z16K2)"), "{}", refused.text);
    // Approved in the store itself: still not run.
    let store = zeval_store::SqliteStore::open_in(server.data_dir.path()).unwrap();
    let root = store.authenticate(&admin).unwrap().unwrap();
    store.approve("Z10004", &root).unwrap();
    let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(call.status, 403, "{}", call.text);
    assert_eq!(call.json()["Z5K1"], "Z559", "{}", call.text);
    assert!(call.text.contains("source (Z16K2)"), "{}", call.text);
    // The same code written in the implementation is approved, and runs.
    let written = implementation(serde_json::json!(code)).to_string();
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10004",
        Some(&editor),
        Some(written),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let approved = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(call.json()["Z22K1"], "hi", "{}", call.text);
}

/// An implementation an editor stores is approved like any other, even one that names a
/// built-in (`Z14K4`): counted as the program's own code, it ran for anonymous callers
/// unapproved, and an editor could put a built-in (Echo, here) in place of an approved
/// function's reviewed implementations.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_implementation_naming_a_built_in_needs_an_approval() {
    let (server, editor, admin, mut function) = approved_site().await;
    function["Z2K2"]["Z8K4"] = serde_json::json!(["Z14", "Z10004"]);
    let stored_function = function["Z2K2"].clone();
    let echo = z2(
        "Z10004",
        serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K4": "Z901"}),
    );
    for (zid, object) in [("Z10004", echo), ("Z10000", function)] {
        put(&server, &editor, zid, &object).await;
    }
    let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(call.status, 403, "{}", call.text);
    assert_eq!(call.json()["Z5K1"], "Z559", "{}", call.text);
    assert!(
        call.text.contains("Z10004 is not approved"),
        "{}",
        call.text
    );
    // Nor does one written into the function, or the catalogue's implementation of Echo,
    // also when the function names Echo as its identity (`Z8K5`) under a signature of its
    // own.
    for (implementation, identity) in [
        (
            serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K4": "Z901"}),
            "Z10000",
        ),
        (serde_json::json!("Z901"), "Z10000"),
        (serde_json::json!("Z901"), "Z801"),
        (
            serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z801", "Z14K4": "Z901"}),
            "Z801",
        ),
        (serde_json::json!("Z10004"), "Z10000"),
    ] {
        let mut function = z2("Z10000", serde_json::Value::Null);
        function["Z2K2"] = stored_function.clone();
        function["Z2K2"]["Z8K4"] = serde_json::json!(["Z14", implementation.clone()]);
        function["Z2K2"]["Z8K5"] = serde_json::json!(identity);
        put(&server, &editor, "Z10000", &function).await;
        let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
        assert_eq!(
            call.status, 403,
            "{implementation} of {identity}: {}",
            call.text
        );
    }
    let approved = send(
        &server,
        "POST",
        "/v1/objects/Z10004/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let call = send(&server, "POST", EVALUATE, None, Some(call_body("hi"))).await;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(call.json()["Z22K1"], "hi", "{}", call.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_mode_needs_a_token_to_call() {
    let server = server(|c| c.access.calls = CallPolicy::Users);
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    assert_eq!(
        send(&server, "POST", EVALUATE, None, Some(call_body("hi")))
            .await
            .status,
        401
    );
    assert_eq!(
        send(
            &server,
            "POST",
            EVALUATE,
            Some(&editor),
            Some(call_body("hi"))
        )
        .await
        .json()["Z22K1"],
        "hi"
    );
}

/// The middleware checks a token and hands the caller it found to the route: one store
/// lookup per request, not one in the middleware and another in the route; and none for the
/// next requests with a token found valid (`token_checks::KNOWN_TOKEN_TIME`). A wrong token is
/// still refused, and a route still sees who the caller is (the editor's write is authored
/// by them, the anonymous write is refused).
#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_looked_up_once_per_request() {
    use std::sync::atomic::Ordering;

    let data_dir = tempfile::tempdir().unwrap();
    let config = zeval_server::Config {
        data_dir: data_dir.path().to_path_buf(),
        access: zeval_server::config::Access {
            calls: CallPolicy::Users,
        },
        ..zeval_server::Config::default()
    };
    let (server, counting) = crate::common::counting_server(config, data_dir);
    let editor = token(&server, "ed", Role::Editor);
    let checks_of = |before: usize| counting.token_checks.load(Ordering::SeqCst) - before;

    let before = counting.token_checks.load(Ordering::SeqCst);
    let object = z2("Z10000", serde_json::json!("text")).to_string();
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(object),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(checks_of(before), 1, "a write");
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None).await;
    assert!(history.text.contains("\"ed\""), "{}", history.text);

    let before = counting.token_checks.load(Ordering::SeqCst);
    let call = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z40", "Z40K1": "Z41"}, "Z802K2": "yes", "Z802K3": "no"}})
    .to_string();
    let answer = send(&server, "POST", EVALUATE, Some(&editor), Some(call.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("yes"), "{}", answer.text);
    assert_eq!(checks_of(before), 0, "a call with a token found valid");

    // Under `calls = "users"` the route still knows an anonymous caller from a user.
    let answer = send(&server, "POST", EVALUATE, None, Some(call)).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    let before = counting.token_checks.load(Ordering::SeqCst);
    let answer = send(
        &server,
        "POST",
        "/v1/objects",
        Some("not-a-token"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(checks_of(before), 1, "a wrong token");
}

/// An approval names the revision the admin reviewed (`If-Match`, the `ETag` of the GET):
/// when an editor has saved another since, nothing is approved and the answer is 409 with the
/// current revision. Without it, the revision current when the approval landed was approved,
/// whatever it held.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_of_a_reviewed_revision_approves_no_other() {
    use tower::ServiceExt;
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let admin = token(&server, "root", Role::Admin);
    put_composition(&server, &editor).await;
    // The editor saves revision 2 after the admin read revision 1.
    put_composition(&server, &editor).await;
    let approve = |revision: &str| {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/objects/Z10001/approve")
            .header("Authorization", format!("Bearer {admin}"))
            .header("If-Match", format!("\"{revision}\""))
            .body(axum::body::Body::empty())
            .unwrap();
        let router = server.router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, body) = approve("1").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("revision 2"), "{body}");
    let approval = server_approval(&server).await;
    assert_eq!(approval, None, "approved anyway");
    let (status, body) = approve("2").await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["revision"], 2, "{answer}");
}

/// The approval keeps the signature of the function as it is when the approval lands, and
/// the approved code runs under it: an admin names the function and its revision they
/// reviewed (`?function=Z…&function_revision=`), and an edit of the function saved in
/// between fails the approval (409). Until 2026-12-07 the approval kept whatever the
/// function was then.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_names_the_function_revision_the_admin_reviewed() {
    let (server, editor, admin, mut function) = approved_site().await;
    // The admin reviewed Z10001 under revision 1 of Z10000; an editor widens it to take and
    // answer any value.
    function["Z2K2"]["Z8K1"][1]["Z17K1"] = serde_json::json!("Z1");
    function["Z2K2"]["Z8K2"] = serde_json::json!("Z1");
    put(&server, &editor, "Z10000", &function).await;
    let approve = |query: &str| {
        let path = format!("/v1/objects/Z10001/approve{query}");
        let admin = admin.clone();
        let server = &server;
        async move { send(server, "POST", &path, Some(&admin), None).await }
    };
    let stale = approve("?function=Z10000&function_revision=1").await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(
        stale.text.contains("Z10000 is at revision 2 now, not 1"),
        "{}",
        stale.text
    );
    assert_eq!(server_approval(&server).await, None, "approved anyway");
    for (query, refused) in [
        (
            "?function=Z10000&function_revision=x",
            "function_revision must be",
        ),
        ("?function_revision=2", "give both, or neither"),
        // The revision of another object is not the function's.
        (
            "?function=Z10001&function_revision=1",
            "implements Z10000, not Z10001",
        ),
    ] {
        let malformed = approve(query).await;
        assert_eq!(malformed.status, 400, "{query}: {}", malformed.text);
        assert!(
            malformed.text.contains(refused),
            "{query}: {}",
            malformed.text
        );
        assert_eq!(
            server_approval(&server).await,
            None,
            "{query}: approved anyway"
        );
    }
    let current = approve("?function=Z10000&function_revision=2").await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(server_approval(&server).await, Some(1));
}

/// The revision of Z10001's approval in the server's store, if any.
async fn server_approval(server: &crate::common::Server) -> Option<u64> {
    let store = zeval_store::SqliteStore::open_in(server.data_dir.path()).unwrap();
    store.approval("Z10001").unwrap().map(|a| a.revision)
}

/// A stored type in canonical form: one key, `Z{zid}K1`, of type `key_type`.
fn one_key_type(zid: &str, key_type: &str) -> serde_json::Value {
    z2(
        zid,
        serde_json::json!({"Z1K1": "Z4", "Z4K1": zid,
            "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": key_type, "Z3K2": format!("{zid}K1"),
                "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z4K3": "Z101"}),
    )
}

/// The route approving [`put_identity_over`]'s implementation.
const APPROVE_Z10021: &str = "/v1/objects/Z10021/approve";

/// Stores, as `editor`, function Z10020 from and to stored type `type_zid`, and its
/// implementation Z10021, a composition that answers its argument.
async fn put_identity_over(server: &crate::common::Server, editor: &str, type_zid: &str) {
    let function = z2(
        "Z10020",
        serde_json::json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": type_zid, "Z17K2": "Z10020K1",
                "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": type_zid, "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10021"], "Z8K5": "Z10020"}),
    );
    put(server, editor, "Z10020", &function).await;
    let identity = z2(
        "Z10021",
        serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10020",
            "Z14K2": {"Z1K1": "Z18", "Z18K1": "Z10020K1"}}),
    );
    put(server, editor, "Z10021", &identity).await;
}

/// Reviewed code runs under the types it was reviewed with: until 2026-12-07 an editor who
/// redefined a stored type a function's signature names (its keys, its validator) left the
/// function unchanged, so every approval of its implementations held, and anonymous calls
/// ran the approved code on values it was never reviewed for.
#[tokio::test(flavor = "multi_thread")]
async fn redefining_a_type_a_function_names_withdraws_its_implementations_approvals() {
    let (server, editor, admin) = approved_server();
    put(&server, &editor, "Z10010", &one_key_type("Z10010", "Z6")).await;
    put_identity_over(&server, &editor, "Z10010").await;
    let approve = APPROVE_Z10021;
    let approval = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let call = |value: serde_json::Value| {
        serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10020",
            "Z10020K1": {"Z1K1": "Z10010", "Z10010K1": value}}})
        .to_string()
    };
    let text = evaluate(&server, None, Some(call(serde_json::json!("hi")))).await;
    assert_eq!(text.status, 200, "{}", text.text);
    assert_eq!(text.json()["Z22K1"]["Z10010K1"], "hi", "{}", text.text);
    // Labels are not the type: naming the key keeps the approval.
    let mut labelled = one_key_type("Z10010", "Z6");
    labelled["Z2K2"]["Z4K2"][1]["Z3K3"] = serde_json::json!({"Z1K1": "Z12",
        "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "text"}]});
    put(&server, &editor, "Z10010", &labelled).await;
    let relabelled = evaluate(&server, None, Some(call(serde_json::json!("hi")))).await;
    assert_eq!(relabelled.status, 200, "{}", relabelled.text);
    // The key now takes any value: the function is unchanged.
    put(&server, &editor, "Z10010", &one_key_type("Z10010", "Z1")).await;
    let boolean = serde_json::json!({"Z1K1": "Z40", "Z40K1": "Z41"});
    let refused = evaluate(&server, None, Some(call(boolean.clone()))).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("Z10021 was approved when the types Z10020 names were defined otherwise"),
        "{}",
        refused.text
    );
    let with_token = evaluate(&server, Some(&editor), Some(call(boolean.clone()))).await;
    assert_eq!(with_token.status, 200, "{}", with_token.text);
    // Approved again, under the type as it is now.
    let approval = send(&server, "POST", approve, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let runs = evaluate(&server, None, Some(call(boolean))).await;
    assert_eq!(runs.status, 200, "{}", runs.text);
    assert_eq!(
        runs.json()["Z22K1"]["Z10010K1"]["Z40K1"],
        "Z41",
        "{}",
        runs.text
    );
}

/// The rule first compares a type an approval pinned where the call first reaches its
/// function: here at the bottom of a recursion 400 calls deep, with a type as deep as the
/// store keeps (a key of type `Z881(Z881(…(Z6)))`, 990 levels). The comparison (reading,
/// copying and comparing the type) runs with room on the stack, so the server answers
/// rather than overflowing the thread's stack, which would end the process.
#[tokio::test(flavor = "multi_thread")]
async fn a_deep_type_first_compared_at_the_bottom_of_a_deep_recursion() {
    let (server, editor, admin) = approved_server();
    let mut key_type = serde_json::json!("Z6");
    for _ in 0..990 {
        key_type = serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": key_type});
    }
    let deep = z2(
        "Z10010",
        serde_json::json!({"Z1K1": "Z4", "Z4K1": "Z10010",
            "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": key_type, "Z3K2": "Z10010K1",
                "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z4K3": "Z101"}),
    );
    put(&server, &editor, "Z10010", &deep).await;
    put_identity_over(&server, &editor, "Z10010").await;
    // Z10030(list, value): the identity of `value` once `list` is empty, else itself on the
    // list's tail.
    let argument = |name: &str| {
        serde_json::json!({"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": name,
            "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}})
    };
    let recursion = z2(
        "Z10030",
        serde_json::json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", argument("Z10030K1"), argument("Z10030K2")],
            "Z8K2": "Z1", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10031"], "Z8K5": "Z10030"}),
    );
    put(&server, &editor, "Z10030", &recursion).await;
    let reference = |name: &str| serde_json::json!({"Z1K1": "Z18", "Z18K1": name});
    let body = serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": reference("Z10030K1")},
        "Z802K2": {"Z1K1": "Z7", "Z7K1": "Z10020", "Z10020K1": reference("Z10030K2")},
        "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z10030",
            "Z10030K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": reference("Z10030K1")},
            "Z10030K2": reference("Z10030K2")}});
    let composition = z2(
        "Z10031",
        serde_json::json!({"Z1K1": "Z14", "Z14K1": "Z10030", "Z14K2": body}),
    );
    put(&server, &editor, "Z10031", &composition).await;
    for approve in [APPROVE_Z10021, "/v1/objects/Z10031/approve"] {
        let approval = send(&server, "POST", approve, Some(&admin), None).await;
        assert_eq!(approval.status, 200, "{approve}: {}", approval.text);
    }
    let mut list = vec![serde_json::json!("Z6")];
    list.extend(std::iter::repeat_n(serde_json::json!("a"), 400));
    let call = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10030",
        "Z10030K1": list,
        "Z10030K2": {"Z1K1": "Z10010", "Z10010K1": "hi"}}})
    .to_string();
    let answer = evaluate(&server, None, Some(call.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["Z22K1"]["Z10010K1"], "hi", "{}", answer.text);
    // The comparison is made there: redefined (shallow now), the type withdraws Z10021's
    // approval at the bottom of the recursion.
    put(&server, &editor, "Z10010", &one_key_type("Z10010", "Z6")).await;
    let refused = evaluate(&server, None, Some(call)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("Z10021"), "{}", refused.text);
}

/// `GET /v1/objects/Z10021/approval`, anonymously.
async fn preview_z10021(server: &crate::common::Server) -> serde_json::Value {
    let answer = send(server, "GET", "/v1/objects/Z10021/approval", None, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

/// An approval names what the admin reviewed of the types too: `GET …/approval` shows what
/// approving would keep (the function's signature with the stored types it names) and its
/// tag, and an approval naming the tag lands only while it would keep the same. Until
/// 2026-12-07 the admin named the function's revision only, and a type an editor redefined
/// between the review and the click was pinned as redefined.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_names_the_types_the_admin_reviewed() {
    let (server, editor, admin) = approved_server();
    put(&server, &editor, "Z10010", &one_key_type("Z10010", "Z6")).await;
    put_identity_over(&server, &editor, "Z10010").await;
    let reviewed = preview_z10021(&server).await;
    assert_eq!(
        (&reviewed["function"], &reviewed["function_revision"]),
        (&serde_json::json!("Z10020"), &serde_json::json!(1))
    );
    assert_eq!(
        reviewed["signature"]["definitions"]["Z10010"]["Z4K2"][1]["Z3K1"], "Z6",
        "{reviewed}"
    );
    let approve =
        |tag: &str| format!("{APPROVE_Z10021}?function=Z10020&function_revision=1&signature={tag}");
    // The key now takes any value; the function is unchanged.
    put(&server, &editor, "Z10010", &one_key_type("Z10010", "Z1")).await;
    let tag = reviewed["signature_tag"].as_str().unwrap();
    let stale = send(&server, "POST", &approve(tag), Some(&admin), None).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(stale.text.contains("not as reviewed"), "{}", stale.text);
    let anonymous = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10020",
        "Z10020K1": {"Z1K1": "Z10010", "Z10010K1": "hi"}}})
    .to_string();
    let not_approved = evaluate(&server, None, Some(anonymous.clone())).await;
    assert_eq!(not_approved.status, 403, "{}", not_approved.text);
    let malformed = send(&server, "POST", &approve("xyz"), Some(&admin), None).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    // Reviewed again, as it is now.
    let again = preview_z10021(&server).await;
    assert_ne!(again["signature_tag"], reviewed["signature_tag"]);
    let tag = again["signature_tag"].as_str().unwrap();
    let approval = send(&server, "POST", &approve(tag), Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let runs = evaluate(&server, None, Some(anonymous)).await;
    assert_eq!(runs.status, 200, "{}", runs.text);
    // Not an implementation: nothing to preview.
    let function = send(&server, "GET", "/v1/objects/Z10020/approval", None, None).await;
    assert_eq!(function.status, 400, "{}", function.text);
}

/// An answer kept in the result cache depends on the types the rule compared, not only on
/// what the call read: a call of Z10020 never reads Z10011 (the type of Z10010's key), and
/// until 2026-12-07 its answer outlived Z10011's redefinition, for anonymous callers, for as
/// long as answers are kept (30 days by default).
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_answer_does_not_outlive_a_type_its_approval_pinned() {
    let (server, editor, admin) = approved_server();
    put(&server, &editor, "Z10011", &one_key_type("Z10011", "Z6")).await;
    put(
        &server,
        &editor,
        "Z10010",
        &one_key_type("Z10010", "Z10011"),
    )
    .await;
    put_identity_over(&server, &editor, "Z10010").await;
    let approval = send(&server, "POST", APPROVE_Z10021, Some(&admin), None).await;
    assert_eq!(approval.status, 200, "{}", approval.text);
    let call = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10020",
        "Z10020K1": {"Z1K1": "Z10010", "Z10010K1": {"Z1K1": "Z10011", "Z10011K1": "hi"}}}})
    .to_string();
    for cached in [false, true] {
        let answer = evaluate(&server, None, Some(call.clone())).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(
            answer.text.contains("functionCallCachedOn"),
            cached,
            "{}",
            answer.text
        );
    }
    put(&server, &editor, "Z10011", &one_key_type("Z10011", "Z1")).await;
    let refused = evaluate(&server, None, Some(call)).await;
    assert_eq!(refused.status, 403, "the kept answer: {}", refused.text);
    assert!(refused.text.contains("Z10011 differs"), "{}", refused.text);
}

/// A type whose keys name another stored type, 70 deep: more than an approval keeps its
/// code to (each is read per request that runs it), so it cannot be approved.
#[tokio::test(flavor = "multi_thread")]
async fn code_under_types_naming_too_many_stored_objects_cannot_be_approved() {
    let (server, editor, admin) = approved_server();
    for n in (0..70).rev() {
        let zid = format!("Z{}", 10100 + n);
        let key_type = if n == 69 {
            "Z6".to_owned()
        } else {
            format!("Z{}", 10101 + n)
        };
        put(&server, &editor, &zid, &one_key_type(&zid, &key_type)).await;
    }
    put_identity_over(&server, &editor, "Z10100").await;
    let approval = send(&server, "POST", APPROVE_Z10021, Some(&admin), None).await;
    assert_eq!(approval.status, 400, "{}", approval.text);
    assert!(
        approval.text.contains("name more than 64 stored objects"),
        "{}",
        approval.text
    );
}
