use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// Long enough that no call in these tests is taken back unless it is meant to be.
const PATIENT: Duration = Duration::from_secs(60);
/// The wait of the test that takes a call back: long enough that the call is surely queued
/// before the lane has been held that long, on a loaded machine too.
const SHORT: Duration = Duration::from_secs(1);

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

fn on_a_lane(name: &str) -> bool {
    name.starts_with("zeval-lane-")
}

/// Waits until no lane holds a call (a lane frees itself just after its call's answer is
/// sent); at most 10 s.
async fn until_free(lanes: &GuestLanes) {
    let by = Instant::now() + Duration::from_secs(10);
    while lanes.status().busy > 0 {
        assert!(Instant::now() < by, "a lane was not freed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn calls_run_on_the_lanes_one_after_another() {
    let lanes = GuestLanes::start(1, 2 << 20, PATIENT).unwrap();
    let mut names = Vec::new();
    for i in 0..20 {
        let (name, value) = lanes.run(move || (thread_name(), i * 2)).await.unwrap();
        assert_eq!(value, i * 2);
        names.push(name);
    }
    assert!(names.iter().all(|name| name == "zeval-lane-0"), "{names:?}");
    assert_eq!(lanes.status().queued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_queued_behind_a_long_one_is_taken_back_after_the_lane_wait() {
    let lanes = GuestLanes::start(1, 2 << 20, SHORT).unwrap();
    let (release, held) = mpsc::channel::<()>();
    let (started, lane_busy) = mpsc::channel::<()>();
    let long = tokio::spawn({
        let lanes = lanes.clone();
        async move {
            lanes
                .run(move || {
                    started.send(()).unwrap();
                    held.recv().unwrap();
                    thread_name()
                })
                .await
        }
    });
    lane_busy.recv().unwrap();
    // The lane was taken just now, so this call is queued behind the long one.
    let queued_at = Instant::now();
    let short = lanes.run(thread_name).await.unwrap();
    let waited = queued_at.elapsed();
    assert!(!on_a_lane(&short), "ran on {short}");
    assert!(waited >= SHORT, "taken back after {waited:?}");
    assert!(
        waited < Duration::from_secs(10),
        "taken back after {waited:?}"
    );
    let status = lanes.status();
    assert_eq!(status.busy, 1, "the long call holds the lane");
    assert_eq!(status.queued, 0, "the call taken back left the queue");
    assert_eq!((status.taken_back, status.skipped_held), (1, 0));

    // Now the lane has been held longer than the wait: a new call skips the queue.
    let skipped_at = Instant::now();
    let skipped = lanes.run(thread_name).await.unwrap();
    assert!(!on_a_lane(&skipped), "ran on {skipped}");
    assert!(
        skipped_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        skipped_at.elapsed()
    );
    let status = lanes.status();
    assert_eq!(status.queued, 0, "nothing was queued");
    assert_eq!((status.taken_back, status.skipped_held), (1, 1));

    release.send(()).unwrap();
    assert_eq!(long.await.unwrap().unwrap(), "zeval-lane-0");
    // The lane serves again, once it is free: its caller has the answer a moment before the
    // lane takes the next call (a call in that moment still finds it held, and skips it).
    until_free(&lanes).await;
    let after = lanes.run(thread_name).await.unwrap();
    assert_eq!(after, "zeval-lane-0");
    until_free(&lanes).await;
    assert_eq!(
        lanes.status(),
        LaneStatus {
            lanes: 1,
            busy: 0,
            queued: 0,
            skipped_held: 1,
            skipped_behind: 0,
            taken_back: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_call_that_panics_is_an_error_and_its_lane_goes_on() {
    let lanes = GuestLanes::start(1, 2 << 20, PATIENT).unwrap();
    let error = lanes
        .run(|| -> u32 { panic!("a guest call's host side failed") })
        .await
        .unwrap_err();
    assert!(error.contains("panicked"), "{error}");
    let name = lanes.run(thread_name).await.unwrap();
    assert_eq!(name, "zeval-lane-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_lanes_take_calls_at_once() {
    let lanes = GuestLanes::start(2, 2 << 20, PATIENT).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let lanes = lanes.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                lanes
                    .run(move || {
                        // Both calls must be running at once for either to get past this.
                        barrier.wait();
                        thread_name()
                    })
                    .await
            })
        })
        .collect();
    let mut names = Vec::new();
    for call in calls {
        names.push(call.await.unwrap().unwrap());
    }
    names.sort();
    assert_eq!(names, ["zeval-lane-0", "zeval-lane-1"]);
}

fn state(queued: usize, busy_since: Vec<Option<Instant>>, recent_call: Duration) -> State {
    State {
        queue: (0..queued)
            .map(|_| Arc::new(Job(Mutex::new(None))))
            .collect(),
        busy_since,
        asleep: 0,
        recent_call,
    }
}

#[test]
fn a_call_joins_the_queue_unless_the_lanes_are_held_or_behind() {
    let now = Instant::now();
    let wait = Duration::from_millis(1);
    let just_now = Some(now);
    let long_ago = Some(now - Duration::from_millis(5));
    let trivial = Duration::from_micros(60);
    let heavy = Duration::from_micros(170);
    // (calls queued, each lane's call since, the recent pace, what a new call does)
    let cases = [
        // An idle lane, or one that just took its call, with a short queue.
        (0, vec![None], heavy, None),
        (13, vec![just_now], trivial, None),
        // Every lane held longer than the wait: not even with nothing queued.
        (0, vec![long_ago], trivial, Some(Bypass::Held)),
        (0, vec![long_ago, long_ago], trivial, Some(Bypass::Held)),
        (0, vec![long_ago, just_now], trivial, None),
        // Heavy calls: four ahead are 680 µs of waiting, five are 850 µs, past SPILL_WAIT.
        (4, vec![just_now], heavy, None),
        (5, vec![just_now], heavy, Some(Bypass::Behind)),
        // Two lanes share what is queued.
        (9, vec![just_now, just_now], heavy, None),
        (10, vec![just_now, just_now], heavy, Some(Bypass::Behind)),
        // No call finished yet: nothing to pace by.
        (1000, vec![just_now], Duration::ZERO, None),
    ];
    for (queued, busy_since, pace, expected) in cases {
        let case = format!("{queued} queued, lanes {busy_since:?}, pace {pace:?}");
        assert_eq!(
            state(queued, busy_since, pace).bypass(now, wait),
            expected,
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_pace_is_the_recent_calls() {
    let lanes = GuestLanes::start(1, 2 << 20, PATIENT).unwrap();
    for _ in 0..8 {
        lanes
            .run(|| std::thread::sleep(Duration::from_millis(4)))
            .await
            .unwrap();
    }
    let pace = lanes.shared.lock().recent_call;
    // Each call weighs an eighth: after eight of 4 ms, from nothing, 1 - (7/8)^8 of 4 ms
    // (2.6 ms); 2.4 ms if the lane has not yet counted the last one.
    assert!(
        pace >= Duration::from_millis(2) && pace < Duration::from_millis(100),
        "{pace:?}"
    );
}
