//! Bounds on WASI preview 1 calls that wasmtime-wasi leaves to its host-call fuel: the
//! linker's `poll_oneoff` checks the number of subscriptions before wasmtime-wasi's runs.
//!
//! wasmtime-wasi bounds what one WASI call may read from guest memory only by the store's
//! host-call fuel (128 MiB by default). For `poll_oneoff` that is about 1.6 million
//! subscriptions (48 bytes each, 32 bytes of event each), for which it builds a pollable and a
//! table entry apiece: some 250 MiB of host structures, outside the guest's memory limit,
//! and a tenth of a second of host CPU that the wall-time deadline cannot interrupt. The host
//! fuel cannot simply be lowered for every call: it also bounds a single `fd_write`, and a
//! guest writing its answer in one large write would then fail with a confusing error
//! instead of meeting the output limit.

use wasmtime::{Caller, Linker};

use crate::guest::CallState;

/// Runs wasmtime-wasi's preview 1 call `$function` with `$argument`s on the memory of the
/// instance that `$caller` (a `Caller<'_, CallState>`) is calling from, as wiggle's generated
/// glue does for either kind of memory, under the store's host-call fuel; evaluates to the
/// call's `wasmtime::Result<i32>` (its errno). For host functions that check or take over
/// part of a call and leave the rest to wasmtime-wasi (here, and `crate::stdio`).
macro_rules! wasi_call {
    ($caller:ident, $function:ident($($argument:expr),*)) => {{
        use ::wasmtime::AsContextMut as _;
        use ::wasmtime_wasi::p1::wasi_snapshot_preview1::{self, WasiSnapshotPreview1 as _};
        let fuel = $caller.as_context_mut().hostcall_fuel();
        let export = $caller.get_export("memory");
        let (mut memory, wasi) = match &export {
            Some(::wasmtime::Extern::Memory(memory)) => {
                let (bytes, state) = memory.data_and_store_mut(&mut $caller);
                (::wiggle::GuestMemory::Unshared(bytes), state.wasi_mut())
            }
            Some(::wasmtime::Extern::SharedMemory(memory)) => (
                ::wiggle::GuestMemory::Shared(memory.data()),
                $caller.data_mut().wasi_mut(),
            ),
            _ => ::wasmtime::bail!("missing required memory export"),
        };
        wasi.set_hostcall_fuel(fuel);
        wasi_snapshot_preview1::$function(wasi, &mut memory, $($argument),*).await
    }};
}
pub(crate) use wasi_call;

/// The most subscriptions one `poll_oneoff` may wait on. A guest has stdin, stdout and
/// stderr and no other descriptor, so a real poll names a handful (`poll()` with its fds,
/// `select()`, a sleep's one clock); Linux refuses a `poll()` of more descriptors than
/// `RLIMIT_NOFILE` (1,024 by default) with `EINVAL` too.
pub(crate) const MAX_POLL_SUBSCRIPTIONS: u32 = 1024;

/// WASI preview 1's `errno::inval`.
const ERRNO_INVAL: i32 = 28;

/// Replaces wasmtime-wasi's `poll_oneoff` in `linker` (which must already hold it) with one
/// that answers `EINVAL`, touching nothing, past [`MAX_POLL_SUBSCRIPTIONS`], and otherwise runs
/// wasmtime-wasi's own implementation on the calling instance's memory, as its generated
/// glue does.
pub(crate) fn bound_poll_oneoff(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker
        .func_wrap_async(
            "wasi_snapshot_preview1",
            "poll_oneoff",
            |mut caller: Caller<'_, CallState>,
             (subscriptions, events, count, events_written): (i32, i32, i32, i32)| {
                Box::new(async move {
                    // The count is a wasm `u32` passed as `i32`.
                    if count as u32 > MAX_POLL_SUBSCRIPTIONS {
                        return Ok(ERRNO_INVAL);
                    }
                    caller.data_mut().start_sleeping();
                    let polled = wasi_call!(
                        caller,
                        poll_oneoff(subscriptions, events, count, events_written)
                    );
                    caller.data_mut().stop_sleeping();
                    polled
                })
            },
        )
        .map(|_| ());
    linker.allow_shadowing(false);
    defined
}
