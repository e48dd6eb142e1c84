//! Reentrant calls (issue 11): Python and JavaScript code calling other functions through
//! `W.Call`, against a real `zeval serve`, with guests in the confined worker processes (the
//! default) and on the server's own threads.
//!
//! - a function whose Python and JavaScript implementations each call another function
//!   passes its testers (`POST /v1/test`);
//! - recursion through `W.Call` ends in the typed Z590 `reentrant depth`, in both languages;
//! - code making more than the allowed number of calls gets the Z590 `nested calls`;
//! - the access rules apply to what a nested call runs.

use serde_json::{Value, json};

use crate::common::{Server, add_user, metadata, request, z2};

/// Z10000 "upper case" (JavaScript, Z10001); Z10010 "shout", which upper-cases through
/// `W.Call("Z10000")` and adds "!", in Python (Z10011) and JavaScript (Z10012), with two
/// testers; Z10020, which calls itself forever, in Python (Z10021) and JavaScript (Z10022);
/// Z10030, which calls a built-in until it is stopped.
fn objects() -> Vec<(&'static str, Value)> {
    let string_function = |zid: &str, implementations: &[&str], testers: &[&str]| {
        let mut implementation_list = vec![json!("Z14")];
        implementation_list.extend(implementations.iter().map(|zid| json!(zid)));
        let mut tester_list = vec![json!("Z20")];
        tester_list.extend(testers.iter().map(|zid| json!(zid)));
        z2(
            zid,
            json!({
                "Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": "Z6", "Z8K3": tester_list, "Z8K4": implementation_list, "Z8K5": zid,
            }),
        )
    };
    let implementation = |zid: &str, function: &str, language: &str, code: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z14", "Z14K1": function,
                   "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
        )
    };
    let tester = |zid: &str, input: &str, expected: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z20", "Z20K1": "Z10010",
                   "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": input},
                   "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected}}),
        )
    };
    vec![
        ("Z10000", string_function("Z10000", &["Z10001"], &[])),
        (
            "Z10001",
            implementation(
                "Z10001",
                "Z10000",
                "Z600",
                "function Z10000( Z10000K1 ) { return Z10000K1.toUpperCase(); }",
            ),
        ),
        (
            "Z10010",
            string_function("Z10010", &["Z10011", "Z10012"], &["Z10013", "Z10014"]),
        ),
        (
            "Z10011",
            implementation(
                "Z10011",
                "Z10010",
                "Z610",
                "def Z10010(Z10010K1):\n    return W.Call(\"Z10000\", Z10000K1=Z10010K1) + \"!\"",
            ),
        ),
        (
            "Z10012",
            implementation(
                "Z10012",
                "Z10010",
                "Z600",
                "function Z10010( Z10010K1 ) { return W.Call( 'Z10000', { Z10000K1: Z10010K1 } ) + '!'; }",
            ),
        ),
        ("Z10013", tester("Z10013", "abc", "ABC!")),
        ("Z10014", tester("Z10014", "héllo, 世界", "HÉLLO, 世界!")),
        (
            "Z10020",
            string_function("Z10020", &["Z10021", "Z10022"], &[]),
        ),
        (
            "Z10021",
            implementation(
                "Z10021",
                "Z10020",
                "Z610",
                "def Z10020(Z10020K1):\n    return W.Call(\"Z10020\", Z10020K1=Z10020K1 + \"p\")",
            ),
        ),
        (
            "Z10022",
            implementation(
                "Z10022",
                "Z10020",
                "Z600",
                "function Z10020( Z10020K1 ) { return W.Call( 'Z10020', { Z10020K1: Z10020K1 + 'j' } ); }",
            ),
        ),
        ("Z10030", string_function("Z10030", &["Z10031"], &[])),
        (
            "Z10031",
            implementation(
                "Z10031",
                "Z10030",
                "Z610",
                "def Z10030(Z10030K1):\n    made = 0\n    try:\n        while True:\n            W.Call(\"Z866\", Z866K1=Z10030K1, Z866K2=Z10030K1)\n            made += 1\n    except ZError as e:\n        return \"%d %s\" % (made, e.z5[\"Z5K2\"][\"Z590K1\"][\"Z6K1\"])",
            ),
        ),
    ]
}

