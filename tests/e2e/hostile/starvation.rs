//! Item 5: one client cannot take the service from the others. The work slot used to be taken
//! before the body was read, with no read or idle timeout, so 65 slow connections held every
//! slot; and 32 concurrent `while(true){}` calls blocked JavaScript for every other caller
//! for their whole deadline.

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Client, MARGIN, NORMAL_CALL_LIMIT, SlowConnections, Target, assert_refused, busy_loop_call,
    one_at_a_time, prefix, timed_call,
};

/// The call deadline of this server.
const DEADLINE: Duration = Duration::from_millis(3_000);
/// `ZEVAL_HEADER_TIMEOUT_MS` of this server.
const HEADER_TIMEOUT: Duration = Duration::from_millis(1_000);
/// `ZEVAL_BODY_TIMEOUT_MS` of this server.
const BODY_TIMEOUT: Duration = Duration::from_millis(2_000);
/// `ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS` of this server.
const PER_CLIENT: usize = 4;
/// Slow connections: more than the 64 work slots.
const SLOW_CONNECTIONS: usize = 70;
/// Concurrent busy loops of the greedy client: more than the 32 JavaScript sandbox slots.
const GREEDY_CALLS: usize = 40;
/// How long another client's trivial call may take while the greedy client's loops run.
const TRIVIAL_CALL_LIMIT: Duration = Duration::from_millis(1_500);

fn trivial_call(target: &Target, what: &str) -> Duration {
    let client = Client::new(target.orch(), Some(&target.neighbour), DEADLINE + MARGIN);
    let started = Instant::now();
    let answer = client
        .evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "neighbour"}))
        .unwrap_or_else(|e| panic!("{what}: the neighbour's call got no answer: {e}"));
    let took = started.elapsed();
    assert_eq!(
        answer.status,
        200,
        "{what}: the neighbour's call: {}",
        prefix(&answer.text)
    );
    assert_eq!(
        answer.json()["Z22K1"],
        "NEIGHBOUR",
        "{what}: {}",
        prefix(&answer.text)
    );
    took
}

