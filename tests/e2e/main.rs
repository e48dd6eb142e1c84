//! End-to-end tests: `zeval serve` started as a real process (on free ports, with a temporary
//! data directory) and driven over HTTP. Code implementations need the guests built by
//! `guests/build.sh` (in `$ZEVAL_GUEST_DIR`, else `/var/cache/zeval/guests`).

mod access;
mod browser;
#[path = "../../crates/sandbox/tests/all/busy_threads.rs"]
mod busy_threads;
mod cluster;
mod common;
mod compiled;
mod corpus;
mod deploy;
mod guest_lanes;
mod hostile;
mod library;
mod many_evaluators;
mod metrics;
mod postgres;
mod python_stdlib_call;
mod ranking;
mod readme;
mod reentrant;
mod result_cache;
mod shared_limits;
mod shutdown;
mod two_processes;
mod workers;
