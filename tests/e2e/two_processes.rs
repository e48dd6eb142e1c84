//! `--role evaluator` and `--role orchestrator` as two processes: the orchestrator reaches
//! the evaluator over HTTP (Avro 0.0.4, from `ZEVAL_EVALUATOR_URL`, and JSON from a config
//! file, by address and by host name), and a call fails over to an error, which names no internal address, once the
//! evaluator is gone.

use crate::common::{Server, add_user, call, metadata, put_js_function, request};

#[test]
fn orchestrator_and_evaluator_talk_over_http() {
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(evaluator_data.path(), &["--role", "evaluator"], &[]);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    assert_eq!(request("GET", &evaluate_url, None, None).status, 200);
    // The evaluator's body limit (2 MiB by default) answers 413 with the limit. The server
    // answers as soon as it reads the Content-Length and closes the connection, so a client
    // still writing the body may see the connection closed instead of the answer; both mean
    // the body was refused (the 413 text itself is checked in process by the server's tests).
    let big = serde_json::json!({"zobject": "x".repeat(3 * 1024 * 1024)});
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .post(&evaluate_url)
        .header("Content-Type", "application/json")
        .send(big.to_string().as_bytes())
    {
        Ok(mut too_large) => {
            let text = too_large.body_mut().read_to_string().unwrap_or_default();
            assert_eq!(too_large.status().as_u16(), 413, "{text}");
            assert!(text.contains("2097152 bytes"), "{text}");
        }
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("the oversized body was neither refused nor answered: {e}"),
    }
    // Within the byte limit, a body of more than 524,288 JSON values (1.2 MB of `0,` here,
    // some 70 MiB of parsed values) is refused before it is parsed: the original's answer to
    // a request it cannot read, a Z22 with a Z507.
    let many = format!(
        r#"{{"zobject":{{"Z1K1":"Z7","K1":[{}0]}}}}"#,
        "0,".repeat(600_000)
    );
    // A new agent: the server closed the connection the refusal above came on, and a
    // pooled copy of it broke this request's write once in CI ("Broken pipe").
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut refused = agent
        .post(&evaluate_url)
        .header("Content-Type", "application/json")
        .send(many.as_bytes())
        .unwrap();
    let text = refused.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(refused.status().as_u16(), 200, "{text}");
    assert!(text.contains("Z507"), "{text}");
    assert!(text.contains("more than 524288 JSON values"), "{text}");

    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "alice", "editor");
    let avro = Server::start(
        data.path(),
        &["--role", "orchestrator"],
        &[("ZEVAL_EVALUATOR_URL", &evaluate_url)],
    );
    assert!(avro.evaluator.is_none());
    put_js_function(avro.orch(), &token);
    let answer = call(avro.orch(), None, "remote");
    let z22 = answer.json();
    assert_eq!(z22["Z22K1"], "REMOTE", "{}", answer.text);
    // The evaluator's own metadata came back over the wire.
    assert!(metadata(&z22, "evaluationDuration").is_some(), "{z22}");
    assert!(
        metadata(&z22, "programmingLanguageVersion").is_some(),
        "{z22}"
    );
    drop(avro);

    let json = Server::start_orchestrator_configured(
        data.path(),
        &format!("[evaluators]\njavascript = {{ url = \"{evaluate_url}\", format = \"json\" }}\n"),
        &[],
    );
    assert_eq!(call(json.orch(), None, "json").json()["Z22K1"], "JSON");
    drop(json);

    // The evaluator named by a host name, as in a cluster (a service's name): looked up on
    // the orchestrator's lookup threads (`zeval_resolver`), not a thread per connection.
    let named_url = evaluate_url.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(named_url, evaluate_url);
    let json = Server::start_orchestrator_configured(
        data.path(),
        &format!("[evaluators]\njavascript = {{ url = \"{named_url}\", format = \"json\" }}\n"),
        &[],
    );
    assert_eq!(call(json.orch(), None, "named").json()["Z22K1"], "NAMED");

    assert!(evaluator.stop(), "the evaluator did not shut down cleanly");
    let answer = call(json.orch(), None, "gone");
    assert_eq!(answer.status, 200);
    // The error says what failed, and names no internal address (the caller may be anyone;
    // the log has the URL).
    assert!(
        answer.text.contains("request to the evaluator failed"),
        "{}",
        answer.text
    );
    let evaluator_address = evaluate_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    assert!(!answer.text.contains(evaluator_address), "{}", answer.text);
}

/// The worker processes of the server process `pid`.
fn children_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("children")).ok())
        .map(|children| children.split_whitespace().count())
        .sum()
}

/// An orchestrator node runs in process the languages `[evaluators]` sends nowhere else, and
/// runs them in its confined workers, loaded at start. Until 2026-12-06 such a node loaded
/// its guests during the first call that needed them, with no workers: Python code ran in
/// the server's own process, outside the worker's confinement.
#[test]
fn an_orchestrator_runs_its_in_process_languages_in_workers() {
    let data = tempfile::tempdir().unwrap();
    // JavaScript goes elsewhere (nobody listens there); Python stays in process.
    let server = Server::start_orchestrator_configured(
        data.path(),
        "[evaluators]\njavascript = { url = \"http://127.0.0.1:9/v1/evaluate/\" }\n",
        &[],
    );
    let python = serde_json::json!({
        "Z1K1": "Z7",
        "Z7K1": {
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10800K1",
                             "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"],
            "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10800",
                             "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z610",
                                       "Z16K2": "def Z10800(Z10800K1):\n    return Z10800K1[::-1]"}}],
            "Z8K5": "Z10800"
        },
        "Z10800K1": "abc"
    });
    let answer = request(
        "POST",
        &format!("{}/wikifunctions.org/v1/evaluate/", server.orch()),
        None,
        Some(&serde_json::json!({"zobject": python, "doValidate": false})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["Z22K1"], "cba", "{}", answer.text);
    assert!(
        children_of(server.pid()) > 0,
        "the Python call ran with no worker process"
    );
}
