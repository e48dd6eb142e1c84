//! The neighbour test: while one client attacks (busy loops up to its per-client limit, and
//! slow connections), a normal caller's p99 latency stays within twice its idle p99.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Client, MARGIN, SlowConnections, Target, busy_loop_call, one_at_a_time};

/// Calls measured per phase.
const CALLS: usize = 400;
/// Calls made (and not measured) before the idle phase, to warm the guest and the pools.
const WARM_UP: usize = 20;
/// The call deadline of this server (the busy loops end at it).
const DEADLINE: Duration = Duration::from_millis(3_000);
/// Greedy threads: each keeps one busy loop in flight, so the greedy client holds its
/// per-client limit and is refused beyond it.
const GREEDY_THREADS: usize = 12;
/// Slow connections held open during the loaded phase.
const SLOW_CONNECTIONS: usize = 70;
/// Rounds (idle, then under attack) before the test fails: one passing round suffices.
/// Kernel work outside the server (page writeback, the host's scheduling of this VM's
/// vCPUs) now and then delays a few percent of one phase's calls, which moves a p99 of a
/// few milliseconds past its bound once in about a dozen runs. A server without the
/// fairness measures misses the bound by 2.7-5.6 times in every round (measured with priority
/// lowering off: under attack p99 37-51 ms against an idle 3.5-5.9 ms).
const ROUNDS: usize = 3;
/// Added to twice the idle p99: absorbs timer and scheduler noise on figures of a few
/// milliseconds.
const NOISE_FLOOR: Duration = Duration::from_millis(2);

/// The p50 and p99 of `CALLS` trivial calls on one keep-alive connection.
fn measure(client: &Client) -> (Duration, Duration) {
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "neighbour"});
    let mut times: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let started = Instant::now();
            let answer = client.evaluate(&call).expect("the neighbour's call");
            let took = started.elapsed();
            assert_eq!(answer.status, 200, "{}", answer.text);
            assert_eq!(answer.json()["Z22K1"], "NEIGHBOUR", "{}", answer.text);
            took
        })
        .collect();
    times.sort();
    (times[CALLS / 2], times[CALLS * 99 / 100 - 1])
}

/// The figures of one round: idle, then under attack.
struct Round {
    idle_p50: Duration,
    idle_p99: Duration,
    loaded_p50: Duration,
    loaded_p99: Duration,
    busy_loops: usize,
    refused: usize,
}

impl Round {
    fn bound(&self) -> Duration {
        self.idle_p99 * 2 + NOISE_FLOOR
    }

    fn held(&self) -> bool {
        self.loaded_p99 <= self.bound()
    }
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "idle p50 {:?} p99 {:?}; under attack p50 {:?} p99 {:?} (bound {:?}; {} busy \
             loops ran, {} refused, {SLOW_CONNECTIONS} slow connections)",
            self.idle_p50,
            self.idle_p99,
            self.loaded_p50,
            self.loaded_p99,
            self.bound(),
            self.busy_loops,
            self.refused
        )
    }
}

/// Measures the neighbour idle, then while an anonymous client keeps busy loops in flight
/// and holds slow connections; returns when the attack has ended.
fn round(target: &Target, client: &Client) -> Round {
    let (idle_p50, idle_p99) = measure(client);
    let stop = Arc::new(AtomicBool::new(false));
    let greedy: Vec<_> = (0..GREEDY_THREADS)
        .map(|i| {
            let orch = target.orch().to_owned();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let attacker = Client::new(&orch, None, DEADLINE + MARGIN);
                let call = busy_loop_call(&format!("Z{}", 10_900 + i));
                let (mut running, mut refused) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    match attacker.evaluate(&call) {
                        Ok(a) if a.status == 429 || a.status == 503 => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => running += 1,
                    }
                }
                (running, refused)
            })
        })
        .collect();
    let slow = SlowConnections::open(target.orch(), SLOW_CONNECTIONS, Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(500));
    let (loaded_p50, loaded_p99) = measure(client);
    stop.store(true, Ordering::Relaxed);
    drop(slow);
    let (mut busy_loops, mut refused) = (0, 0);
    for thread in greedy {
        let (ran, refusals) = thread.join().unwrap();
        busy_loops += ran;
        refused += refusals;
    }
    Round {
        idle_p50,
        idle_p99,
        loaded_p50,
        loaded_p99,
        busy_loops,
        refused,
    }
}

#[test]
fn a_normal_callers_p99_stays_within_twice_idle_under_attack() {
    let _serial = one_at_a_time();
    let deadline = DEADLINE.as_millis().to_string();
    let target = Target::start(&[("ZEVAL_CALL_TIMEOUT_MS", &deadline)]);
    let client = Client::new(target.orch(), Some(&target.neighbour), DEADLINE + MARGIN);
    for _ in 0..WARM_UP {
        let _ = client.evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "warm"}));
    }
    let mut rounds = Vec::new();
    while rounds.len() < ROUNDS {
        let round = round(&target, &client);
        eprintln!("neighbour, round {}: {round}", rounds.len() + 1);
        let held = round.held();
        rounds.push(round);
        if held {
            break;
        }
    }
    let report: Vec<String> = rounds.iter().map(ToString::to_string).collect();
    assert!(
        rounds.last().is_some_and(Round::held),
        "the neighbour's p99 under attack exceeded 2 × idle + {NOISE_FLOOR:?} in all \
         {ROUNDS} rounds:\n{}",
        report.join("\n")
    );
    target.assert_survived();
}
