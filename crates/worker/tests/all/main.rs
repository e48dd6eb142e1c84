//! Integration tests of the worker pool against workers that misbehave on purpose: a stand-in
//! worker (a Python script, `hostile_worker.py`) that answers the handshake properly and then
//! does what a compromised worker could: announce a huge frame, trickle its answer, send
//! nonsense, or die. The parent must kill it, fail that call alone, and start a fresh worker.
//! (The real worker, confined, is tested end to end in the root package's `tests/e2e`.)

mod hostile_worker;

#[path = "../../../sandbox/tests/all/busy_threads.rs"]
mod busy_threads;
