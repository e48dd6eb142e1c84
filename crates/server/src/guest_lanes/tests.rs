use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// Long enough that no call in these tests is taken back unless it is meant to be.
const PATIENT: Duration = Duration::from_secs(60);
/// The wait of the test that takes a call back.
const SHORT: Duration = Duration::from_millis(200);

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

fn on_a_lane(name: &str) -> bool {
    name.starts_with("zeval-lane-")
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
    assert_eq!(lanes.queued(), 0);
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
        waited < Duration::from_secs(2),
        "taken back after {waited:?}"
    );
    assert_eq!(
        lanes.queued(),
        1,
        "the taken-back call's empty entry is still queued"
    );

    // Now the lane has been held longer than the wait: a new call skips the queue.
    let skipped_at = Instant::now();
    let skipped = lanes.run(thread_name).await.unwrap();
    assert!(!on_a_lane(&skipped), "ran on {skipped}");
    assert!(
        skipped_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        skipped_at.elapsed()
    );
    assert_eq!(lanes.queued(), 1, "nothing more was queued");

    release.send(()).unwrap();
    assert_eq!(long.await.unwrap().unwrap(), "zeval-lane-0");
    // The lane passes over the empty entry and serves again.
    let after = lanes.run(thread_name).await.unwrap();
    assert_eq!(after, "zeval-lane-0");
    assert_eq!(lanes.queued(), 0);
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
