//! Resource attacks: CPU, memory, stack, output. Each ends in the Z5 naming its limit.

use std::time::{Duration, Instant};

use zeval_evaluator::Family::{JavaScript, Python};

use crate::{WALL_TIME, assert_fails_with, evaluator, hostile, outcome};

#[test]
fn an_infinite_loop_times_out() {
    assert_fails_with(
        hostile(JavaScript, "function Z1000() { while (true) {} }", &[]),
        "Function call timed out",
    );
    assert_fails_with(
        hostile(Python, "def Z1000():\n    while True:\n        pass", &[]),
        "Function call timed out",
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let js = "function Z1000() { const a = []; while (true) { a.push(new Array(1e6).fill(7)); } }";
    assert_fails_with(hostile(JavaScript, js, &[]), "memory limit of 96 MiB");
    let py = "def Z1000():\n    a = []\n    while True:\n        a.append(bytearray(10**6))";
    assert_fails_with(hostile(Python, py, &[]), "memory limit of 96 MiB");
}

#[test]
fn deep_recursion_is_a_stack_error() {
    let js = "function Z1000() { function f(n) { return f(n + 1) + 1; } return String(f(0)); }";
    // QuickJS sets no stack limit of its own on WASI: the wasm stack (8 MiB) or the C stack
    // in linear memory runs out, and either way the call ends in a Z5 that says so (the
    // runner's own message is allowed for too).
    let result = hostile(JavaScript, js, &[]);
    assert!(
        matches!(&result, Err(m) if m == "Maximum call stack size exceeded"
            || m == "Function call exceeded the stack limit of 8 MiB"),
        "{result:?}"
    );
    let py = "def Z1000():\n    def f(n):\n        return f(n + 1) + 1\n    return str(f(0))";
    assert_fails_with(hostile(Python, py, &[]), "maximum recursion depth exceeded");
}

#[test]
fn a_hundred_megabytes_of_output_hit_a_limit() {
    // The result itself: 100 MB cannot even be built under the memory limit, or is cut at
    // the output limit, whichever the interpreter reaches first.
    let js = "function Z1000() { return 'x'.repeat(100 * 1000 * 1000); }";
    let result = hostile(JavaScript, js, &[]);
    assert!(
        matches!(&result, Err(m) if m.contains("output limit") || m.contains("memory limit")),
        "{result:?}"
    );
    // Printing: Python's print goes to stderr, which has the same cap.
    let py = "def Z1000():\n    line = 'x' * 1000\n    for _ in range(100000):\n        print(line)\n    return 'done'";
    assert_fails_with(hostile(Python, py, &[]), "output limit of 1 MiB");
    let py = "def Z1000():\n    return 'x' * (100 * 1000 * 1000)";
    let result = hostile(Python, py, &[]);
    assert!(
        matches!(&result, Err(m) if m.contains("output limit") || m.contains("memory limit")),
        "{result:?}"
    );
}

#[test]
fn a_one_megabyte_argument_is_fine() {
    let big = "é".repeat(512 * 1024);
    let js = "function Z1000(Z1000K1) { return String(Z1000K1.length); }";
    assert_eq!(
        hostile(JavaScript, js, &[&big]),
        Ok((512 * 1024).to_string())
    );
    let py = "def Z1000(Z1000K1):\n    return str(len(Z1000K1.encode('utf-8')))";
    assert_eq!(hostile(Python, py, &[&big]), Ok((1024 * 1024).to_string()));
}

/// An executor request for a busy loop with `remaining_time` seconds left.
fn busy_loop_with(remaining_time: Option<f64>) -> zeval_evaluator::Request {
    let mut request = crate::request(JavaScript, "function Z1000() { while (true) {} }", &[]);
    if let zeval_evaluator::Request::Executor(executor) = &mut request {
        executor.remaining_time = remaining_time;
    }
    request
}

#[test]
fn the_callers_remaining_time_caps_the_wall_time() {
    let started = Instant::now();
    let z22 = evaluator().evaluate(busy_loop_with(Some(0.3)));
    let elapsed = started.elapsed();
    assert_fails_with(outcome(&z22), "Function call timed out");
    assert!(
        elapsed < Duration::from_millis(700),
        "took {elapsed:?}: the configured {WALL_TIME:?} instead of the 300 ms left"
    );
    // More time left than the limit (or an unusable amount) keeps the limit.
    for remaining in [3_600.0, f64::INFINITY, f64::MAX] {
        let started = Instant::now();
        let z22 = evaluator().evaluate(busy_loop_with(Some(remaining)));
        assert_fails_with(outcome(&z22), "Function call timed out");
        assert!(started.elapsed() < 2 * WALL_TIME);
    }
}

#[test]
fn the_remaining_time_in_a_json_body_caps_the_wall_time() {
    let body =
        br#"{"codingLanguage": "javascript", "codeString": "function Z1000() { while (true) {} }",
        "functionName": "Z1000", "functionArguments": {}, "remainingTime": 0.25}"#;
    let started = Instant::now();
    let z22 = evaluator().evaluate_body(body, Some("application/json"));
    assert_fails_with(outcome(&z22), "Function call timed out");
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn no_time_left_times_out_at_once_without_running() {
    for remaining in [0.0, -5.0, f64::NAN] {
        let request = crate::request(JavaScript, "function Z1000() { return 'ran'; }", &[]);
        let zeval_evaluator::Request::Executor(mut executor) = request else {
            unreachable!()
        };
        executor.remaining_time = Some(remaining);
        let execution = evaluator().execute(JavaScript, &executor);
        assert_fails_with(outcome(&execution.z22), "Function call timed out");
        assert!(
            execution.stats.is_none(),
            "the guest ran with {remaining} s left"
        );
    }
}

/// Python writing `bytes` straight to file descriptor `fd`, then exiting with `status`
/// before the runner answers.
fn python_writing(fd: u8, bytes: &str, status: u8) -> String {
    format!("import os\ndef Z1000():\n    os.write({fd}, {bytes})\n    os._exit({status})")
}

#[test]
fn nonsense_on_stdout_is_quoted_short() {
    let code = python_writing(1, "b'nonsense ' * 50000", 0);
    let result = hostile(Python, &code, &[]);
    let Err(message) = result else {
        panic!("succeeded")
    };
    assert!(
        message.starts_with("Executor returned some nonsense: nonsense"),
        "{message:.300}"
    );
    assert!(
        message.chars().count() <= "Executor returned some nonsense: ".len() + 205,
        "{} characters echoed",
        message.chars().count()
    );
}

#[test]
fn an_answer_with_too_many_values_is_refused_before_parsing() {
    // 600 KB (under the 1 MiB output limit) holding 300 000 values, which a host-side parse
    // would turn into ~10 MB of `Value`s; refused on a count of its tokens instead.
    let code = python_writing(1, "b'{\"result\": [' + b'0,' * 300000 + b'0]}'", 0);
    assert_fails_with(
        hostile(Python, &code, &[]),
        "exceeded the output limit of 262144 JSON tokens",
    );
}

#[test]
fn a_crash_with_a_flood_of_stderr_is_quoted_short() {
    let code = python_writing(2, "b'E' * 100000", 3);
    let result = hostile(Python, &code, &[]);
    let Err(message) = result else {
        panic!("succeeded")
    };
    assert!(
        message.starts_with("The executor failed: the guest failed: exit status 3"),
        "{message:.500}"
    );
    assert!(
        message.chars().count() < 450,
        "{} characters: {message:.500}",
        message.chars().count()
    );
}

#[test]
fn a_remote_call_gives_up_when_the_callers_time_is_up_and_sends_it() {
    // An evaluator that reads the request and answers only long after the caller gave up.
    let (url, server) = answer_once(
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_vec(),
        Duration::from_millis(1500),
    );
    let client = zeval_evaluator::client::RemoteEvaluator::new(
        url,
        zeval_evaluator::Encoding::Json,
        Duration::from_secs(20),
    );
    let request = busy_loop_with(None);
    let started = Instant::now();
    let result = client.evaluate_within(&request, Duration::from_millis(300));
    let elapsed = started.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(
        elapsed < Duration::from_millis(900),
        "waited {elapsed:?}, not the 300 ms left"
    );
    let received = server.join().unwrap();
    assert!(received.contains("\"remainingTime\":0.3"), "{received}");
}

/// A stand-in for a remote evaluator (or an orchestrator's callback route): reads one
/// request on one connection (until it has been silent 300 ms), answers `response` after
/// `delay`; the request's text.
fn answer_once(response: Vec<u8>, delay: Duration) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x/v1/evaluate/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().unwrap();
        connection
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = connection.read(&mut buffer) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
        }
        std::thread::sleep(delay);
        let _ = connection.write_all(&response);
        String::from_utf8_lossy(&received).into_owned()
    });
    (url, server)
}

