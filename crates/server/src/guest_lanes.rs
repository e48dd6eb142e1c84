//! Guest lanes: a few long-lived threads that run the evaluator API's in-process guest calls
//! from one queue, one call after another.
//!
//! Without them each call went to tokio's blocking pool, which hands every new task to an
//! idle thread: under load every call woke a sleeping thread, and that thread slept again
//! after it, both on this 2-core VM a context switch of its own (a futex round trip between
//! two vCPUs costs about 16 µs of CPU here). A lane that finds the next call already queued
//! runs it without sleeping, so under load the calls pass from the async thread to a lane
//! with no wake-up at all. With one lane and one async thread on 2 cores, trivial JS calls
//! over HTTP went from 12,100–12,300 to 15,400–17,000 calls/s (docs/benchmarks.md, "Guest
//! lanes", 2026-12-07).
//!
//! Limits and fairness:
//! - a call waits in the queue at most [`LANE_WAIT`]; still waiting then, it is taken back
//!   and run on tokio's blocking pool as before, so a long call in a lane holds up the calls
//!   behind it by that much at most, not by its own length;
//! - while every lane has been on its current call for longer than [`LANE_WAIT`], new calls
//!   skip the queue and go to the blocking pool at once, and so does a call that would wait
//!   longer than [`SPILL_WAIT`] at the pace of the recent calls (the lanes fall behind: the
//!   calls are heavy, and a CPU the lanes leave idle can take it);
//! - the queue holds at most one entry per request in flight, and those are bounded by the
//!   evaluator API's work slots (`limits.evaluator_max_concurrent_requests`);
//! - a call that panics is logged, and its lane goes on with the next;
//! - a call from code (`W.Call`) that comes back to this node as a new request while its
//!   caller holds a lane is a call like any other: it waits at most [`LANE_WAIT`].

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a call may wait in the queue before it is run on tokio's blocking pool instead,
/// as `zeval serve` starts the lanes. About twenty trivial calls' time: under steady load the
/// queue is never this long, while a call queued behind a long one is not held for long.
pub const LANE_WAIT: Duration = Duration::from_millis(1);

/// The longest a new call is expected to wait in the queue, at the pace of the lanes' recent
/// calls, for it to be queued at all (see the module documentation). Measured with wrk and 8
/// connections on 2 CPUs (docs/benchmarks.md, "Guest lanes"): trivial JS calls (about 60 µs
/// on a lane) never reach it and keep to the lane, trivial Python calls (about 170 µs) pass it
/// at five queued and use the second CPU: 8,400–9,100 calls/s against 6,000–6,600 with no
/// such bound, and 6,500–6,700 at 1 ms.
pub const SPILL_WAIT: Duration = Duration::from_micros(800);

type Work = Box<dyn FnOnce() + Send>;

/// A queued call, run by whichever takes it first: a lane, or its caller once
/// [`LANE_WAIT`] has passed.
struct Job(Mutex<Option<Work>>);

impl Job {
    fn take(&self) -> Option<Work> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The queue and what each lane is doing.
struct State {
    queue: VecDeque<Arc<Job>>,
    /// When each lane took its current call (`None`: between calls or asleep).
    busy_since: Vec<Option<Instant>>,
    /// Lanes asleep, waiting for a call.
    asleep: usize,
    /// How long the lanes' recent calls took, on average (each call weighs an eighth).
    recent_call: Duration,
}

/// Why a call ran on a blocking thread of its own instead of a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bypass {
    /// Every lane had held its call longer than the wait.
    Held,
    /// The calls queued ahead of it would have made it wait longer than [`SPILL_WAIT`].
    Behind,
    /// It waited in the queue as long as it may, and was taken back.
    Waited,
}

impl State {
    /// Why a new call should not join the queue, if it should not: while every lane has held
    /// its call longer than `wait` (the queue would only make the call wait that long), or
    /// while the calls queued ahead of it would take its lane longer than [`SPILL_WAIT`] at
    /// the pace of the recent calls (the lanes fall behind; a thread of its own runs it now,
    /// on a CPU the lanes leave idle).
    fn bypass(&self, now: Instant, wait: Duration) -> Option<Bypass> {
        let all_held = self
            .busy_since
            .iter()
            .all(|since| since.is_some_and(|since| now.saturating_duration_since(since) > wait));
        if all_held {
            return Some(Bypass::Held);
        }
        let ahead_per_lane = self.queue.len() / self.busy_since.len().max(1);
        let expected_wait = self
            .recent_call
            .saturating_mul(u32::try_from(ahead_per_lane).unwrap_or(u32::MAX));
        (expected_wait > SPILL_WAIT).then_some(Bypass::Behind)
    }
}

/// What the lanes have done, for `GET /_info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LaneStatus {
    /// Lane threads.
    pub lanes: usize,
    /// Lanes running a call now (until the call's answer is sent and its instance reset).
    pub busy: usize,
    /// Calls waiting in the queue now.
    pub queued: usize,
    /// Calls that skipped the queue because every lane held a call longer than the wait.
    pub skipped_held: u64,
    /// Calls that skipped the queue because the lanes had fallen behind.
    pub skipped_behind: u64,
    /// Calls taken back from the queue after waiting as long as they may.
    pub taken_back: u64,
}

