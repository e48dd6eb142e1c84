//! `/metrics` counts sandbox limit hits by kind: a memory bomb in JavaScript hits the memory
//! limit, and the process keeps serving.

use serde_json::json;

use crate::common::{Server, add_user, call, request, z2};

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