#[test]
fn slow_and_greedy_clients_do_not_starve_the_others() {
    let _serial = one_at_a_time();
    let deadline = DEADLINE.as_millis().to_string();
    let header = HEADER_TIMEOUT.as_millis().to_string();
    let body = BODY_TIMEOUT.as_millis().to_string();
    let per_client = PER_CLIENT.to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_HEADER_TIMEOUT_MS", &header),
        ("ZEVAL_BODY_TIMEOUT_MS", &body),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", &per_client),
    ]);

    // Slow connections: headers, then a byte of body every 200 ms.
    let slow = SlowConnections::open(target.orch(), SLOW_CONNECTIONS, Duration::from_millis(200));
    let took = trivial_call(&target, "during 70 slow connections");
    eprintln!("item 5, a normal call during {SLOW_CONNECTIONS} slow connections: {took:?}");
    assert!(
        took <= TRIVIAL_CALL_LIMIT,
        "a normal call took {took:?} during {SLOW_CONNECTIONS} slow connections"
    );
    // The body timeout ends them.
    let waited = Instant::now();
    while slow.closed.load(Ordering::Relaxed) < SLOW_CONNECTIONS
        && waited.elapsed() < BODY_TIMEOUT + MARGIN + Duration::from_secs(1)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed = slow.closed.load(Ordering::Relaxed);
    drop(slow);
    assert_eq!(
        closed,
        SLOW_CONNECTIONS,
        "only {closed} of {SLOW_CONNECTIONS} slow connections were ended within the body timeout \
         ({BODY_TIMEOUT:?}) + {:?}",
        MARGIN + Duration::from_secs(1)
    );

    // A connection that sends nothing is closed by the header timeout.
    let address = target.orch().trim_start_matches("http://");
    let mut silent = TcpStream::connect(address).unwrap();
    silent
        .set_read_timeout(Some(HEADER_TIMEOUT + MARGIN))
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let outcome = silent.read(&mut buffer);
    let took = started.elapsed();
    assert!(
        took <= HEADER_TIMEOUT + MARGIN
            && !matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "a silent connection was still open after {took:?} (header timeout {HEADER_TIMEOUT:?}): {outcome:?}"
    );
    eprintln!("item 5, a silent connection closed after {took:?}");

    // One anonymous client's many busy loops: beyond its per-client limit it gets 429, and
    // another client's trivial call stays fast meanwhile.
    let orch = target.orch().to_owned();
    let greedy: Vec<_> = (0..GREEDY_CALLS)
        .map(|i| {
            let orch = orch.clone();
            std::thread::spawn(move || {
                timed_call(
                    &orch,
                    None,
                    &busy_loop_call(&format!("Z{}", 10_500 + i)),
                    DEADLINE,
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let took = trivial_call(&target, "during the greedy client's busy loops");
    eprintln!("item 5, a normal call during {GREEDY_CALLS} busy loops of another client: {took:?}");
    let outcomes: Vec<_> = greedy.into_iter().map(|t| t.join().unwrap()).collect();
    let too_many = outcomes
        .iter()
        .filter(|t| matches!(&t.answer, Ok(a) if a.status == 429))
        .count();
    let mut admitted = 0;
    for (i, timed) in outcomes.iter().enumerate() {
        if matches!(&timed.answer, Ok(a) if a.status == 429) {
            continue;
        }
        admitted += 1;
        assert_refused(&format!("busy loop {i}"), timed, DEADLINE);
    }
    eprintln!("item 5, greedy client: {admitted} admitted, {too_many} answered 429");
    assert!(
        took <= TRIVIAL_CALL_LIMIT,
        "another client's trivial call took {took:?} while the greedy client's loops ran"
    );
    assert!(
        admitted <= PER_CLIENT,
        "{admitted} of the greedy client's {GREEDY_CALLS} calls were admitted (limit {PER_CLIENT})"
    );
    target.assert_survived();
}

/// The call deadline of the server of the reserve test: long, so that a call that waits for
/// one of the loops to end is told apart from one served beside them.
const LOOP_DEADLINE: Duration = Duration::from_millis(6_000);

/// Several clients, each within its per-client limit, together hold every worker with
/// endless loops (here two clients, one loop each, on two workers; by default four clients
/// of eight loops hold all 32). Another client's trivial calls are still answered at once,
/// in a reserve worker, and the pool grows by at most the reserve. Before the reserve, each
/// waited until a loop ended at its deadline.
#[test]
fn clients_within_their_limits_cannot_hold_every_worker_from_the_others() {
    let _serial = one_at_a_time();
    let deadline = LOOP_DEADLINE.as_millis().to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_MAX_WORKERS", "2"),
        ("ZEVAL_WORKERS_RESERVE", "1"),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", "1"),
    ]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = [&target.admin, &target.editor]
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (orch, token, stop) = (target.orch().to_owned(), token.clone(), stop.clone());
            std::thread::spawn(move || {
                let call = busy_loop_call(&format!("Z{}", 10_700 + i));
                let mut loops = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let timed = timed_call(&orch, Some(&token), &call, LOOP_DEADLINE);
                    let answer = timed.answer.expect("a loop's answer");
                    assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
                    loops.push((super::error_code(&answer.json()), timed.took));
                }
                loops
            })
        })
        .collect();
    until_busy(&target, 2);
    std::thread::sleep(Duration::from_millis(200));
    let mut took = Vec::new();
    for _ in 0..5 {
        took.push(trivial_call(&target, "beside loops in every worker"));
    }
    eprintln!("a normal call beside loops holding every worker: {took:?}");
    let status = worker_status(&target);
    stop.store(true, Ordering::Relaxed);
    assert!(
        took.iter().all(|took| *took <= NORMAL_CALL_LIMIT),
        "a normal call waited beside the loops: {took:?} (deadline {LOOP_DEADLINE:?})"
    );
    assert!(
        status["alive"].as_u64() <= Some(3),
        "max_workers + reserve: {status}"
    );
    assert!(status["reserve_calls"].as_u64() >= Some(5), "{status}");
    for attacker in attackers {
        for (code, took) in attacker.join().unwrap() {
            assert_eq!(code.as_deref(), Some("Z558"), "a loop ended otherwise");
            assert!(
                took >= LOOP_DEADLINE - Duration::from_millis(500),
                "a loop in a regular worker was cut: {took:?}"
            );
        }
    }
    target.assert_survived();
}