struct Shared {
    state: Mutex<State>,
    work_queued: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lanes of one evaluator API (see the module documentation).
pub struct GuestLanes {
    shared: Arc<Shared>,
    /// Calls run on a blocking thread instead, by [`Bypass`] in its order.
    bypassed: [AtomicU64; 3],
    /// The longest a call waits in the queue ([`LANE_WAIT`] in `zeval serve`).
    wait: Duration,
}

impl GuestLanes {
    /// Starts `lanes` threads (at least one), each with a stack of `stack_bytes` (as tokio's
    /// threads get `limits.worker_stack_bytes`: the host's side of a call recurses on it),
    /// whose calls wait in the queue at most `wait`. They live as long as the process.
    pub fn start(lanes: usize, stack_bytes: usize, wait: Duration) -> std::io::Result<Arc<Self>> {
        let lanes = lanes.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                busy_since: vec![None; lanes],
                asleep: 0,
                recent_call: Duration::ZERO,
            }),
            work_queued: Condvar::new(),
        });
        for lane in 0..lanes {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("zeval-lane-{lane}"))
                .stack_size(stack_bytes)
                .spawn(move || serve_lane(&shared, lane))?;
        }
        Ok(Arc::new(GuestLanes {
            shared,
            bypassed: Default::default(),
            wait,
        }))
    }

    /// Runs `work` on a lane, or on tokio's blocking pool (see the module documentation),
    /// and returns its value as soon as it is ready: the reset of the guest instance it ran
    /// is done after the value is sent (`zeval_evaluator::answer_first`), as on tokio's
    /// blocking threads. The error says the call panicked (logged where it did).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (sender, mut answer) = tokio::sync::oneshot::channel();
        let call: Work = Box::new(move || crate::evaluator_api::send_then_reset(work, sender));
        let job = Arc::new(Job(Mutex::new(Some(call))));
        if let Err(bypass) = self.queue(&job) {
            self.count(bypass);
            run_on_blocking_pool(&job);
        } else if let Ok(answer) = tokio::time::timeout(self.wait, &mut answer).await {
            return answer.map_err(|_| PANICKED.to_owned());
        } else {
            self.unqueue(&job);
            if run_on_blocking_pool(&job) {
                self.count(Bypass::Waited);
            }
        }
        answer.await.map_err(|_| PANICKED.to_owned())
    }

    /// Queues `job` unless the lanes cannot take it now ([`State::bypass`]).
    fn queue(&self, job: &Arc<Job>) -> Result<(), Bypass> {
        let mut state = self.shared.lock();
        if let Some(bypass) = state.bypass(Instant::now(), self.wait) {
            return Err(bypass);
        }
        state.queue.push_back(job.clone());
        let wake = state.asleep > 0;
        drop(state);
        if wake {
            self.shared.work_queued.notify_one();
        }
        Ok(())
    }

    fn count(&self, bypass: Bypass) {
        self.bypassed[bypass as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// What the lanes have done so far.
    pub fn status(&self) -> LaneStatus {
        let state = self.shared.lock();
        let bypassed = |bypass: Bypass| self.bypassed[bypass as usize].load(Ordering::Relaxed);
        LaneStatus {
            lanes: state.busy_since.len(),
            busy: state.busy_since.iter().flatten().count(),
            queued: state.queue.len(),
            skipped_held: bypassed(Bypass::Held),
            skipped_behind: bypassed(Bypass::Behind),
            taken_back: bypassed(Bypass::Waited),
        }
    }

    /// Takes `job` out of the queue (a lane may have taken it meanwhile), so that the queue
    /// counts only calls still waiting.
    fn unqueue(&self, job: &Arc<Job>) {
        self.shared
            .lock()
            .queue
            .retain(|queued| !Arc::ptr_eq(queued, job));
    }
}

const PANICKED: &str = "the call ended without an answer (it panicked; see the log)";

/// Runs `job` on tokio's blocking pool, unless a lane has taken it meanwhile (false then).
fn run_on_blocking_pool(job: &Job) -> bool {
    let Some(work) = job.take() else {
        return false;
    };
    tokio::task::spawn_blocking(move || run_logging_panics(work));
    true
}

fn run_logging_panics(work: Work) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(work)) {
        let message = crate::blocking::panic_message(panic.as_ref());
        tracing::error!(%message, "a guest call panicked");
    }
}

/// A lane's life: take the next call, run it, and sleep only when the queue is empty.
fn serve_lane(shared: &Shared, lane: usize) {
    let mut last_call: Option<Duration> = None;
    let mut state = shared.lock();
    loop {
        state.busy_since[lane] = None;
        if let Some(took) = last_call.take() {
            state.recent_call = state.recent_call.saturating_mul(7).saturating_add(took) / 8;
        }
        let Some(job) = state.queue.pop_front() else {
            state.asleep += 1;
            state = shared
                .work_queued
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.asleep -= 1;
            continue;
        };
        let started = Instant::now();
        state.busy_since[lane] = Some(started);
        drop(state);
        // Empty when its caller took it back.
        if let Some(work) = job.take() {
            run_logging_panics(work);
            last_call = Some(started.elapsed());
        }
        state = shared.lock();
    }
}

#[cfg(test)]
mod tests;