/// Stores [`objects`] through the objects API at `base`, as `editor`.
fn put_objects(base: &str, editor: &str) {
    for (zid, object) in objects() {
        crate::common::put_object(base, editor, zid, &object);
    }
}

struct Site {
    server: Server,
    admin: String,
    _data: tempfile::TempDir,
}

/// A server with [`objects`] stored, `config` as its `zeval.toml` and `env` set.
fn start(config: &str, env: &[(&str, &str)]) -> Site {
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let admin = add_user(data.path(), "root", "admin");
    let config_path = data.path().join("zeval.toml");
    std::fs::write(&config_path, config).unwrap();
    let server = Server::start(
        data.path(),
        &["--config", config_path.to_str().unwrap()],
        env,
    );
    put_objects(server.orch(), &editor);
    Site {
        server,
        admin,
        _data: data,
    }
}

/// Calls `function` with a string, narrowed to its implementation `implementation` when
/// given; the HTTP status and the body (a canonical Z22, or the Z5 of a refusal).
fn call_status(
    site: &Site,
    function: &str,
    implementation: Option<&str>,
    text: &str,
) -> (u16, Value) {
    let orch = site.server.orch();
    let function_value = match implementation {
        None => json!(function),
        Some(zid) => {
            let stored = request("GET", &format!("{orch}/v1/objects/{function}"), None, None);
            let mut z8 = stored.json()["Z2K2"].clone();
            z8["Z8K4"] = json!(["Z14", zid]);
            z8
        }
    };
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": function_value,
                                  format!("{function}K1"): text}});
    let answer = request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        None,
        Some(&body),
    );
    (answer.status, answer.json())
}

/// [`call_status`] for a call that must answer 200: the canonical Z22.
fn call(site: &Site, function: &str, implementation: Option<&str>, text: &str) -> Value {
    let (status, z22) = call_status(site, function, implementation, text);
    assert_eq!(status, 200, "{z22}");
    z22
}

/// The error of a canonical Z22, if any.
fn error(z22: &Value) -> Option<&Value> {
    metadata(z22, "errors")
}

/// The `Z590K1` (which limit) of a Z590 error.
fn budget_limit(z22: &Value) -> Option<&str> {
    let error = error(z22)?;
    (error["Z5K1"] == "Z590").then(|| error["Z5K2"]["Z590K1"].as_str())?
}

/// The testers of Z10010 pass on both implementations, and a plain call answers.
fn testers_pass(site: &Site) {
    let matrix = request(
        "POST",
        &format!("{}/v1/test", site.server.orch()),
        None,
        Some(&json!({"function": "Z10010"})),
    );
    assert_eq!(matrix.status, 200, "{}", matrix.text);
    let matrix = matrix.json();
    assert_eq!(matrix["total"], 4, "{matrix}");
    assert_eq!(matrix["passed"], 4, "{matrix}");
    for implementation in ["Z10011", "Z10012"] {
        let z22 = call(site, "Z10010", Some(implementation), "zeval");
        assert_eq!(z22["Z22K1"], "ZEVAL!", "{implementation}: {z22}");
    }
}

/// Recursion through `W.Call` stops at the reentrant depth limit, typed, in both languages.
fn recursion_is_bounded(site: &Site) {
    for implementation in ["Z10021", "Z10022"] {
        let started = std::time::Instant::now();
        let z22 = call(site, "Z10020", Some(implementation), "x");
        assert_eq!(
            budget_limit(&z22),
            Some("reentrant depth"),
            "{implementation}: {z22}"
        );
        eprintln!(
            "{implementation}: recursion through W.Call stopped after {:?}",
            started.elapsed()
        );
    }
}

/// The 1001st call from code in one request is refused.
fn nested_calls_are_counted(site: &Site) {
    let started = std::time::Instant::now();
    let z22 = call(site, "Z10030", None, "a");
    assert_eq!(z22["Z22K1"], "1000 nested calls", "{z22}");
    eprintln!("1000 nested calls of a built-in: {:?}", started.elapsed());
}

#[test]
fn reentrant_calls_in_worker_processes() {
    let site = start("", &[]);
    let info = request(
        "GET",
        &format!("{}/_info", site.server.evaluator.as_deref().unwrap()),
        None,
        None,
    )
    .json();
    assert_eq!(info["isolation"], "worker processes", "{info}");
    testers_pass(&site);
    recursion_is_bounded(&site);
    nested_calls_are_counted(&site);
    assert!(site.server.stop());
}

