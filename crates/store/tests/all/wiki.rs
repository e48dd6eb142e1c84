//! The wiki source against a stub HTTP server on 127.0.0.1 (never the network).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeval_store::{MAX_ANSWER_VALUES, MAX_ZIDS_PER_REQUEST, ObjectSource, StoreError, WikiSource};

use crate::z2;

/// What the stub answers for the `zids` of a request: status, body, and a delay first.
type Answer = dyn Fn(&[String]) -> (u16, String, Duration) + Send + Sync;

/// A stub wiki that records the `zids` of every request it gets.
struct StubWiki {
    url: String,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
}

impl StubWiki {
    fn start(
        answer: impl Fn(&[String]) -> (u16, String, Duration) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/w/api.php", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let answer: Arc<Answer> = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (recorded, answer) = (recorded.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    reader.read_line(&mut request_line).unwrap();
                    let mut header = String::new();
                    while reader.read_line(&mut header).unwrap() > 2 {
                        header.clear();
                    }
                    let zids = zids_of(&request_line);
                    recorded.lock().unwrap().push(zids.clone());
                    let (status, body, delay) = answer(&zids);
                    std::thread::sleep(delay);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }
}

/// The `zids` parameter of `GET /w/api.php?action=wikilambda_fetch&format=json&zids=A%7CB`.
fn zids_of(request_line: &str) -> Vec<String> {
    let target = request_line.split(' ').nth(1).unwrap();
    let query = target.split_once('?').unwrap().1;
    let params: HashMap<_, _> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    assert_eq!(
        (params["action"], params["format"]),
        ("wikilambda_fetch", "json")
    );
    params["zids"]
        .replace("%7C", "|")
        .split('|')
        .map(String::from)
        .collect()
}

/// Answers every ZID from `Z10000` up that is in `known`, as the wiki does.
fn serve_known(
    known: Vec<&'static str>,
) -> impl Fn(&[String]) -> (u16, String, Duration) + Send + Sync {
    move |zids| {
        let mut answer = serde_json::Map::new();
        for zid in zids.iter().filter(|z| known.contains(&z.as_str())) {
            let text = serde_json::to_string(&z2(zid, "from the wiki", "l")).unwrap();
            answer.insert(zid.clone(), serde_json::json!({"wikilambda_fetch": text}));
        }
        (
            200,
            serde_json::Value::Object(answer).to_string(),
            Duration::ZERO,
        )
    }
}

fn strings(zids: &[&str]) -> Vec<String> {
    zids.iter().map(|z| z.to_string()).collect()
}

#[test]
fn fetches_all_zids_in_one_request_and_leaves_out_missing_ones() {
    let wiki = StubWiki::start(serve_known(vec!["Z10001", "Z10002"]));
    let source = WikiSource::new(&wiki.url);
    let found = source
        .fetch(&strings(&["Z10001", "Z10002", "Z10003", "Z10001", "../x"]))
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["Z10002"]["Z2K2"], "from the wiki");
    assert_eq!(found["Z10002"]["Z2K1"]["Z6K1"], "Z10002");
    assert_eq!(wiki.requests(), [strings(&["Z10001", "Z10002", "Z10003"])]);
}

#[test]
fn more_zids_than_a_request_takes_are_split_into_batches() {
    let wiki = StubWiki::start(serve_known(vec!["Z10000", "Z10100"]));
    let zids: Vec<String> = (10_000..10_000 + 2 * MAX_ZIDS_PER_REQUEST + 1)
        .map(|n| format!("Z{n}"))
        .collect();
    let found = WikiSource::new(&wiki.url).fetch(&zids).unwrap();
    assert_eq!(found.len(), 2);
    let sizes: Vec<usize> = wiki.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, [MAX_ZIDS_PER_REQUEST, MAX_ZIDS_PER_REQUEST, 1]);
}

