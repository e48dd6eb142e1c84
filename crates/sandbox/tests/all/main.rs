//! Integration tests of the sandbox: limits and isolation with small WAT modules and with the
//! real QuickJS guest (built by `guests/build.sh` into `$ZEVAL_GUEST_DIR` or
//! `/var/cache/zeval/guests`).

mod blocking;
mod busy_threads;
mod cache;
mod common;
mod host_calls;
mod isolation;
mod memory;
mod modules;
mod output;
mod stack;
mod stdio;
mod swapped_pages;
mod time;
mod wasi;