#[test]
fn reentrant_calls_in_process() {
    let site = start("[workers]\nenabled = false\n", &[]);
    testers_pass(&site);
    recursion_is_bounded(&site);
    nested_calls_are_counted(&site);
    assert!(site.server.stop());
}

#[test]
fn the_limits_are_settings() {
    let site = start(
        "[limits]\nmax_reentrant_depth = 2\n",
        &[("ZEVAL_MAX_NESTED_CALLS", "5")],
    );
    // Z10010 calls Z10000 (depth 1): still allowed.
    let z22 = call(&site, "Z10010", Some("Z10011"), "abc");
    assert_eq!(z22["Z22K1"], "ABC!", "{z22}");
    let z22 = call(&site, "Z10020", Some("Z10021"), "x");
    assert_eq!(budget_limit(&z22), Some("reentrant depth"), "{z22}");
    let z22 = call(&site, "Z10030", None, "a");
    assert_eq!(z22["Z22K1"], "5 nested calls", "{z22}");
    assert!(site.server.stop());
}

#[test]
fn access_rules_apply_to_nested_calls() {
    let site = start("[access]\ncalls = \"approved\"\n", &[]);
    // The caller is approved, what it calls is not: the nested call is refused.
    approve(&site, "Z10011");
    let (status, answer) = call_status(&site, "Z10010", Some("Z10011"), "abc");
    // The Z559 is the call's error (the code did not catch it), which the API answers with
    // 403 as it does any refusal.
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["Z5K1"], "Z559", "{answer}");
    let message = answer["Z5K2"]["Z559K1"].as_str().unwrap_or_default();
    assert!(message.contains("Z10001 is not approved"), "{answer}");
    // Once it is approved, the call answers.
    approve(&site, "Z10001");
    let z22 = call(&site, "Z10010", Some("Z10011"), "abc");
    assert_eq!(z22["Z22K1"], "ABC!", "{z22}");
    assert!(site.server.stop());
}

/// Under `calls = "approved"`, an approved implementation edited while a request runs is not
/// run by the request's later nested calls: each call from code reads its objects anew, and
/// until 2026-12-06 ran what it read under the approval the request's first check had read.
#[test]
fn an_implementation_edited_during_a_call_is_not_run_by_its_later_nested_calls() {
    let site = start("[access]\ncalls = \"approved\"\n", &[]);
    // Z10040 upper-cases its text twice through Z10000, three seconds apart.
    put_string_function(
        &site,
        ("Z10040", "Z10041"),
        "function Z10040( Z10040K1 ) {\n\
           const first = W.Call( 'Z10000', { Z10000K1: Z10040K1 } );\n\
           const until = Date.now() + 3000;\n\
           while ( Date.now() < until ) {}\n\
           return first + ' ' + W.Call( 'Z10000', { Z10000K1: Z10040K1 } );\n\
         }",
    );
    for zid in ["Z10001", "Z10041"] {
        approve(&site, zid);
    }
    // Both guests warm, so that the first nested call is made well within the first second.
    assert_eq!(call(&site, "Z10000", None, "warm")["Z22K1"], "WARM");
    let (status, answer) = std::thread::scope(|scope| {
        let call = scope.spawn(|| call_status(&site, "Z10040", None, "abc"));
        std::thread::sleep(std::time::Duration::from_millis(1000));
        put_implementation(
            &site,
            ("Z10000", "Z10001"),
            "function Z10000( Z10000K1 ) { return 'edited ' + Z10000K1; }",
        );
        call.join().unwrap()
    });
    assert!(
        !answer.to_string().contains("edited abc"),
        "the edit ran: {answer}"
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["Z5K1"], "Z559", "{answer}");
    let message = answer["Z5K2"]["Z559K1"].as_str().unwrap_or_default();
    assert!(
        message.contains("the copy of Z10001 this call read is not the revision an admin approved"),
        "{answer}"
    );
    assert!(site.server.stop());
}

