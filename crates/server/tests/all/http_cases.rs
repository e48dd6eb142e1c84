//! The 5 cases of `../shared/wikifunctions/orchestrator/http-cases.json` against the real
//! route, with the pass rules the file states.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{send, server};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/wikifunctions/orchestrator")
}

/// `{"file": "data/X.json"}` means the contents of that file.
fn resolve(v: &Value) -> Value {
    if let Some(file) = v.get("file").and_then(Value::as_str)
        && v.as_object().is_some_and(|m| m.len() == 1)
    {
        let text = std::fs::read_to_string(suite_dir().join(file)).unwrap();
        return serde_json::from_str(&text).unwrap();
    }
    v.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn all_five_http_cases_pass() {
    let text = std::fs::read_to_string(suite_dir().join("http-cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 5);
    let server = server(|_| {});
    let mut passed = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let mut body = case["request_body"].clone();
        body["zobject"] = resolve(&body["zobject"]);
        let answer = send(
            &server,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            None,
            Some(body.to_string()),
        )
        .await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.text);
        let content_type = answer.headers["content-type"].to_str().unwrap();
        assert!(content_type.contains("json"), "{name}: {content_type}");
        let e = answer.json();
        match case["check"].as_str().unwrap() {
            "z5_codes" => {
                let mut found = Vec::new();
                collect_z9k1(&e, &mut found);
                for code in case["codes"].as_array().unwrap() {
                    assert!(
                        found.iter().any(|c| c == code.as_str().unwrap()),
                        "{name}: no Z9K1 {code} in {e}"
                    );
                }
            }
            "z823_envelope" => {
                let expected_type =
                    serde_json::json!({"Z1K1":"Z7","Z7K1":"Z882","Z882K1":"Z1","Z882K2":"Z1"});
                for key in ["Z1K1", "Z882K1", "Z882K2"] {
                    assert_eq!(e["Z22K1"]["Z1K1"][key], expected_type[key], "{name}: {e}");
                }
                let first = zeval_zobject::canonicalize(&case["expected_pair_first"]).unwrap();
                assert_eq!(e["Z22K1"]["K1"], first, "{name}");
                assert!(zeval_zobject::build::is_map(&e["Z22K2"]), "{name}: {e}");
                assert!(
                    zeval_zobject::build::is_map(&e["Z22K1"]["K2"]),
                    "{name}: {e}"
                );
                assert!(
                    zeval_zobject::build::envelope_error(&e).is_none_or(|x| x == "Z24"),
                    "{name}: {e}"
                );
                assert!(
                    zeval_zobject::build::get_metadata(&e["Z22K1"]["K2"], "errors").is_none(),
                    "{name}: {e}"
                );
            }
            other => panic!("unknown check {other}"),
        }
        passed += 1;
    }
    assert_eq!(passed, 5);
}

fn collect_z9k1(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Z9K1"
                    && let Value::String(s) = x
                {
                    out.push(s.clone());
                }
                collect_z9k1(x, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect_z9k1(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn syntax_errors_are_problems_and_health_answers() {
    let server = server(|_| {});
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some("{\"zobject\": ".into()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        answer.text
    );
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some("[2]".into()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        zeval_zobject::build::envelope_error(&answer.json()).is_some(),
        "{}",
        answer.text
    );
    for path in [
        "/wikifunctions.org/v1/evaluate/",
        "/healthz",
        "/_info",
        "/_info/name",
        "/_info/version",
    ] {
        let answer = send(&server, "GET", path, None, None).await;
        assert_eq!(answer.status, 200, "{path}");
    }
    assert_eq!(
        send(&server, "GET", "/_info/name", None, None).await.json()["name"],
        "zeval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_built_in_call_is_counted_in_metrics() {
    let server = server(|_| {});
    let call = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41", "Z802K2": "yes", "Z802K3": "no"}});
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(call.to_string()),
    )
    .await;
    assert_eq!(answer.json()["Z22K1"], "yes", "{}", answer.text);
    let metrics = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("zeval_calls_total{function=\"Z802\",implementation_type=\"BuiltIn\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("zeval_store_objects "), "{metrics}");
    assert!(metrics.contains("zeval_cache_hits_total "), "{metrics}");
}
