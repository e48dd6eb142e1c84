//! Item 2: under `calls = "approved"`, an anonymous caller may run only approved
//! implementations, by any route: not only the top-level `Z7K1` but nested calls, inline
//! functions, functions only the wiki has, implementations edited after their approval and
//! calls returned by code.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    DEADLINE, JAVASCRIPT, MockWiki, PYTHON, Target, call_of, code_function, one_at_a_time, prefix,
    put, timed_call,
};
use crate::common::{Answer, request, z2, zeval_binary};

/// What the hostile code returns. The code computes it, so the text itself appears in no
/// request: if it is in an answer, the code ran.
const MARKER: &str = "pwned42";
const MARKER_IN_PYTHON: &str = "return 'pw' + 'ned' + str(6 * 7)";
const MARKER_IN_JS: &str = "return 'pw' + 'ned' + String( 6 * 7 );";

/// A call of an inline function `zid` whose code (`language`) returns [`MARKER`].
fn inline_marker_call(zid: &str, language: &str) -> Value {
    let code = if language == PYTHON {
        format!("def {zid}({zid}K1):\n    {MARKER_IN_PYTHON}")
    } else {
        format!("function {zid}( {zid}K1 ) {{ {MARKER_IN_JS} }}")
    };
    call_of(
        code_function(zid, json!("Z6"), "Z6", language, &code),
        zid,
        json!("x"),
    )
}

/// A stored function `function` with one string argument and the implementations listed.
fn function_z2(function: &str, implementations: &[&str]) -> Value {
    let mut list = vec![json!("Z14")];
    list.extend(implementations.iter().map(|i| json!(i)));
    z2(
        function,
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{function}K1"),
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z1", "Z8K3": ["Z20"], "Z8K4": list, "Z8K5": function,
        }),
    )
}

fn js_implementation_z2(zid: &str, function: &str, body: &str) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z14", "Z14K1": function, "Z14K3": {"Z1K1": "Z16", "Z16K1": JAVASCRIPT,
               "Z16K2": format!("function {function}( {function}K1 ) {{ {body} }}")}}),
    )
}

/// Refused as an anonymous caller must be: 403, or a Z22 whose error is Z559; and the
/// hostile code's output is nowhere in the answer.
fn assert_not_run(what: &str, answer: &Result<Answer, String>) {
    let answer = answer
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    // Lower case: an approved function may have transformed the output (Z10000 upper-cases).
    assert!(
        !answer.text.to_lowercase().contains(MARKER),
        "{what}: the unapproved code ran: {}",
        prefix(&answer.text)
    );
    match answer.status {
        403 => {}
        200 => assert_eq!(
            super::error_code(&answer.json()).as_deref(),
            Some("Z559"),
            "{what}: not refused with Z559: {}",
            prefix(&answer.text)
        ),
        other => panic!("{what}: status {other}: {}", prefix(&answer.text)),
    }
}

fn anonymous(target: &Target, zobject: &Value) -> Result<Answer, String> {
    timed_call(target.orch(), None, zobject, DEADLINE).answer
}