/// A listener that records whether anyone connected within `within`.
fn watched_listener(within: Duration) -> (String, std::thread::JoinHandle<bool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let watcher = std::thread::spawn(move || {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if listener.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    (url, watcher)
}

/// A stand-in that answers one request with a redirect to a watched listener.
struct Redirecting {
    url: String,
    server: std::thread::JoinHandle<String>,
    /// Whether anyone connected to where the redirect points.
    watcher: std::thread::JoinHandle<bool>,
}

fn redirecting() -> Redirecting {
    let (elsewhere, watcher) = watched_listener(Duration::from_secs(2));
    let (url, server) = answer_once(
        format!("HTTP/1.1 302 Found\r\nlocation: {elsewhere}\r\ncontent-length: 0\r\n\r\n")
            .into_bytes(),
        Duration::ZERO,
    );
    Redirecting {
        url,
        server,
        watcher,
    }
}

/// The orchestrator's client of a remote evaluator follows no redirect: ureq keeps custom
/// headers on one, so the evaluator secret and the call went to whatever host a 302 named,
/// and that host's answer came back as the evaluator's.
#[test]
fn a_remote_evaluators_redirect_is_not_followed() {
    let Redirecting {
        url,
        server,
        watcher,
    } = redirecting();
    let client = zeval_evaluator::client::RemoteEvaluator::new(
        url,
        zeval_evaluator::Encoding::Json,
        Duration::from_secs(5),
    )
    .with_secret(Some("the-secret".to_owned()));
    let result = client.evaluate_within(&busy_loop_with(None), Duration::from_secs(5));
    assert!(result.is_err(), "{result:?}");
    server.join().unwrap();
    assert!(!watcher.join().unwrap(), "the redirect was followed");
}

/// An answer of more JSON values than a guest's answer and its metadata is refused before
/// it is parsed: 16 MiB of `[0,0,…]` made some 800 MiB of values.
#[test]
fn a_remote_answer_of_too_many_values_is_refused_unparsed() {
    let values = zeval_evaluator::client::MAX_ANSWER_VALUES + 1;
    let body = format!(
        r#"{{"Z1K1":"Z22","Z22K1":[{}0],"Z22K2":"Z24"}}"#,
        "0,".repeat(values)
    );
    let (url, server) = answer_once(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        Duration::ZERO,
    );
    let client = zeval_evaluator::client::RemoteEvaluator::new(
        url,
        zeval_evaluator::Encoding::Json,
        Duration::from_secs(5),
    );
    let error = client
        .evaluate_within(&busy_loop_with(None), Duration::from_secs(5))
        .unwrap_err();
    assert!(error.contains("more than"), "{error}");
    server.join().unwrap();
}

/// The client of the nested calls' callback follows no redirect either: the URL is the
/// evaluator API's caller's, and a redirect took the guest's request to any host the answer
/// named, and that host's answer back to the guest.
#[test]
fn a_callbacks_redirect_is_not_followed() {
    use zeval_evaluator::NestedCalls;
    let Redirecting {
        url,
        server,
        watcher,
    } = redirecting();
    let mut client = zeval_evaluator::reentry::CallbackClient::new(&url, "a-token").unwrap();
    let call = zeval_evaluator::NestedCall {
        function: "Z10000".to_owned(),
        arguments: Vec::new(),
    };
    let answer = client.call(call, Instant::now() + Duration::from_secs(5));
    assert!(answer.is_err(), "{answer:?}");
    server.join().unwrap();
    assert!(!watcher.join().unwrap(), "the redirect was followed");
}

/// A guest's exception message is kept to `MAX_ERROR_MESSAGE_CHARS`: it was kept whole (as
/// long as the output limit allows, 8 MiB by default) and copied as the error travelled.
#[test]
fn an_exception_message_is_cut_at_its_bound() {
    let limit = zeval_evaluator::plan::MAX_ERROR_MESSAGE_CHARS;
    for (family, code) in [
        (Python, "def Z1000():\n    raise Exception('x' * 800000)"),
        (
            JavaScript,
            "function Z1000() { throw new Error('x'.repeat(800000)); }",
        ),
    ] {
        let message = hostile(family, code, &[]).expect_err("an error");
        let chars = message.chars().count();
        assert!(
            chars <= limit + 1 && message.ends_with("x…"),
            "{family:?}: {chars} characters: {:.200}",
            message
        );
    }
    // A short one is whole.
    let message =
        hostile(Python, "def Z1000():\n    raise Exception('short')", &[]).expect_err("an error");
    assert!(message.ends_with("short"), "{message}");
}