/// A function `Z10900(text)` whose JavaScript calls itself through `W.Call` with one
/// character less, and loops once the text is empty: each call holds one guest waiting per
/// character, then one running. Its tester `Z10902` calls it on 8 characters.
fn put_descending_function(target: &Target) {
    let function = crate::common::z2(
        "Z10900",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10900K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20", "Z10902"], "Z8K4": ["Z14", "Z10901"], "Z8K5": "Z10900",
        }),
    );
    let implementation = crate::common::z2(
        "Z10901",
        json!({
            "Z1K1": "Z14", "Z14K1": "Z10900",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": super::JAVASCRIPT,
                      "Z16K2": "function Z10900( Z10900K1 ) {\n\
                                  if ( Z10900K1.length === 0 ) { while ( true ) {} }\n\
                                  return W.Call( 'Z10900', { Z10900K1: Z10900K1.slice( 1 ) } );\n\
                                }"},
        }),
    );
    let tester = crate::common::z2(
        "Z10902",
        json!({"Z1K1": "Z20", "Z20K1": "Z10900",
               "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10900", "Z10900K1": "12345678"},
               "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "done"}}),
    );
    super::put(target.orch(), &target.editor, "Z10900", &function);
    super::put(target.orch(), &target.editor, "Z10901", &implementation);
    super::put(target.orch(), &target.editor, "Z10902", &tester);
}

/// The workers of the server of [`one_clients_calls_from_code_cannot_hold_every_worker`].
const DESCENT_WORKERS: usize = 12;

/// Two descents 8 deep by one client (`target.admin`), as calls or as test runs, and
/// another client's trivial call beside them. The descents' outcomes: the error code and
/// the Z590's limit of each call, `None` for a test run.
fn descend_beside_a_neighbour(
    target: &Target,
    as_test_runs: bool,
) -> Vec<(Option<String>, Option<String>)> {
    let what = if as_test_runs { "test runs" } else { "calls" };
    let greedy: Vec<_> = (0..2)
        .map(|_| {
            let (orch, token) = (target.orch().to_owned(), target.admin.clone());
            std::thread::spawn(move || {
                let client = Client::new(
                    &orch,
                    Some(&token),
                    LOOP_DEADLINE + MARGIN + Duration::from_secs(5),
                );
                if as_test_runs {
                    let run = json!({"function": "Z10900", "testers": ["Z10902"]});
                    let answer = client.post("/v1/test", &run).expect("a test run's answer");
                    assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
                    return (None, None);
                }
                let call = json!({"Z1K1": "Z7", "Z7K1": "Z10900", "Z10900K1": "12345678"});
                let answer = client.evaluate(&call).expect("a descending call's answer");
                assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
                let z22 = answer.json();
                let limit = zeval_zobject::build::get_metadata(&z22["Z22K2"], "errors")
                    .and_then(|error| error["Z5K2"]["Z590K1"].as_str().map(str::to_owned));
                (super::error_code(&z22), limit)
            })
        })
        .collect();
    // The two descents take their workers within a few hundred milliseconds; wait until
    // every worker is busy, or long enough to be sure that they will not be.
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let busy = busy_workers(target);
        most = most.max(busy);
        if busy >= DESCENT_WORKERS {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "one client's two descending {what} held at most {most} of {DESCENT_WORKERS} workers"
    );
    let took = trivial_call(target, &format!("beside one client's descending {what}"));
    eprintln!("another client's call beside them: {took:?}");
    assert!(took <= NORMAL_CALL_LIMIT, "it took {took:?}");
    assert!(most <= 2 + 8, "{most} workers held by one client's {what}");
    greedy.into_iter().map(|g| g.join().unwrap()).collect()
}