#[test]
fn an_error_answer_means_every_zid_is_missing() {
    let wiki = StubWiki::start(|_| (200, r#"{"problem":"bad"}"#.into(), Duration::ZERO));
    assert!(
        WikiSource::new(&wiki.url)
            .fetch(&strings(&["Z1010101"]))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn http_errors_and_nonsense_are_fetch_errors() {
    let wiki = StubWiki::start(|zids| match zids[0].as_str() {
        "Z1" => (500, "oops".into(), Duration::ZERO),
        "Z2" => (200, "<html>".into(), Duration::ZERO),
        _ => (
            200,
            r#"{"Z3":{"wikilambda_fetch":"{broken"}}"#.into(),
            Duration::ZERO,
        ),
    });
    let source = WikiSource::new(&wiki.url);
    for zid in ["Z1", "Z2", "Z3"] {
        let err = source.fetch(&strings(&[zid])).unwrap_err();
        assert!(
            matches!(&err, StoreError::Fetch { zids, .. } if zids == zid),
            "{err}"
        );
    }
}

#[test]
fn a_slow_wiki_times_out() {
    let wiki = StubWiki::start(|_| (200, "{}".into(), Duration::from_secs(5)));
    let source = WikiSource::with_timeout(&wiki.url, Duration::from_millis(300));
    let started = Instant::now();
    let err = source.fetch(&strings(&["Z10001"])).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Fetch { .. }), "{err}");
}

#[test]
fn an_unreachable_wiki_is_a_fetch_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = WikiSource::new(format!("http://127.0.0.1:{port}/w/api.php"));
    assert!(matches!(
        source.fetch(&strings(&["Z10001"])),
        Err(StoreError::Fetch { .. })
    ));
}

#[test]
fn nothing_to_ask_makes_no_request() {
    let wiki = StubWiki::start(serve_known(vec![]));
    assert!(
        WikiSource::new(&wiki.url)
            .fetch(&strings(&["not a zid"]))
            .unwrap()
            .is_empty()
    );
    assert!(wiki.requests().is_empty());
}

#[test]
fn missing_zids_are_remembered_for_a_while() {
    let wiki = StubWiki::start(serve_known(vec!["Z10001"]));
    let source = WikiSource::new(&wiki.url);
    for _ in 0..3 {
        let found = source.fetch(&strings(&["Z10001", "Z10002"])).unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["Z10001"]);
    }
    // Found objects are not this source's to cache; the missing one is asked only once.
    assert_eq!(
        wiki.requests(),
        [
            strings(&["Z10001", "Z10002"]),
            strings(&["Z10001"]),
            strings(&["Z10001"])
        ]
    );
    let forgetful = WikiSource::new(&wiki.url).with_missing_ttl(Duration::from_millis(50));
    forgetful.fetch(&strings(&["Z10003"])).unwrap();
    forgetful.fetch(&strings(&["Z10003"])).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    forgetful.fetch(&strings(&["Z10003"])).unwrap();
    assert_eq!(wiki.requests().len(), 5, "{:?}", wiki.requests());
}

#[test]
fn an_error_answer_for_several_zids_is_not_remembered_as_missing() {
    let wiki = StubWiki::start(|_| (200, r#"{"error":{"code":"x"}}"#.into(), Duration::ZERO));
    let source = WikiSource::new(&wiki.url);
    source.fetch(&strings(&["Z10001", "Z10002"])).unwrap();
    source.fetch(&strings(&["Z10001", "Z10002"])).unwrap();
    source.fetch(&strings(&["Z10003"])).unwrap();
    source.fetch(&strings(&["Z10003"])).unwrap();
    assert_eq!(wiki.requests().len(), 3, "{:?}", wiki.requests());
}

#[test]
fn no_time_left_means_no_request() {
    let wiki = StubWiki::start(serve_known(vec!["Z10001"]));
    let source = WikiSource::new(&wiki.url);
    let err = source
        .fetch_before(&strings(&["Z10001"]), Some(Instant::now()))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DeadlineExceeded { zids } if zids == "Z10001"),
        "{err}"
    );
    assert!(wiki.requests().is_empty());
}

#[test]
fn a_request_ends_at_the_deadline_not_at_the_timeout() {
    let wiki = StubWiki::start(|_| (200, "{}".into(), Duration::from_secs(5)));
    let source = WikiSource::new(&wiki.url);
    let started = Instant::now();
    let err = source
        .fetch_before(
            &strings(&["Z10001"]),
            Some(started + Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Fetch { .. }), "{err}");
}

#[test]
fn layers_and_the_shared_cache_pass_the_deadline_on() {
    let wiki = StubWiki::start(serve_known(vec!["Z10001"]));
    let source = zeval_store::SharedCache::new(
        zeval_store::Layered::new()
            .with(zeval_store::catalogue::CatalogueSource)
            .with(WikiSource::new(&wiki.url)),
        100,
    );
    // Built-ins answer without asking the wiki, deadline or not.
    assert!(
        source
            .fetch_before(&strings(&["Z801"]), Some(Instant::now()))
            .unwrap()
            .contains_key("Z801")
    );
    let err = source
        .fetch_before(&strings(&["Z10001"]), Some(Instant::now()))
        .unwrap_err();
    assert!(matches!(err, StoreError::DeadlineExceeded { .. }), "{err}");
    assert!(wiki.requests().is_empty());
    let far = Instant::now() + Duration::from_secs(30);
    assert!(
        source
            .fetch_before(&strings(&["Z10001"]), Some(far))
            .unwrap()
            .contains_key("Z10001")
    );
}