/// The copy of an implementation the access rule compares with its approved revision, once
/// per nested request, is not charged to the request's memory: a function calling an approved
/// implementation with a 64 KiB source 100 times from code ran out of a 4 MiB budget
/// (`ZEVAL_MAX_REQUEST_MEMORY_BYTES`) before the copy was let go uncharged.
#[test]
fn checking_what_nested_calls_run_costs_the_request_no_memory() {
    let site = start(
        "[access]\ncalls = \"approved\"\n",
        &[("ZEVAL_MAX_REQUEST_MEMORY_BYTES", "4194304")],
    );
    let padding = "x".repeat(64 * 1024);
    put_implementation(
        &site,
        ("Z10000", "Z10001"),
        &format!("// {padding}\nfunction Z10000( Z10000K1 ) {{ return Z10000K1.toUpperCase(); }}"),
    );
    put_string_function(
        &site,
        ("Z10050", "Z10051"),
        "function Z10050( Z10050K1 ) {\n\
           let out = '';\n\
           for ( let i = 0; i < 100; i++ ) { out = W.Call( 'Z10000', { Z10000K1: Z10050K1 } ); }\n\
           return out;\n\
         }",
    );
    for zid in ["Z10001", "Z10051"] {
        approve(&site, zid);
    }
    let z22 = call(&site, "Z10050", None, "abc");
    assert_eq!(z22["Z22K1"], "ABC", "{}", error(&z22).unwrap_or(&z22));
    assert!(site.server.stop());
}

/// Stores, as the site's admin, the string function `function` whose one implementation is
/// the JavaScript `code` (`implementation`).
fn put_string_function(site: &Site, (function, implementation): (&str, &str), code: &str) {
    let z8 = json!({
        "Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{function}K1"),
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", implementation], "Z8K5": function,
    });
    crate::common::put_object(site.server.orch(), &site.admin, function, &z2(function, z8));
    put_implementation(site, (function, implementation), code);
}