/// One client's calls from code in progress are counted across its requests, test runs
/// included. Each is a guest waiting in a worker for the answer, so a client with two
/// requests (its limit here), each 8 calls deep (the depth limit), held 18 workers, and with
/// 12 in the pool and no reserve, everyone else's calls waited for one until their deadline
/// (Z558 "every executor was busy"). Now a client holds at most its requests' running
/// guests and 8 waiting ones (`limits.max_reentrant_calls_per_client`); its deeper calls get
/// the Z590 `client's calls from code`.
#[test]
fn one_clients_calls_from_code_cannot_hold_every_worker() {
    let _serial = one_at_a_time();
    let deadline = LOOP_DEADLINE.as_millis().to_string();
    let workers = DESCENT_WORKERS.to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_MAX_WORKERS", &workers),
        ("ZEVAL_WORKERS_RESERVE", "0"),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", "2"),
    ]);
    put_descending_function(&target);
    let outcomes = descend_beside_a_neighbour(&target, false);
    eprintln!("the descending calls ended with {outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            (Some(code), None) if code == "Z558" => {}
            (Some(code), Some(limit)) if code == "Z590" && limit == "client's calls from code" => {}
            other => panic!("a descending call ended with {other:?}"),
        }
    }
    assert!(
        outcomes.iter().any(|(_, limit)| limit.is_some()),
        "two calls 8 deep each got all their calls from code: {outcomes:?}"
    );
    // A test run's cells are the client's calls too.
    descend_beside_a_neighbour(&target, true);
    target.assert_survived();
}

/// The worker pool's status at the evaluator API's `/_info` of `target`.
fn worker_status(target: &Target) -> serde_json::Value {
    let evaluator = target.server.evaluator.as_deref().expect("evaluator API");
    crate::common::request("GET", &format!("{evaluator}/_info"), None, None).json()["workers"]
        .clone()
}

/// The count of busy workers of `target`.
fn busy_workers(target: &Target) -> usize {
    worker_status(target)["busy_pids"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Waits until `count` workers are busy.
fn until_busy(target: &Target, count: usize) {
    let started = Instant::now();
    while busy_workers(target) < count {
        assert!(
            started.elapsed() < LOOP_DEADLINE,
            "never {count} busy workers"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loop call by `token` (anonymous when `None`) on a thread: its error code and how long
/// it took.
fn loop_in_background(
    target: &Target,
    token: Option<&str>,
    zid: &str,
) -> std::thread::JoinHandle<(Option<String>, Duration)> {
    let (orch, token, call) = (
        target.orch().to_owned(),
        token.map(str::to_owned),
        busy_loop_call(zid),
    );
    std::thread::spawn(move || {
        let timed = timed_call(&orch, token.as_deref(), &call, LOOP_DEADLINE);
        let answer = timed.answer.expect("a loop's answer");
        assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
        (super::error_code(&answer.json()), timed.took)
    })
}

/// The status of a trivial call by `token`.
fn trivial_status(target: &Target, token: &str) -> u16 {
    let client = Client::new(target.orch(), Some(token), LOOP_DEADLINE + MARGIN);
    client
        .evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "x"}))
        .expect("an answer")
        .status
}

/// Clients within their per-client limits hold every work slot of the orchestrator API with
/// slow calls (here two clients, three calls, three slots; by default eight clients of eight
/// calls hold all 64). A client with nothing in flight still gets its call through, in the
/// reserve, with a deadline of a second; a client that holds a slot does not, nor anyone once
/// the reserve is full; a loop sent to the reserve ends at that second. Before the reserve,
/// every other client got 503.
#[test]
fn a_client_with_nothing_in_flight_gets_a_call_through_when_others_hold_every_slot() {
    let _serial = one_at_a_time();
    let deadline = LOOP_DEADLINE.as_millis().to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_MAX_CONCURRENT_REQUESTS", "3"),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", "2"),
        ("ZEVAL_RESERVE_REQUESTS", "1"),
    ]);
    let held = [
        loop_in_background(&target, Some(&target.admin), "Z10801"),
        loop_in_background(&target, Some(&target.admin), "Z10802"),
        loop_in_background(&target, Some(&target.editor), "Z10803"),
    ];
    until_busy(&target, 3);

    assert_eq!(
        trivial_status(&target, &target.editor),
        503,
        "a client holding a slot took the reserve"
    );
    let took = trivial_call(&target, "beside calls holding every slot");
    eprintln!("a call of a client with nothing in flight, every slot held: {took:?}");
    assert!(took <= NORMAL_CALL_LIMIT, "it took {took:?}");

    // An anonymous client's loop takes the one reserve slot, and holds it a second at most.
    let reserved = loop_in_background(&target, None, "Z10804");
    until_busy(&target, 4);
    assert_eq!(
        trivial_status(&target, &target.neighbour),
        503,
        "past the reserve"
    );
    let (code, took) = reserved.join().unwrap();
    assert_eq!(code.as_deref(), Some("Z558"));
    assert!(
        took <= Duration::from_millis(1_000) + MARGIN,
        "a loop in the reserve ran {took:?}"
    );
    trivial_call(&target, "once the reserve is free again");
    // The neighbour's two calls and the anonymous loop.
    assert_eq!(
        crate::common::metric(target.orch(), "zeval_requests_reserved_total"),
        3.0
    );
    for call in held {
        let (code, took) = call.join().unwrap();
        assert_eq!(code.as_deref(), Some("Z558"));
        assert!(
            took >= LOOP_DEADLINE - Duration::from_millis(500),
            "a call in a regular slot was cut: {took:?}"
        );
    }
    target.assert_survived();
}

