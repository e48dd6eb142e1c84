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
    Client, MARGIN, SlowConnections, Target, assert_refused, busy_loop_call, one_at_a_time, prefix,
    timed_call,
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
