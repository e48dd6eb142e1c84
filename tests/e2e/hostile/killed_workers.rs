//! A call whose worker is killed at its deadline is answered then, even while other work
//! keeps every CPU busy.
//!
//! A guest that runs long is lowered to `SCHED_IDLE`, and a killed process still has to run
//! to exit. The pool used to wait for that exit on the call's own thread: with normal threads
//! keeping both CPUs busy, calls with a 2 s deadline were answered after 6–24 s (measured
//! 2026-12-04 with four busy loops; the hostile corpus hit it under CI load, 5.4–9.6 s). The
//! kill now gives the worker its priority back, and the call waits at most 100 ms for the
//! exit before leaving it to a reaping thread (`zeval_worker::pool::reap`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{
    MARGIN, RUST, Target, assert_refused, call_of, code_function, one_at_a_time, timed_call,
};

/// The call deadline of this server.
const DEADLINE: Duration = Duration::from_millis(2_000);
/// Calls in flight at once, each in a worker of its own.
const CALLS: usize = 6;
/// Rounds of calls.
const ROUNDS: usize = 3;
/// Rounds that may have a late call. One: once in 8 runs beside the corpus, compiled and
/// deadline tests (never in 12 runs alone), one call of a round had no answer after 9 s; by
/// the server's log its worker was killed 2 s after the call reached the pool, about 7 s
/// after it was sent, so the delay came before orchestration, not from the kill this test is
/// about. That delay is not explained yet. Without the change under test every round had
/// late calls (6.2–8.7 s, or no answer within 9 s, in two runs).
const TOLERATED_LATE_ROUNDS: usize = 1;

/// A compiled function that answers at once, unless asked to spin forever.
const SPINNER: &str = r#"
fn Z10700(Z10700K1: &str) -> String {
    if Z10700K1 != "spin" {
        return Z10700K1.to_owned();
    }
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter + 1);
        if counter == 0 {
            return String::new();
        }
    }
}
"#;

fn call(argument: &str) -> serde_json::Value {
    call_of(
        code_function("Z10700", json!("Z6"), "Z6", RUST, SPINNER),
        "Z10700",
        json!(argument),
    )
}

#[test]
fn calls_whose_workers_are_killed_are_answered_by_their_deadline_on_busy_cpus() {
    let _serial = one_at_a_time();
    let deadline = DEADLINE.as_millis().to_string();
    let target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", deadline.as_str()),
        ("ZEVAL_CALLS", "open"),
    ]);
    let orch = target.orch().to_owned();
    let hogs = std::thread::available_parallelism().map_or(2, usize::from) * 2;
    let mut late_rounds = Vec::new();
    for round in 1..=ROUNDS {
        // Compiled (the first time) and run in CALLS workers, so that the spinning calls
        // below find their workers started.
        std::thread::scope(|scope| {
            for _ in 0..CALLS {
                scope.spawn(|| {
                    // A first call may find the compiler busy past its deadline: try again.
                    let mut last = String::new();
                    for _ in 0..5 {
                        let timed = timed_call(&orch, None, &call("warm"), DEADLINE);
                        match timed.answer {
                            Ok(answer) if answer.json()["Z22K1"] == "warm" => return,
                            Ok(answer) => last = answer.text,
                            Err(error) => last = error,
                        }
                    }
                    panic!("a warm-up call never answered: {last}");
                });
            }
        });
        let stop = AtomicBool::new(false);
        let took = std::thread::scope(|scope| {
            for _ in 0..hogs {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
            }
            let calls: Vec<_> = (0..CALLS)
                .map(|_| scope.spawn(|| timed_call(&orch, None, &call("spin"), DEADLINE)))
                .collect();
            let timed: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            timed
        });
        let mut times = Vec::new();
        let mut late = Vec::new();
        for timed in &took {
            match &timed.answer {
                Ok(_) if timed.took <= DEADLINE + MARGIN => {
                    let code = assert_refused(
                        &format!("round {round}: a spinning compiled call on busy CPUs"),
                        timed,
                        DEADLINE,
                    );
                    times.push(format!("{code} {:?}", timed.took));
                }
                Ok(_) => late.push(format!("answered after {:?}", timed.took)),
                Err(error) => late.push(format!("no answer after {:?}: {error}", timed.took)),
            }
        }
        eprintln!(
            "killed workers, round {round}: {}; late: {late:?}",
            times.join(", ")
        );
        if !late.is_empty() {
            late_rounds.push(format!("round {round}: {}", late.join("; ")));
        }
    }
    assert!(
        late_rounds.len() <= TOLERATED_LATE_ROUNDS,
        "calls answered past the deadline {DEADLINE:?} + {MARGIN:?} in {} of {ROUNDS} rounds: {late_rounds:?}",
        late_rounds.len()
    );
    target.assert_survived();
}