/// A client that hangs up while its call runs still holds that call's slot until the call
/// ends. The slots used to be released with the request's future, which the server drops
/// when the connection closes, while the call went on in a blocking thread: a client that
/// sent a loop and hung up, over and over, had any number of loops running, past its
/// per-client limit (here 1) and the service's, each for its whole deadline.
#[test]
fn a_client_that_hangs_up_holds_its_slot_until_its_call_ends() {
    let _serial = one_at_a_time();
    let deadline = LOOP_DEADLINE.as_millis().to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", &deadline),
        ("ZEVAL_MAX_WORKERS", "4"),
        ("ZEVAL_WORKERS_RESERVE", "0"),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", "1"),
    ]);
    let address = target
        .orch()
        .strip_prefix("http://")
        .expect("an http address")
        .to_owned();
    let body = json!({"zobject": busy_loop_call("Z10901"), "doValidate": true}).to_string();
    let request = format!(
        "POST /wikifunctions.org/v1/evaluate/ HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        target.admin,
        body.len()
    );
    let started = Instant::now();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&address).expect("a connection");
        std::io::Write::write_all(&mut stream, request.as_bytes()).expect("the request sent");
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let busy = busy_workers(&target);
    assert!(
        started.elapsed() < LOOP_DEADLINE,
        "too slow to tell: the first loop may have ended"
    );
    assert_eq!(
        busy, 1,
        "four loops sent and abandoned by a client limited to one call at a time"
    );
    let next = trivial_status(&target, &target.admin);
    assert_eq!(
        next, 429,
        "the client's next call, while its abandoned loop runs"
    );
    target.assert_survived();
}

/// The callback route of nested calls (`POST /v1/reentry/{id}`) is open to anyone and takes
/// no work slot. It used to read the whole body (up to 8 MiB, with no time limit) before it
/// looked at the id and the secret, so anyone could hold connections there for as long as
/// they liked, sending nothing. A request for no registered call is now refused at once,
/// its body unread.
#[test]
fn the_callback_route_refuses_an_unknown_call_before_reading_its_body() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let address = target
        .orch()
        .strip_prefix("http://")
        .expect("an http address")
        .to_owned();
    let mut stream = TcpStream::connect(&address).expect("a connection");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let head = format!(
        "POST /v1/reentry/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: 8388608\r\n\r\n{{\"func"
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).expect("the head sent");
    let mut answer = [0u8; 64];
    let read = stream
        .read(&mut answer)
        .expect("an answer before the body was sent (none came within 5 s)");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    target.assert_survived();
}

