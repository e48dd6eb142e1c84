//! The objects API: write, read, history, search, create with allocation, the MediaWiki
//! route, and a bad PUT that leaves the store unchanged.

use serde_json::json;
use zeval_store::Role;

use crate::common::{call_body, put_composition, send, server, token, z2};

#[tokio::test(flavor = "multi_thread")]
async fn written_objects_are_served_and_callable() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    let answer = send(&server, "GET", "/v1/objects/Z10000", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["Z2K2"]["Z8K5"], "Z10000");
    let call = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(call_body("hello")),
    )
    .await;
    assert_eq!(call.json()["Z22K1"], "hello", "{}", call.text);
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None)
        .await
        .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(history["revisions"][0]["author"], "ed");
    let found = send(
        &server,
        "GET",
        "/v1/objects?type=Z8&search=Z10000",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(found["objects"][0]["zid"], "Z10000", "{found}");
    let fetched = send(
        &server,
        "GET",
        "/w/api.php?action=wikilambda_fetch&format=json&zids=Z10000|Z802",
        None,
        None,
    )
    .await
    .json();
    let text = fetched["Z10000"]["wikilambda_fetch"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap()["Z2K1"]["Z6K1"],
        "Z10000"
    );
    assert!(fetched["Z802"]["wikilambda_fetch"].is_string());
    let missing = send(
        &server,
        "GET",
        "/w/api.php?action=wikilambda_fetch&format=json&zids=Z99999",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(missing["error"]["code"], "wikilambda-zerror", "{missing}");
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z99999", None, None)
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_put_leaves_the_store_unchanged() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    let before = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .text;
    // Z8K1 must be a list of Z17s; here it is a number.
    let mut bad = serde_json::from_str::<serde_json::Value>(&before).unwrap();
    bad["Z2K2"]["Z8K1"] = json!(7);
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(bad.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    // Canonical when it can be (here it quotes a number, so it stays normal).
    let z5 = answer.json();
    assert_eq!(zeval_zobject::build::type_zid(&z5), Some("Z5"), "{z5}");
    assert_eq!(zeval_zobject::error::error_code(&z5), Some("Z502"), "{z5}");
    // Z2K1 naming another ZID is refused too.
    let other = z2("Z10005", json!("text"));
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(other.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let after = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .text;
    assert_eq!(before, after);
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None)
        .await
        .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);
    // Built-ins cannot be overwritten.
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z802",
        Some(&editor),
        Some(z2("Z802", json!("x")).to_string()),
    )
    .await;
    assert_eq!(answer.status, 409, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn post_allocates_from_z10000_and_replaces_the_placeholder() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let object = z2("Z0", json!("a string"));
    let first = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(object.to_string()),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json()["zid"], "Z10000");
    let second = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(object.to_string()),
    )
    .await;
    assert_eq!(second.json()["zid"], "Z10001");
    let stored = send(&server, "GET", "/v1/objects/Z10001", None, None)
        .await
        .json();
    assert_eq!(stored["Z2K1"]["Z6K1"], "Z10001");
    let bad = z2("Z0", json!({"Z1K1": "Z6", "Z6K1": 5}));
    let answer = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(bad.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z10002", None, None)
            .await
            .status,
        404
    );
}
