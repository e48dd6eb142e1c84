//! `/metrics` stays bounded whatever clients send.

use crate::common::{send, server};

fn calls_series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("zeval_calls_total{"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn random_function_names_add_at_most_one_series() {
    let server = server(|_| {});
    let call = |function: String| {
        serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": function, "K1": "x"}}).to_string()
    };
    // A function that exists has its own series.
    let echo = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "hi"}});
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(echo.to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let before = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(before.contains("function=\"Z801\""), "{before}");
    for i in 0..300 {
        let function = if i % 2 == 0 {
            format!("Z{}", 7_000_000 + i * 7919)
        } else {
            format!("no such function {i} \" \\ \n")
        };
        let answer = send(
            &server,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            None,
            Some(call(function)),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let after = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(
        calls_series(&after) <= calls_series(&before) + 1,
        "{before}\n---\n{after}"
    );
    assert!(after.contains("function=\"other\""), "{after}");
    assert!(!after.contains("no such function"), "{after}");
}

/// Only functions have their own series: a call of any other object (a language, a type) is
/// counted as `other`. The catalogue alone holds more objects than a metric has series (its
/// 885 languages), and each call of one took a series for good, so that real functions were
/// counted as `other` once 1,000 had been called.
#[tokio::test(flavor = "multi_thread")]
async fn calls_of_objects_that_are_not_functions_take_no_series() {
    let server = server(|_| {});
    for object in ["Z1002", "Z1003", "Z6", "Z40"] {
        let call =
            serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": object, "K1": "x"}}).to_string();
        let answer = send(
            &server,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            None,
            Some(call),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let metrics = send(&server, "GET", "/metrics", None, None).await.text;
    for object in ["Z1002", "Z1003", "Z6", "Z40"] {
        assert!(
            !metrics.contains(&format!("function=\"{object}\"")),
            "{object}: {metrics}"
        );
    }
    assert!(metrics.contains("function=\"other\""), "{metrics}");
}
