//! The playground's routes: its pages and files, the guest modules at content-hashed URLs,
//! `POST /v1/plan` (what a browser would run, decided by the real orchestrator, under the
//! access rules of calls) and `/playground/hold`. The browser side is tested in a real
//! Chromium by the root package's end-to-end tests (tests/e2e/browser.rs).

use std::time::{Duration, Instant};

use serde_json::json;
use zeval_server::config::CallPolicy;

use crate::common::{put, put_composition, send, server, token, z2};

/// A directory standing in for the guests: the plan only reads and hashes the files.
fn guest_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quickjs.wasm"), b"\0asm quickjs stand-in").unwrap();
    std::fs::write(dir.path().join("quickjs.version"), b"QuickJS-ng test\n").unwrap();
    dir
}

/// Z10002 "echo" with one JavaScript implementation Z10003.
async fn put_javascript(server: &crate::common::Server, token: &str) {
    let function = z2(
        "Z10002",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10002K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10003"], "Z8K5": "Z10002",
        }),
    );
    let implementation = z2(
        "Z10003",
        json!({"Z1K1": "Z14", "Z14K1": "Z10002", "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
               "Z16K2": "function Z10002( Z10002K1 ) { return Z10002K1; }"}}),
    );
    for (zid, object) in [("Z10002", function), ("Z10003", implementation)] {
        put(server, token, zid, &object).await;
    }
}

const EVALUATE: &str = "/wikifunctions.org/v1/evaluate/";

/// A call body of an inline JavaScript function Z10005 of one argument of any type, whose
/// code's body is `body`, with `argument`.
fn inline_javascript(body: &str, argument: serde_json::Value) -> serde_json::Value {
    let code = format!("function Z10005( Z10005K1 ) {{ {body} }}");
    json!({"zobject": {"Z1K1": "Z7",
        "Z7K1": {"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10005K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z1", "Z8K3": ["Z20"],
            "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10005",
                "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}}],
            "Z8K5": "Z10005"},
        "Z10005K1": argument}})
}

fn call(function: &str, text: &str) -> String {
    json!({"zobject": {"Z1K1": "Z7", "Z7K1": function, format!("{function}K1"): text}}).to_string()
}

