//! `POST /v1/test`: the matrix of testers × implementations, with a failing cell's Z5.

use serde_json::json;
use zeval_store::Role;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{
    Server, SlowEngine, put_composition, send, server, server_with_engine, token, z2,
};

/// Stores Z10000 with two implementations (Z10001 passes both testers, Z10002 fails
/// Z10003) and two testers (Z10003, Z10004).
async fn put_two_by_two(server: &Server) {
    let editor = token(server, "ed", Role::Editor);
    put_composition(server, &editor).await;
    // A second implementation that always answers "no", and two testers.
    let always_no = z2(
        "Z10002",
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
        "Z14K2": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z42", "Z802K2": "yes", "Z802K3": "no"}}),
    );
    let tester = |zid: &str, input: &str, expected: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z20", "Z20K1": "Z10000",
            "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": input},
            "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected}}),
        )
    };
    let mut function = send(server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    function["Z2K2"]["Z8K4"] = json!(["Z14", "Z10001", "Z10002"]);
    function["Z2K2"]["Z8K3"] = json!(["Z20", "Z10003", "Z10004"]);
    put_all(
        server,
        &editor,
        [
            ("Z10002", always_no),
            ("Z10003", tester("Z10003", "hi", "hi")),
            ("Z10004", tester("Z10004", "no", "no")),
            ("Z10000", function),
        ],
    )
    .await;
}

