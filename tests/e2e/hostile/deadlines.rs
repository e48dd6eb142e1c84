//! Item 6: a call's deadline holds end to end. The evaluator used to run its own 10 s
//! whatever the orchestrator had left, remote evaluators got a full 20 s each, and wiki
//! fetches (10 s a batch, missing ZIDs not cached) counted against nothing.

use std::time::Duration;

use serde_json::json;

use super::{MARGIN, MockWiki, Target, assert_refused, busy_loop_call, one_at_a_time, timed_call};
use crate::common::{Server, add_user, put_js_function};

/// The call deadline of these servers, well under the evaluator's own 10 s.
const DEADLINE: Duration = Duration::from_millis(3_000);
/// How long the slow wiki sleeps before answering: longer than the deadline and than the
/// wiki client's own 10 s timeout.
const WIKI_DELAY: Duration = Duration::from_secs(15);

#[test]
fn the_deadline_holds_in_process_remote_and_on_the_wiki() {
    let _serial = one_at_a_time();
    let deadline = DEADLINE.as_millis().to_string();
    let wiki = MockWiki::start(Vec::new(), WIKI_DELAY);
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_WIKI_URL", &wiki.url),
    ]);
    let orch = target.orch().to_owned();

    // A JavaScript busy loop in process.
    let timed = timed_call(&orch, None, &busy_loop_call("Z10600"), DEADLINE);
    let code = assert_refused("a busy loop in process", &timed, DEADLINE);
    eprintln!("item 6, busy loop in process: {code} in {:?}", timed.took);

    // A function only a slow wiki could know.
    let unknown = json!({"Z1K1": "Z7", "Z7K1": "Z10601", "Z10601K1": "x"});
    let timed = timed_call(&orch, None, &unknown, DEADLINE);
    let code = assert_refused("a call waiting for a slow wiki", &timed, DEADLINE);
    eprintln!("item 6, slow wiki: {code} in {:?}", timed.took);
    // The wiki's answer for that ZID is still pending, or says it is missing: asking again
    // soon after does not make the call wait again.
    let timed = timed_call(&orch, None, &unknown, DEADLINE);
    let code = assert_refused("the same call again", &timed, DEADLINE);
    eprintln!(
        "item 6, slow wiki again: {code} in {:?} (wiki asked {} times for Z10601)",
        timed.took,
        wiki.requests_for("Z10601")
    );
    target.assert_survived();
    drop(target);

    // The same busy loop through a remote evaluator: the orchestrator's remaining time
    // travels with the request.
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(evaluator_data.path(), &["--role", "evaluator"], &[]);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "editor", "editor");
    let orchestrator = Server::start(
        data.path(),
        &["--role", "orchestrator"],
        &[
            ("ZEVAL_EVALUATOR_URL", &evaluate_url),
            ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ],
    );
    put_js_function(orchestrator.orch(), &editor);
    let normal = timed_call(
        orchestrator.orch(),
        None,
        &json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "remote"}),
        DEADLINE,
    );
    assert_eq!(
        normal
            .answer
            .as_ref()
            .map(|a| a.json()["Z22K1"].clone())
            .ok(),
        Some(json!("REMOTE")),
        "a normal remote call: {:?}",
        normal.answer.map(|a| a.text)
    );
    let timed = timed_call(
        orchestrator.orch(),
        None,
        &busy_loop_call("Z10602"),
        DEADLINE,
    );
    let code = assert_refused("a busy loop on a remote evaluator", &timed, DEADLINE);
    eprintln!(
        "item 6, busy loop on a remote evaluator: {code} in {:?}",
        timed.took
    );
    // The evaluator gave up too, rather than running on after the orchestrator stopped
    // waiting: its next call is answered at once.
    let again = timed_call(
        orchestrator.orch(),
        None,
        &json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "after"}),
        DEADLINE,
    );
    assert!(
        again.took <= MARGIN,
        "a remote call after the busy loop took {:?}",
        again.took
    );
}