#[tokio::test]
async fn a_javascript_call_is_planned_for_the_browser_as_the_evaluator_would_get_it() {
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    let server = server(move |c| c.guest_dir = Some(dir));
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    put_javascript(&server, &editor).await;
    let plan = send(
        &server,
        "POST",
        "/v1/plan",
        None,
        Some(call("Z10002", "hi")),
    )
    .await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    let plan = plan.json();
    assert_eq!(plan["where"], "browser", "{plan}");
    assert_eq!(plan["implementation"], "Z10003");
    assert_eq!(plan["language"], "javascript");
    let request = &plan["request"];
    assert_eq!(request["functionName"], "Z10002");
    assert_eq!(request["codingLanguage"], "javascript");
    assert_eq!(
        request["codeString"],
        "function Z10002( Z10002K1 ) { return Z10002K1; }"
    );
    // The arguments in normal form, as the evaluator gets them.
    assert_eq!(
        request["functionArguments"],
        json!({"Z10002K1": {"Z1K1": "Z6", "Z6K1": "hi"}})
    );
    assert!(request["remainingTime"].as_f64().unwrap() > 0.0);
    let wall = plan["limits"]["wallTimeMs"].as_u64().unwrap();
    assert!(wall > 0 && wall <= 20_000, "{plan}");
    assert_eq!(plan["guest"]["version"], "QuickJS-ng test");

    // The guest is served at its hashed URL, for a year; any other name is unknown.
    let url = plan["guest"]["url"].as_str().unwrap();
    let guest = send(&server, "GET", url, None, None).await;
    assert_eq!(guest.status, 200);
    assert_eq!(guest.headers["content-type"], "application/wasm");
    assert!(
        guest.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(guest.text.as_bytes(), b"\0asm quickjs stand-in");
    for wrong in [
        "/playground/guests/quickjs.wasm",
        "/playground/guests/quickjs.0000000000000000.wasm",
        "/playground/guests/python.0000000000000000.wasm",
    ] {
        assert_eq!(send(&server, "GET", wrong, None, None).await.status, 404);
    }
}

/// A plan's request holds arguments as deep as calls take: a list of 200 texts is some 400
/// levels in normal form. It was read back with serde_json's default limit of 128 levels, and
/// the browser got `"request": null`.
#[tokio::test]
async fn a_deep_argument_is_planned_whole() {
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    let server = server(move |c| c.guest_dir = Some(dir));
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    put_javascript(&server, &editor).await;
    let mut texts = vec![json!("Z6")];
    texts.extend((0..200).map(|i| json!(format!("t{i}"))));
    let inline = inline_javascript("return Z10005K1;", json!(texts));
    let plan = send(&server, "POST", "/v1/plan", None, Some(inline.to_string())).await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    let plan = zeval_zobject::json::parse(&plan.text).unwrap();
    assert_eq!(plan["where"], "browser", "{plan}");
    let mut argument = &plan["request"]["functionArguments"]["Z10005K1"];
    let mut items = 0;
    while let Some(tail) = argument.get("K2") {
        items += 1;
        argument = tail;
    }
    assert_eq!(items, 200, "the plan's request: {}", plan["request"]);
}

#[tokio::test]
async fn compositions_built_ins_and_missing_guests_stay_on_the_server() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_owned();
    let server = server(move |c| c.guest_dir = Some(dir));
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    put_composition(&server, &editor).await;
    put_javascript(&server, &editor).await;

    let composition = send(&server, "POST", "/v1/plan", None, Some(call("Z10000", "x"))).await;
    assert_eq!(
        composition.json()["where"],
        "server",
        "{}",
        composition.text
    );
    assert!(
        composition.text.contains("composition"),
        "{}",
        composition.text
    );

    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "x"}}).to_string();
    let builtin = send(&server, "POST", "/v1/plan", None, Some(body)).await;
    assert_eq!(builtin.json()["where"], "server", "{}", builtin.text);
    assert!(builtin.text.contains("built in"), "{}", builtin.text);

    // JavaScript, but this server has no guest module to send.
    let no_guest = send(&server, "POST", "/v1/plan", None, Some(call("Z10002", "x"))).await;
    assert_eq!(no_guest.json()["where"], "server", "{}", no_guest.text);
    assert!(no_guest.text.contains("guest module"), "{}", no_guest.text);

    // An argument computed by a built-in is computed while planning.
    let echo = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "x"});
    let computed = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": echo}});
    let computed = send(
        &server,
        "POST",
        "/v1/plan",
        None,
        Some(computed.to_string()),
    )
    .await;
    assert_eq!(computed.json()["where"], "server", "{}", computed.text);
    assert!(computed.text.contains("guest module"), "{}", computed.text);

    let bad = send(&server, "POST", "/v1/plan", None, Some("[1]".into())).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let not_json = send(&server, "POST", "/v1/plan", None, Some("{".into())).await;
    assert_eq!(not_json.status, 400, "{}", not_json.text);
}

#[tokio::test]
async fn planning_follows_the_access_rules_of_calls() {
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    let server = server(move |c| {
        c.guest_dir = Some(dir);
        c.access.calls = CallPolicy::Approved;
    });
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    let admin = token(&server, "root", zeval_store::Role::Admin);
    put_javascript(&server, &editor).await;
    // Anonymous: Z10003 is not approved, so it may not run, in a browser or anywhere.
    let refused = send(&server, "POST", "/v1/plan", None, Some(call("Z10002", "x"))).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("Z559"), "{}", refused.text);
    // A user may.
    let user = send(
        &server,
        "POST",
        "/v1/plan",
        Some(&editor),
        Some(call("Z10002", "x")),
    )
    .await;
    assert_eq!(user.json()["where"], "browser", "{}", user.text);
    // Once approved, anybody.
    let approved = send(
        &server,
        "POST",
        "/v1/objects/Z10003/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let anonymous = send(&server, "POST", "/v1/plan", None, Some(call("Z10002", "x"))).await;
    assert_eq!(anonymous.json()["where"], "browser", "{}", anonymous.text);
    // But only under its function's own signature, as a call (listed twice: the second
    // turn must not be taken for the function called again by an argument).
    let renamed = json!({"zobject": {"Z1K1": "Z7",
        "Z7K1": {"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10002K9",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10003", "Z10003"],
            "Z8K5": "Z10002"},
        "Z10002K9": "x"}})
    .to_string();
    let refused = send(&server, "POST", "/v1/plan", None, Some(renamed.clone())).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("other arguments"), "{}", refused.text);
    let evaluated = send(&server, "POST", EVALUATE, None, Some(renamed)).await;
    assert_eq!(evaluated.status, 403, "{}", evaluated.text);
    // A wrong token is refused, as everywhere.
    let wrong = send(
        &server,
        "POST",
        "/v1/plan",
        Some("nope"),
        Some(call("Z10002", "x")),
    )
    .await;
    assert_eq!(wrong.status, 401);

    let users_only = crate::common::server(|c| c.access.calls = CallPolicy::Users);
    let unauthenticated = send(
        &users_only,
        "POST",
        "/v1/plan",
        None,
        Some(call("Z10002", "x")),
    )
    .await;
    assert_eq!(unauthenticated.status, 401, "{}", unauthenticated.text);
}