/// `[0,0,…]` of `values` JSON values.
fn zeros(values: usize) -> String {
    format!("[{}0]", "0,".repeat(values - 2))
}

#[test]
fn an_answer_of_too_many_values_is_refused_before_parsing() {
    // 60 % of the bound in each of two objects: each alone would fit, together they do not;
    // and an answer whose own JSON is past the bound.
    let many = zeros(MAX_ANSWER_VALUES * 6 / 10);
    let wiki = StubWiki::start(move |zids| {
        let body = match zids[0].as_str() {
            "Z10001" => serde_json::json!({"Z10001": {"wikilambda_fetch": many}}).to_string(),
            "Z10002" => serde_json::json!({
                "Z10002": {"wikilambda_fetch": many},
                "Z10003": {"wikilambda_fetch": many},
            })
            .to_string(),
            _ => format!(
                r#"{{"Z10004":{{"wikilambda_fetch":"{{}}"}},"x":{}}}"#,
                zeros(MAX_ANSWER_VALUES + 1)
            ),
        };
        (200, body, Duration::ZERO)
    });
    let source = WikiSource::new(&wiki.url);
    let one = source.fetch(&strings(&["Z10001"])).unwrap();
    assert_eq!(
        one["Z10001"].as_array().map(Vec::len),
        Some(MAX_ANSWER_VALUES * 6 / 10 - 1)
    );
    for zids in [&["Z10002", "Z10003"][..], &["Z10004"]] {
        match source.fetch(&strings(zids)) {
            Err(StoreError::Fetch { message, .. })
                if message.contains(&format!("more than {MAX_ANSWER_VALUES} values")) => {}
            Err(other) => panic!("{zids:?}: {other}"),
            Ok(found) => panic!("{zids:?}: parsed {} objects", found.len()),
        }
    }
}

/// A wiki object is taken as deep as the store takes its own (`MAX_OBJECT_DEPTH`), no
/// deeper: until 2026-12-07 to the parser's limit, ten times that.
#[test]
fn an_object_deeper_than_the_store_takes_is_refused() {
    let nested = |levels: usize| {
        // The Z2 itself is one level.
        let value = format!("{}{}", "[".repeat(levels - 1), "]".repeat(levels - 1));
        format!(r#"{{"Z1K1":"Z2","Z2K2":{value}}}"#)
    };
    let wiki = StubWiki::start(move |zids| {
        let mut answer = serde_json::Map::new();
        for zid in zids {
            let levels = match zid.as_str() {
                "Z10001" => zeval_store::MAX_OBJECT_DEPTH,
                _ => zeval_store::MAX_OBJECT_DEPTH + 1,
            };
            answer.insert(
                zid.clone(),
                serde_json::json!({"wikilambda_fetch": nested(levels)}),
            );
        }
        (
            200,
            serde_json::Value::Object(answer).to_string(),
            Duration::ZERO,
        )
    });
    let source = WikiSource::new(&wiki.url);
    // In one batch: the deeper one is missing, and the other is not held back.
    let found = source.fetch(&strings(&["Z10001", "Z10002"])).unwrap();
    assert_eq!(
        zeval_zobject::depth::of(&found["Z10001"]),
        zeval_store::MAX_OBJECT_DEPTH
    );
    assert!(
        !found.contains_key("Z10002"),
        "took an object {} levels deep",
        zeval_zobject::depth::of(&found["Z10002"])
    );
}

#[test]
fn a_redirect_is_not_followed() {
    let elsewhere = StubWiki::start(serve_known(vec!["Z10001"]));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/w/api.php", listener.local_addr().unwrap());
    let location = elsewhere.url.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {location}?action=wikilambda_fetch&format=json&zids=Z10001\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let err = WikiSource::new(&url)
        .fetch(&strings(&["Z10001"]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Fetch { message, .. } if message.contains("HTTP 302")),
        "{err}"
    );
    assert!(elsewhere.requests().is_empty());
}