/// A call that reaches its deadline having had less than a quarter of the CPU (a long call
/// runs at the lowest priority, and here sixteen busy threads per CPU hold the machine) is
/// the load's (`SandboxError::Starved`, counted as `starved`, never against the
/// implementation). A guest so
/// starved cannot even reach its epoch check: its worker is killed at the kill margin, and
/// until 2026-12-06 the pool answered that as the code's own timeout, which the ranking
/// counted against an implementation whose time limit is shorter than the request's, and
/// its testers recorded. Past the request's deadline the answer is the original's plain
/// Z558 either way.
#[test]
fn a_call_the_load_starved_is_the_loads() {
    let _serial = one_at_a_time();
    let deadline = Duration::from_millis(1_500);
    let deadline_ms = deadline.as_millis().to_string();
    let target = Target::start(&[("ZEVAL_CALL_TIMEOUT_MS", &deadline_ms)]);
    // Absent until the first one.
    let limit_hits = |kind: &str| {
        crate::common::metric_if_any(
            target.orch(),
            &format!("zeval_sandbox_limit_hits_total{{kind=\"{kind}\"}}"),
        )
        .unwrap_or(0.0)
    };

    // On an idle machine a plain timeout (the sandbox's own tests hold that apart from any
    // other load); here only counted, since other work on the machine may starve it too.
    let alone = timed_call(target.orch(), None, &busy_loop_call("Z10900"), DEADLINE);
    assert_eq!(assert_refused("a loop alone", &alone, deadline), "Z558");
    let starved_alone = limit_hits("starved");
    assert_eq!(limit_hits("timeout") + starved_alone, 1.0, "a loop alone");

    let contended = {
        let _contention = crate::busy_threads::BusyThreads::per_cpu(16);
        timed_call(target.orch(), None, &busy_loop_call("Z10901"), DEADLINE)
    };
    assert_eq!(
        assert_refused("a loop while the CPUs are held", &contended, deadline),
        "Z558"
    );
    assert_eq!(
        limit_hits("starved"),
        starved_alone + 1.0,
        "a loop while the CPUs are held was not counted as starved (timeouts: {})",
        limit_hits("timeout")
    );
    target.assert_survived();
}

/// A connection from `from` (a loopback address) to `to` with a `GET /healthz` answered on
/// it, kept open.
async fn healthy_connection_from(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    let mut stream = socket.connect(to).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    // The health answer is one small read: its status line is enough here.
    let mut answer = [0u8; 1024];
    let read = stream.read(&mut answer).await?;
    let status = String::from_utf8_lossy(&answer[..read]);
    if !status.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("answered {status:.80}")));
    }
    Ok(stream)
}

/// With the default limits (1,024 connections per listener, 256 per client), four addresses
/// holding 256 connections each, one request on each, took every connection, and any other
/// client waited in the kernel's accept queue for as long as they held them (one host of an
/// IPv6 /62 counts as four clients). At the cap, the client holding the most now gives a
/// connection it is not using way.
#[test]
fn four_clients_cannot_hold_every_connection() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let to: std::net::SocketAddr = target
        .orch()
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut held = Vec::new();
        for client in 2..=5u8 {
            for _ in 0..256 {
                let stream = healthy_connection_from([127, 0, 0, client].into(), to)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("connection {} of 127.0.0.{client}: {e}", held.len())
                    });
                held.push(stream);
            }
        }
        let started = Instant::now();
        let newcomer = tokio::time::timeout(
            Duration::from_secs(2),
            healthy_connection_from([127, 0, 0, 9].into(), to),
        )
        .await;
        assert!(
            matches!(newcomer, Ok(Ok(_))),
            "a fifth client beside 1,024 held connections: {newcomer:?} after {:?}",
            started.elapsed()
        );
        eprintln!(
            "a fifth client beside 1,024 held connections was served in {:?}",
            started.elapsed()
        );
        drop(held);
    });
    target.assert_survived();
}

/// The soft limit on open files is commonly 1,024, one listener's connections: at the cap
/// the server ran out of file descriptors, and every new file, socket and worker pipe failed,
/// before the connection limits applied. `zeval serve` raises it to what its limits need
/// (two listeners of 1,024 connections and 1,024 files besides), as far as the hard limit
/// allows.
#[test]
#[allow(unsafe_code)]
fn the_server_raises_its_open_files_limit_to_what_its_connections_need() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let data = tempfile::tempdir().unwrap();
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
        0
    );
    let hard = hard.rlim_max;
    let mut command = crate::common::serve_command("127.0.0.1:0", "127.0.0.1:0", data.path());
    command.stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        command.pre_exec(move || {
            let low = libc::rlimit {
                rlim_cur: 512,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &low) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start zeval serve");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains(" on http://"), "{first}");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let soft: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    let needed = (2 * 1024 + 1024).min(hard);
    assert!(soft >= needed, "the soft limit stayed {soft}: {line}");
}