#[test]
fn anonymous_callers_run_only_approved_code_by_every_route() {
    let _serial = one_at_a_time();
    // A function only the wiki has, with a JavaScript implementation nobody approved here.
    let wiki = MockWiki::start(
        vec![
            ("Z10300".into(), function_z2("Z10300", &["Z10301"])),
            (
                "Z10301".into(),
                js_implementation_z2("Z10301", "Z10300", MARKER_IN_JS),
            ),
        ],
        Duration::ZERO,
    );
    let mut target = Target::start(&[("ZEVAL_CALLS", "approved"), ("ZEVAL_WIKI_URL", &wiki.url)]);
    let orch = target.orch().to_owned();

    // The approved function answers anonymous callers (the rule is not simply "refuse").
    let approved = anonymous(
        &target,
        &json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "ok"}),
    );
    assert_eq!(
        approved.as_ref().map(|a| a.json()["Z22K1"].clone()).ok(),
        Some(json!("OK")),
        "the approved function: {:?}",
        approved.map(|a| a.text)
    );

    // Inline code under built-ins, which are always allowed at the top.
    let echo =
        json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": inline_marker_call("Z10200", PYTHON)});
    assert_not_run(
        "inline Python under Z801 (echo)",
        &anonymous(&target, &echo),
    );
    let branch = json!({"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": {"Z1K1": "Z40", "Z40K1": "Z41"},
        "Z802K2": inline_marker_call("Z10201", JAVASCRIPT), "Z802K3": "no"});
    assert_not_run(
        "inline JavaScript under Z802 (if)",
        &anonymous(&target, &branch),
    );
    assert_not_run(
        "inline JavaScript at the top",
        &anonymous(&target, &inline_marker_call("Z10202", JAVASCRIPT)),
    );

    // A stored implementation nobody approved, reached through a nested call.
    put(&orch, &target.editor, "Z10002", &function_z2("Z10002", &[]));
    put(
        &orch,
        &target.editor,
        "Z10003",
        &js_implementation_z2("Z10003", "Z10002", MARKER_IN_JS),
    );
    put(
        &orch,
        &target.editor,
        "Z10002",
        &function_z2("Z10002", &["Z10003"]),
    );
    target.remember("Z10003");
    let nested = json!({"Z1K1": "Z7", "Z7K1": "Z801",
        "Z801K1": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "x"}});
    assert_not_run(
        "an unapproved implementation under Z801",
        &anonymous(&target, &nested),
    );
    // … and through an approved function's argument.
    let as_argument = json!({"Z1K1": "Z7", "Z7K1": "Z10000",
        "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "x"}});
    assert_not_run(
        "an unapproved implementation as an approved function's argument",
        &anonymous(&target, &as_argument),
    );

    // A function only the wiki has is not "unknown, so allowed".
    assert_not_run(
        "a wiki-only function",
        &anonymous(
            &target,
            &json!({"Z1K1": "Z7", "Z7K1": "Z10300", "Z10300K1": "x"}),
        ),
    );

    // An approved implementation edited afterwards needs approving again.
    put(&orch, &target.editor, "Z10004", &function_z2("Z10004", &[]));
    put(
        &orch,
        &target.editor,
        "Z10005",
        &js_implementation_z2("Z10005", "Z10004", "return 'harmless';"),
    );
    put(
        &orch,
        &target.editor,
        "Z10004",
        &function_z2("Z10004", &["Z10005"]),
    );
    let approve = request(
        "POST",
        &format!("{orch}/v1/objects/Z10005/approve"),
        Some(&target.admin),
        None,
    );
    assert_eq!(approve.status, 200, "{}", approve.text);
    let edited_call = json!({"Z1K1": "Z7", "Z7K1": "Z10004", "Z10004K1": "x"});
    let before = anonymous(&target, &edited_call);
    assert_eq!(
        before.as_ref().map(|a| a.json()["Z22K1"].clone()).ok(),
        Some(json!("harmless")),
        "before the edit: {:?}",
        before.map(|a| a.text)
    );
    put(
        &orch,
        &target.editor,
        "Z10005",
        &js_implementation_z2("Z10005", "Z10004", MARKER_IN_JS),
    );
    assert_not_run(
        "an approved implementation edited after its approval",
        &anonymous(&target, &edited_call),
    );
    // The editor who wrote it may still run it (the rule is about anonymous callers).
    let by_editor = timed_call(&orch, Some(&target.editor), &edited_call, DEADLINE).answer;
    assert_eq!(
        by_editor.as_ref().map(|a| a.json()["Z22K1"].clone()).ok(),
        Some(json!(MARKER)),
        "the editor's own call: {:?}",
        by_editor.map(|a| a.text)
    );

    // A call returned by approved code is not run unchecked: Z10006 parses JSON into a
    // ZObject (approved, harmless by itself); the JSON is a call of inline Python.
    put(&orch, &target.editor, "Z10006", &function_z2("Z10006", &[]));
    put(
        &orch,
        &target.editor,
        "Z10007",
        &js_implementation_z2("Z10007", "Z10006", "return JSON.parse( Z10006K1 );"),
    );
    put(
        &orch,
        &target.editor,
        "Z10006",
        &function_z2("Z10006", &["Z10007"]),
    );
    let approve = request(
        "POST",
        &format!("{orch}/v1/objects/Z10007/approve"),
        Some(&target.admin),
        None,
    );
    assert_eq!(approve.status, 200, "{}", approve.text);
    let hidden_call = normal_form(&inline_marker_call("Z10203", PYTHON));
    let returned = anonymous(
        &target,
        &json!({"Z1K1": "Z7", "Z7K1": "Z10006", "Z10006K1": hidden_call.to_string()}),
    );
    let returned = returned.unwrap_or_else(|e| panic!("a call returned by code: no answer: {e}"));
    assert!(
        !returned.text.contains(MARKER),
        "a call returned by approved code ran unapproved Python: {}",
        prefix(&returned.text)
    );
    assert!(
        matches!(returned.status, 200 | 403),
        "a call returned by code: status {}: {}",
        returned.status,
        prefix(&returned.text)
    );

    target.assert_survived();
}

/// The normal form of a canonical ZObject, from `zeval normalize`.
fn normal_form(canonical: &Value) -> Value {
    let mut child = Command::new(zeval_binary())
        .args(["normalize", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(canonical.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "zeval normalize failed");
    serde_json::from_slice(&output.stdout).unwrap()
}
