//! `/metrics` counts sandbox limit hits by kind: a memory bomb in JavaScript hits the memory
//! limit, and the process keeps serving. It counts the calls that ran compiled code from the
//! code cache, through a real server.

use serde_json::json;

use crate::common::{
    Server, add_user, call, idle_worker_pids, metric, put_js_function, request, z2,
};

#[test]
fn a_memory_bomb_is_counted_as_a_memory_limit_hit() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    let function = z2(
        "Z10000",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000",
        }),
    );
    let bomb = z2(
        "Z10001",
        json!({
            "Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2":
                "function Z10000( Z10000K1 ) { const a = []; while ( true ) { a.push( new Array( 1e6 ).fill( Z10000K1 ) ); } }"},
        }),
    );
    for (zid, object) in [("Z10000", function), ("Z10001", bomb)] {
        let answer = request(
            "PUT",
            &format!("{orch}/v1/objects/{zid}"),
            Some(&token),
            Some(&object),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let answer = call(orch, None, "x");
    assert_eq!(answer.status, 200);
    assert!(answer.text.contains("memory limit"), "{}", answer.text);
    let metrics = request("GET", &format!("{orch}/metrics"), None, None).text;
    assert!(
        metrics.contains("zeval_sandbox_limit_hits_total{kind=\"memory\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zeval_code_runs_total{language=\"javascript\",outcome=\"error\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("zeval_calls_in_flight 0"), "{metrics}");
    assert_eq!(
        request("GET", &format!("{orch}/healthz"), None, None).status,
        200
    );
}

/// The code cache (`[cache] compiled_code`) through a real server and its workers: four calls
/// of one stored JavaScript function, each with its own argument so that the result cache
/// answers none. A worker's first call of the code compiles it, its second also hands the
/// compiled code back, and its later ones run that: the pool gives a lone caller the worker
/// it released last, so calls three and four are hits. The calls start once both workers the
/// pool keeps started are idle: a worker that became ready between two calls would be the
/// one released last, and the next call would go to it (this failed about one run in four).
#[test]
fn calls_of_one_code_string_run_it_compiled_from_the_third_on() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    put_js_function(orch, &token);
    idle_worker_pids(server.evaluator.as_deref().expect("evaluator API"), 2);
    assert_eq!(metric(orch, "zeval_code_cache_hits_total"), 0.0);
    for text in ["abc", "def", "ghi", "jkl"] {
        let answer = call(orch, None, text);
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            answer.text.contains(&text.to_uppercase()),
            "{text}: {}",
            answer.text
        );
    }
    assert_eq!(metric(orch, "zeval_code_cache_hits_total"), 2.0);
}