/// Stores, as the site's admin, `implementation` of `function`: the JavaScript `code`.
fn put_implementation(site: &Site, (function, implementation): (&str, &str), code: &str) {
    let z14 = json!({"Z1K1": "Z14", "Z14K1": function,
                     "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}});
    crate::common::put_object(
        site.server.orch(),
        &site.admin,
        implementation,
        &z2(implementation, z14),
    );
}

/// Approves the current revision of `zid` as the site's admin.
fn approve(site: &Site, zid: &str) {
    let answer = request(
        "POST",
        &format!("{}/v1/objects/{zid}/approve", site.server.orch()),
        Some(&site.admin),
        None,
    );
    assert_eq!(answer.status, 200, "approve {zid}: {}", answer.text);
}

/// The README's `W.Call` examples (between `<!-- reentrant:start -->` and
/// `<!-- reentrant:end -->`): `(language, code)` of each fenced block.
fn readme_examples() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- reentrant:start -->")
        .expect("no reentrant:start marker");
    let end = readme
        .find("<!-- reentrant:end -->")
        .expect("no reentrant:end marker");
    let mut examples = Vec::new();
    let mut block: Option<(String, String)> = None;
    for line in readme[start..end].lines() {
        match (&mut block, line.strip_prefix("```")) {
            (None, Some(language)) => block = Some((language.to_owned(), String::new())),
            (Some(_), Some(_)) => examples.extend(block.take()),
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    examples
}

#[test]
fn the_readme_examples_run() {
    let examples = readme_examples();
    let languages: Vec<&str> = examples.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(languages, ["python", "javascript"]);
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    let put = |zid: &str, object: Value| {
        let answer = request(
            "PUT",
            &format!("{orch}/v1/objects/{zid}"),
            Some(&editor),
            Some(&object),
        );
        assert_eq!(answer.status, 200, "PUT {zid}: {}", answer.text);
    };
    let function = |zid: &str, output: &str, implementations: &[&str]| {
        let mut list = vec![json!("Z14")];
        list.extend(implementations.iter().map(|zid| json!(zid)));
        z2(
            zid,
            json!({
                "Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": output, "Z8K3": ["Z20"], "Z8K4": list, "Z8K5": zid,
            }),
        )
    };
    let implementation = |zid: &str, function: &str, language: &str, code: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z14", "Z14K1": function,
                   "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
        )
    };
    put("Z10000", function("Z10000", "Z6", &["Z10001"]));
    put(
        "Z10001",
        implementation(
            "Z10001",
            "Z10000",
            "Z600",
            "function Z10000( Z10000K1 ) { return Array.from( Z10000K1 ).reverse().join( '' ); }",
        ),
    );
    put("Z10005", function("Z10005", "Z40", &["Z10006", "Z10007"]));
    for ((language, code), zid) in examples.iter().zip(["Z10006", "Z10007"]) {
        let language = if language == "python" { "Z610" } else { "Z600" };
        put(zid, implementation(zid, "Z10005", language, code));
    }
    for implementation in ["Z10006", "Z10007"] {
        for (text, expected) in [("kayak", "Z41"), ("zeval", "Z42")] {
            let mut z8 =
                request("GET", &format!("{orch}/v1/objects/Z10005"), None, None).json()["Z2K2"]
                    .clone();
            z8["Z8K4"] = json!(["Z14", implementation]);
            let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": z8, "Z10005K1": text}});
            let answer = request(
                "POST",
                &format!("{orch}/wikifunctions.org/v1/evaluate/"),
                None,
                Some(&body),
            );
            let z22 = answer.json();
            assert_eq!(
                z22["Z22K1"]["Z40K1"], expected,
                "{implementation} on {text}: {z22}"
            );
        }
    }
    assert!(server.stop());
}

#[test]
fn reentrant_calls_through_a_remote_evaluator() {
    // The evaluator in one process, the orchestrator in another: the code's W.Calls come
    // back to the orchestrator's callback route.
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(evaluator_data.path(), &["--role", "evaluator"], &[]);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let orchestrator = Server::start(
        data.path(),
        &["--role", "orchestrator"],
        &[("ZEVAL_EVALUATOR_URL", &evaluate_url)],
    );
    let orch = orchestrator.orch().to_owned();
    put_objects(&orch, &editor);
    let site = Site {
        server: orchestrator,
        admin: String::new(),
        _data: data,
    };
    testers_pass(&site);
    let z22 = call(&site, "Z10010", Some("Z10011"), "remote");
    assert_eq!(z22["Z22K1"], "REMOTE!", "{z22}");
    // The evaluator's metadata came back: the code did run over there.
    assert!(metadata(&z22, "evaluationHostname").is_some(), "{z22}");
    recursion_is_bounded(&site);
    a_nested_answer_past_the_callbacks_bound_is_an_error(&site, &editor);

    // The route refuses what does not come from a registered call.
    let unknown = request(
        "POST",
        &format!("{orch}/v1/reentry/0123456789abcdef0123456789abcdef"),
        None,
        Some(&json!({"function": "Z10000"})),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(site.server.stop());
    assert!(evaluator.stop());
}

/// A nested call's answer is written by the callback route only up to what the evaluator
/// reads (`MAX_CALLBACK_ANSWER_BYTES`, 16 MiB): one past it is the nested call's Z507, which
/// the code can catch, and the servers go on. Z10040(x) = [x, x, x]; Z10041's JavaScript asks
/// it for a list of three strings as long as it is told (18 MiB written out for 6 MiB).
fn a_nested_answer_past_the_callbacks_bound_is_an_error(site: &Site, editor: &str) {
    let orch = site.server.orch().to_owned();
    let prepend = |item: Value, list: Value| json!({"Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": item, "Z810K2": list});
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10040K1"});
    let thrice = prepend(x.clone(), prepend(x.clone(), prepend(x, json!(["Z6"]))));
    let text_argument = |key: &str| {
        json!(["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": key,
            "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}])
    };
    let objects = [
        (
            "Z10040",
            json!({"Z1K1": "Z8", "Z8K1": text_argument("Z10040K1"),
            "Z8K2": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"},
            "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10042"], "Z8K5": "Z10040"}),
        ),
        (
            "Z10042",
            json!({"Z1K1": "Z14", "Z14K1": "Z10040", "Z14K2": thrice}),
        ),
        (
            "Z10041",
            json!({"Z1K1": "Z8", "Z8K1": text_argument("Z10041K1"), "Z8K2": "Z6",
            "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10043"], "Z8K5": "Z10041"}),
        ),
        (
            "Z10043",
            json!({"Z1K1": "Z14", "Z14K1": "Z10041",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2":
                "function Z10041( Z10041K1 ) { const big = 'a'.repeat( Number( Z10041K1 ) ); \
                 try { return 'answered ' + W.Call( 'Z10040', { Z10040K1: big } ).length; } \
                 catch ( e ) { return 'caught ' + e.message; } }"}}),
        ),
    ];
    for (zid, value) in objects {
        crate::common::put_object(&orch, editor, zid, &z2(zid, value));
    }
    let z22 = call(site, "Z10041", None, &(6 * 1024 * 1024).to_string());
    let answer = z22["Z22K1"].as_str().unwrap_or_default();
    assert!(
        answer.starts_with("caught ")
            && answer.contains("more than the 16777216 bytes a nested call may give"),
        "{z22}"
    );
    // Within the bound, the same call answers.
    let z22 = call(site, "Z10041", None, "1000");
    assert_eq!(z22["Z22K1"], "answered 3", "{z22}");
}

/// A listener standing in for an egress proxy: counts who connects until it is stopped.
struct CountingListener {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl CountingListener {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut connections = 0;
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => connections += 1,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            connections
        });
        CountingListener { url, stop, thread }
    }

    fn connections(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The orchestrator reaches its evaluators, and an evaluator the orchestrator's callback,
/// directly, even with a proxy in the environment (ureq's default is to use it, which sent
/// every call's code, arguments and the evaluator secret to an egress proxy set up for the
/// wiki, in clear text over `http://`).
#[test]
fn evaluators_and_callbacks_are_not_reached_through_a_proxy_from_the_environment() {
    let proxy = CountingListener::start();
    let proxy_env = [
        ("ALL_PROXY", proxy.url.as_str()),
        ("HTTPS_PROXY", proxy.url.as_str()),
        ("HTTP_PROXY", proxy.url.as_str()),
        ("http_proxy", proxy.url.as_str()),
        // An exemption inherited from the environment would let the test pass without the fix.
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(evaluator_data.path(), &["--role", "evaluator"], &proxy_env);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let mut orchestrator_env = proxy_env.to_vec();
    orchestrator_env.push(("ZEVAL_EVALUATOR_URL", &evaluate_url));
    let orchestrator = Server::start(data.path(), &["--role", "orchestrator"], &orchestrator_env);
    put_objects(orchestrator.orch(), &editor);
    let site = Site {
        server: orchestrator,
        admin: String::new(),
        _data: data,
    };
    // Z10011's Python calls Z10000 through the callback.
    let z22 = call(&site, "Z10010", Some("Z10011"), "direct");
    assert_eq!(z22["Z22K1"], "DIRECT!", "{z22}");
    assert!(site.server.stop());
    assert!(evaluator.stop());
    assert_eq!(proxy.connections(), 0, "a request went through the proxy");
}

#[test]
fn the_callback_url_is_a_setting() {
    // An orchestrator listening on every address names the callback URL it is given: one
    // that reaches it (127.0.0.2, which it would never name itself) carries the nested calls,
    // and one that reaches nothing fails them with an error in the answer, not a hang.
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(evaluator_data.path(), &["--role", "evaluator"], &[]);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (callback, reaches) in [
        (format!("http://127.0.0.2:{port}/"), true),
        ("http://127.0.0.1:1".to_owned(), false),
    ] {
        let data = tempfile::tempdir().unwrap();
        let editor = add_user(data.path(), "ed", "editor");
        let orchestrator = Server::start_listening(
            &format!("0.0.0.0:{port}"),
            "127.0.0.1:0",
            data.path(),
            &["--role", "orchestrator"],
            &[
                ("ZEVAL_EVALUATOR_URL", &evaluate_url),
                ("ZEVAL_CALLBACK_URL", &callback),
            ],
        );
        put_objects(&format!("http://127.0.0.1:{port}"), &editor);
        let site = Site {
            server: orchestrator,
            admin: String::new(),
            _data: data,
        };
        let z22 = call(&site, "Z10010", Some("Z10011"), "remote");
        if reaches {
            assert_eq!(z22["Z22K1"], "REMOTE!", "{callback}: {z22}");
        } else {
            assert_ne!(z22["Z22K1"], "REMOTE!", "{callback}: {z22}");
            assert!(error(&z22).is_some(), "{callback}: {z22}");
        }
        assert!(site.server.stop());
    }
    assert!(evaluator.stop());
}