/// Stores each object, in order, as `editor`.
async fn put_all<const N: usize>(
    server: &Server,
    editor: &str,
    objects: [(&str, serde_json::Value); N],
) {
    for (zid, object) in objects {
        let answer = send(
            server,
            "PUT",
            &format!("/v1/objects/{zid}"),
            Some(editor),
            Some(object.to_string()),
        )
        .await;
        assert_eq!(answer.status, 200, "{zid}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn testers_give_a_matrix_with_failures_explained() {
    let server = server(|_| {});
    put_two_by_two(&server).await;
    let answer = send(
        &server,
        "POST",
        "/v1/test",
        None,
        Some(json!({"function": "Z10000"}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let matrix = answer.json();
    assert_eq!(matrix["total"], 4, "{matrix}");
    assert_eq!(matrix["passed"], 3, "{matrix}");
    let failed: Vec<_> = matrix["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["tester"], "Z10003");
    assert_eq!(failed[0]["implementation"], "Z10002");
    assert_eq!(failed[0]["error"]["Z5K1"], "Z512", "{matrix}");
    // The result the validator refused is quoted in canonical form, as the answer's is.
    assert_eq!(
        failed[0]["error"]["Z5K2"]["Z512K2"],
        json!({"Z1K1": "Z99", "Z99K1": "no"}),
        "{matrix}"
    );
    assert!(failed[0]["duration_ms"].as_f64().unwrap() > 0.0);
    // Narrowed to one implementation and one tester.
    let body = json!({"function": "Z10000", "implementations": ["Z10001"], "testers": ["Z10003"]});
    let narrowed = send(&server, "POST", "/v1/test", None, Some(body.to_string()))
        .await
        .json();
    assert_eq!(
        (narrowed["total"].as_u64(), narrowed["passed"].as_u64()),
        (Some(1), Some(1)),
        "{narrowed}"
    );
    let body = json!({"function": "Z10000", "implementations": ["Z902"]});
    assert_eq!(
        send(&server, "POST", "/v1/test", None, Some(body.to_string()))
            .await
            .status,
        400
    );
    let body = json!({"function": "Z10003"});
    assert_eq!(
        send(&server, "POST", "/v1/test", None, Some(body.to_string()))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_and_too_many_cells_are_refused() {
    let server = server(|c| c.limits.max_test_cells = 3);
    put_two_by_two(&server).await;
    let refused = |body: serde_json::Value, expected: &'static str| {
        let server = &server;
        async move {
            let answer = send(server, "POST", "/v1/test", None, Some(body.to_string())).await;
            assert_eq!(answer.status, 400, "{body}: {}", answer.text);
            assert!(answer.text.contains(expected), "{body}: {}", answer.text);
        }
    };
    refused(
        json!({"function": "Z10000", "implementations": ["Z10001", "Z10001"]}),
        "Z10001 is listed twice",
    )
    .await;
    refused(
        json!({"function": "Z10000", "testers": ["Z10004", "Z10003", "Z10004"]}),
        "Z10004 is listed twice",
    )
    .await;
    // 2 testers × 2 implementations = 4 cells > 3.
    refused(json!({"function": "Z10000"}), "limit of 3").await;
    let narrowed = json!({"function": "Z10000", "testers": ["Z10003"]});
    let answer = send(
        &server,
        "POST",
        "/v1/test",
        None,
        Some(narrowed.to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["total"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_run_ends_at_its_deadline() {
    let server = server_with_engine(
        |c| c.limits.test_timeout_ms = 500,
        |inner| {
            Arc::new(SlowEngine {
                inner,
                delay: Duration::from_millis(300),
            })
        },
    );
    put_two_by_two(&server).await;
    let started = Instant::now();
    let answer = send(
        &server,
        "POST",
        "/v1/test",
        None,
        Some(json!({"function": "Z10000"}).to_string()),
    )
    .await;
    // Unbounded, 4 cells of 2 calls of 300 ms each would take 2.4 s.
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let matrix = answer.json();
    assert_eq!(matrix["total"], 4, "{matrix}");
    let not_run = matrix["not_run"].as_u64().unwrap();
    assert!((2..=4).contains(&not_run), "{matrix}");
    let cells = matrix["cells"].as_array().unwrap();
    let skipped: Vec<_> = cells.iter().filter(|c| c["not_run"] == true).collect();
    assert_eq!(skipped.len() as u64, not_run);
    for cell in skipped {
        assert_eq!(cell["passed"], false);
        assert!(cell["error"].to_string().contains("time budget"), "{cell}");
    }
    let metrics = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains(&format!(
            "zeval_tester_runs_total{{outcome=\"not_run\"}} {not_run}"
        )),
        "{metrics}"
    );
}

/// A tester whose call does not call the function (here a built-in `If` that answers "hi")
/// runs none of its implementations: its cells are shown, and recorded for none of them. Its
/// outcome was credited to every implementation, so an editor's tester could pass (or, calling
/// a wrapper, fail) implementations it never ran.
#[tokio::test(flavor = "multi_thread")]
async fn a_tester_that_does_not_call_the_function_credits_no_implementation() {
    let server = server(|_| {});
    put_two_by_two(&server).await;
    let editor = token(&server, "ed2", Role::Editor);
    let elsewhere = z2(
        "Z10005",
        json!({"Z1K1": "Z20", "Z20K1": "Z10000",
        "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41", "Z802K2": "hi", "Z802K3": "no"},
        "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "hi"}}),
    );
    let mut function = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    function["Z2K2"]["Z8K3"] = json!(["Z20", "Z10003", "Z10004", "Z10005"]);
    put_all(
        &server,
        &editor,
        [("Z10005", elsewhere), ("Z10000", function)],
    )
    .await;
    let body = json!({"function": "Z10000", "testers": ["Z10005"]});
    let matrix = send(&server, "POST", "/v1/test", None, Some(body.to_string()))
        .await
        .json();
    assert_eq!(matrix["passed"], 2, "{matrix}");
    let ranking = send(&server, "GET", "/v1/objects/Z10000/ranking", None, None)
        .await
        .json();
    for implementation in ranking["implementations"].as_array().unwrap() {
        assert_eq!(implementation["testers_run"], 0, "{ranking}");
    }
}

/// A run with no tester (or no implementation) chosen has no cell, and reads nothing but
/// the function: the other list can hold some 11,000 ZIDs (its object's 100 KiB is the
/// only bound), and each was read (and each tester's object), on an anonymous route.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_cells_reads_no_revision() {
    use std::sync::atomic::Ordering;
    let data_dir = tempfile::tempdir().unwrap();
    let config = zeval_server::Config {
        data_dir: data_dir.path().to_path_buf(),
        ..zeval_server::Config::default()
    };
    let (server, counting) = crate::common::counting_server(config, data_dir);
    put_two_by_two(&server).await;
    let editor = token(&server, "ed2", Role::Editor);
    let mut function = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    let mut listed = vec![json!("Z14")];
    listed.extend((0..5_000).map(|i| json!(format!("Z{}", 20_000 + i))));
    function["Z2K2"]["Z8K4"] = json!(listed);
    put_all(&server, &editor, [("Z10000", function)]).await;
    let mut testers = vec![json!("Z20")];
    testers.extend((0..5_000).map(|i| json!(format!("Z{}", 30_000 + i))));
    let mut function = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    function["Z2K2"]["Z8K3"] = json!(testers);
    put_all(&server, &editor, [("Z10000", function)]).await;
    for body in [
        json!({"function": "Z10000", "testers": []}),
        json!({"function": "Z10000", "implementations": []}),
    ] {
        let revisions = counting.revision_reads.load(Ordering::SeqCst);
        let objects = counting.object_reads.load(Ordering::SeqCst);
        let answer = send(&server, "POST", "/v1/test", None, Some(body.to_string())).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json()["total"], 0);
        let revisions = counting.revision_reads.load(Ordering::SeqCst) - revisions;
        let objects = counting.object_reads.load(Ordering::SeqCst) - objects;
        assert!(
            revisions == 0 && objects < 100,
            "{body}: {revisions} revisions and {objects} objects read for a run of no cell"
        );
    }
}

/// A result a validator refused is quoted briefly (64 KiB of JSON whole, else the start of
/// its text), and a run's errors take 8 MiB at most. The result was quoted whole: a function
/// answering 2 MB to 30 testers that expect something else made a matrix of 60 MB (a
/// hundred testers of a 4 MB answer, 400 MB, twice over as JSON).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_result_is_quoted_briefly_in_every_cell() {
    const TESTERS: usize = 30;
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    let mut function = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .json();
    let large = z2(
        "Z10002",
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                "Z16K2": "function Z10000( Z10000K1 ) { return 'x'.repeat(2000000); }"}}),
    );
    put_all(&server, &editor, [("Z10002", large)]).await;
    let testers: Vec<String> = (0..TESTERS).map(|i| format!("Z{}", 10_100 + i)).collect();
    for zid in &testers {
        let tester = z2(
            zid,
            json!({"Z1K1": "Z20", "Z20K1": "Z10000",
                "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "hi"},
                "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "something else"}}),
        );
        put_all(&server, &editor, [(zid.as_str(), tester)]).await;
    }
    function["Z2K2"]["Z8K4"] = json!(["Z14", "Z10002"]);
    let mut listed = vec![json!("Z20")];
    listed.extend(testers.iter().map(|zid| json!(zid)));
    function["Z2K2"]["Z8K3"] = serde_json::Value::Array(listed);
    put_all(&server, &editor, [("Z10000", function)]).await;
    let answer = send(
        &server,
        "POST",
        "/v1/test",
        None,
        Some(json!({"function": "Z10000", "implementations": ["Z10002"]}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{:.2000}", answer.text);
    assert!(
        answer.text.len() < 2 * 1024 * 1024,
        "a matrix of {} bytes",
        answer.text.len()
    );
    let matrix = answer.json();
    let cells = matrix["cells"].as_array().unwrap();
    assert_eq!(cells.len(), TESTERS, "{matrix:.2000}");
    for cell in cells {
        assert_eq!(cell["error"]["Z5K1"], "Z512", "{cell:.2000}");
        let quoted = cell["error"]["Z5K2"]["Z512K2"]["Z99K1"]
            .as_str()
            .unwrap_or_else(|| panic!("{cell:.2000}"));
        assert!(
            quoted.contains("\"xxx") && quoted.ends_with('…'),
            "{quoted}"
        );
    }
}