#[tokio::test]
async fn a_plan_body_is_bounded_as_a_call_body() {
    let server = server(|c| c.limits.orchestrator_body_bytes = 1000);
    let big = call("Z10002", &"x".repeat(2000));
    let answer = send(&server, "POST", "/v1/plan", None, Some(big)).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
}

#[tokio::test]
async fn pages_and_files_are_embedded_with_a_content_security_policy() {
    let server = server(|_| {});
    for page in [
        "/",
        "/function/Z10000",
        "/object/Z6",
        "/new/implementation",
        "/search",
    ] {
        let answer = send(&server, "GET", page, None, None).await;
        assert_eq!(answer.status, 200, "{page}");
        assert!(answer.text.contains("/playground/app.js"), "{page}");
        let policy = answer.headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{policy}"
        );
    }
    let script = send(&server, "GET", "/playground/app.js", None, None).await;
    assert_eq!(script.status, 200);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let tag = script.headers["etag"].to_str().unwrap().to_owned();
    let request = axum::http::Request::builder()
        .uri("/playground/app.js")
        .header("If-None-Match", &tag)
        .body(axum::body::Body::empty())
        .unwrap();
    let revalidated = tower::ServiceExt::oneshot(server.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(
        send(&server, "GET", "/playground/nothing.js", None, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_hold_is_bounded_by_the_call_deadline() {
    let server = server(|c| c.limits.call_timeout_ms = 200);
    let started = Instant::now();
    let answer = send(&server, "GET", "/playground/hold?ms=10", None, None).await;
    assert_eq!(answer.status, 204);
    assert!(started.elapsed() >= Duration::from_millis(10));
    let started = Instant::now();
    let answer = send(&server, "GET", "/playground/hold?ms=100000000", None, None).await;
    assert_eq!(answer.status, 204);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let bad = send(&server, "GET", "/playground/hold?ms=-1", None, None).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn an_argument_that_runs_code_first_keeps_the_call_on_the_server() {
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    let server = server(move |c| c.guest_dir = Some(dir));
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    put_javascript(&server, &editor).await;
    // Z10002(Z10002("x")): the inner call's code runs first; planning the outer one as if
    // it were the inner one would hand the browser the wrong arguments.
    let inner = json!({"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "x"});
    let nested = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": inner}});
    let nested = send(&server, "POST", "/v1/plan", None, Some(nested.to_string())).await;
    assert_eq!(nested.json()["where"], "server", "{}", nested.text);
    assert!(nested.text.contains("itself first"), "{}", nested.text);
    // Code that calls functions back needs the server.
    let reentrant = z2(
        "Z10003",
        json!({"Z1K1": "Z14", "Z14K1": "Z10002", "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
               "Z16K2": "function Z10002( Z10002K1 ) { return W.Call( 'Z801', { Z801K1: Z10002K1 } ); }"}}),
    );
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10003",
        Some(&editor),
        Some(reentrant.to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let plan = send(&server, "POST", "/v1/plan", None, Some(call("Z10002", "x"))).await;
    assert_eq!(plan.json()["where"], "server", "{}", plan.text);
    assert!(plan.text.contains("W.Call"), "{}", plan.text);
    put_javascript(&server, &editor).await;
    // An argument a built-in computes is computed while planning, and handed over as a value.
    let echo = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "y"});
    let computed = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": echo}});
    let computed = send(
        &server,
        "POST",
        "/v1/plan",
        None,
        Some(computed.to_string()),
    )
    .await;
    let computed = computed.json();
    assert_eq!(computed["where"], "browser", "{computed}");
    assert_eq!(
        computed["request"]["functionArguments"],
        json!({"Z10002K1": {"Z1K1": "Z6", "Z6K1": "y"}})
    );
}

/// A plan does not copy arguments that code may not be given (the evaluator's 8 MiB): a call
/// of 100 KiB can stand for far more (one string shared 1,024 times), and a plan copies
/// them several times over, and wrote them all back. Such a call is planned for the server,
/// which refuses it as any call.
#[tokio::test]
async fn a_plan_does_not_copy_arguments_code_may_not_be_given() {
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    // A budget that lets the arguments be made (a server may be given one): it is what
    // the plan does with them that is under test.
    let server = server(move |c| {
        c.guest_dir = Some(dir);
        c.limits.max_request_memory_bytes = 1 << 30;
    });
    let editor = token(&server, "ed", zeval_store::Role::Editor);
    // Z10006(x) = [x, x], by reference: ten of them make 1,024 shares of x.
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10006K1"});
    let duplicate = z2(
        "Z10006",
        json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10006K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z1", "Z8K3": ["Z20"],
            "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10006", "Z14K2": {
                "Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": x,
                "Z810K2": {"Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": x, "Z810K2": ["Z1"]}}}],
            "Z8K5": "Z10006"}),
    );
    put(&server, &editor, "Z10006", &duplicate).await;
    let shared = (0..10).fold(
        json!("y".repeat(9 * 1024)),
        |inner, _| json!({"Z1K1": "Z7", "Z7K1": "Z10006", "Z10006K1": inner}),
    );
    let inline = inline_javascript("return 'ok';", shared);
    let plan = send(&server, "POST", "/v1/plan", None, Some(inline.to_string())).await;
    assert_eq!(plan.status, 200, "{:.300}", plan.text);
    assert!(
        plan.text.len() < 100_000,
        "the plan took {} bytes",
        plan.text.len()
    );
    let plan = plan.json();
    assert_eq!(plan["where"], "server", "{plan}");
    assert!(
        plan["reason"]
            .to_string()
            .contains("bytes code may be given"),
        "{plan}"
    );
}

/// A stub wiki on 127.0.0.1 that has `objects` (ZID → canonical Z2) and counts its requests.
fn stub_wiki(
    objects: Vec<(&'static str, serde_json::Value)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/w/api.php", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let mut answer = serde_json::Map::new();
            for (zid, z2) in &objects {
                if line.contains(zid) {
                    answer.insert(
                        (*zid).to_owned(),
                        json!({"wikilambda_fetch": z2.to_string()}),
                    );
                }
            }
            let body = serde_json::Value::Object(answer).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, requests)
}

/// Plans keep what the wiki has, as calls do: every plan of a wiki function asked the wiki
/// again, so a client planning in a loop had the server ask the wiki as often.
#[tokio::test]
async fn plans_keep_what_the_wiki_has() {
    let function = z2(
        "Z10700",
        json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10700K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10701"], "Z8K5": "Z10700"}),
    );
    let implementation = z2(
        "Z10701",
        json!({"Z1K1": "Z14", "Z14K1": "Z10700", "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
               "Z16K2": "function Z10700( Z10700K1 ) { return Z10700K1; }"}}),
    );
    let (url, requests) = stub_wiki(vec![("Z10700", function), ("Z10701", implementation)]);
    let guests = guest_dir();
    let dir = guests.path().to_owned();
    let server = server(move |c| {
        c.guest_dir = Some(dir);
        c.wiki_url = Some(url);
    });
    for _ in 0..3 {
        let plan = send(
            &server,
            "POST",
            "/v1/plan",
            None,
            Some(call("Z10700", "hi")),
        )
        .await;
        assert_eq!(plan.status, 200, "{}", plan.text);
        assert_eq!(plan.json()["where"], "browser", "{}", plan.text);
    }
    let asked = requests.load(std::sync::atomic::Ordering::Relaxed);
    assert!(asked <= 2, "three plans asked the wiki {asked} times");
}
