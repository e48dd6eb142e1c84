//! Calls from a guest back to its host (reentrant calls): the `zeval` import module.
//!
//! A guest that wants the host to do something for it (the evaluator's `W.Call`: run another
//! function) imports two functions:
//!
//! - `zeval.call(request_ptr: i32, request_len: i32) -> i32` hands the host `request_len`
//!   bytes of its memory and waits for the answer. It returns the answer's length in bytes,
//!   or `-1` when this call has no host to call ([`Guest::run`](crate::Guest::run) without a
//!   handler: the guest then fails as a non-reentrant executor does), or `-2` when the
//!   request is larger than [`Limits::max_input_bytes`](crate::Limits::max_input_bytes).
//! - `zeval.answer(ptr: i32, len: i32) -> i32` copies the last answer into the guest's
//!   memory (at most `len` bytes) and returns how many bytes it copied.
//!
//! The bytes mean nothing to the sandbox; the handler ([`HostCalls`]) gives them a meaning.
//!
//! # How the guest waits
//! `zeval.call` is an async host function: it parks the request in the call's `Exchange`
//! and returns `Pending`, which suspends the guest's fiber. The driver of the call
//! ([`crate::Guest::run_with`]) sees the parked request, leaves its executor, and runs the
//! handler on the calling thread's own stack, outside any fiber and any async runtime. So
//! the handler may run other guests (a nested call runs its own guest the same way), and
//! state that cannot leave the thread (the orchestrator's request) stays on it. Then the
//! driver puts the answer in the exchange and resumes the guest.
//!
//! # Limits while the guest waits
//! - wall time: the call's deadline still runs. The handler is given it, and a call whose
//!   deadline passed while it waited ends as [`crate::SandboxError::Timeout`] when resumed;
//! - fuel: a waiting guest runs no wasm, so burns none;
//! - CPU time: the handler's CPU time is not counted in [`crate::RunOutput::cpu_time`];
//! - the pool slot: a waiting guest keeps its slot. A nested call of the same guest needs
//!   another slot, which it waits for until its own deadline at most; callers bound how
//!   deep calls nest well below the slot count (the orchestrator's reentrant depth limit).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::{Caller, Extern, Linker};

use crate::guest::CallState;

/// The import module's name.
pub const HOST_MODULE: &str = "zeval";

/// What `zeval.call` returns when the call has no handler.
pub const NO_HOST: i32 = -1;

/// What `zeval.call` returns when the request is over [`crate::Limits::max_input_bytes`].
pub const REQUEST_TOO_LARGE: i32 = -2;

/// The host side of a call's `zeval.call`: given the guest's request bytes and the call's
/// deadline, the answer bytes. Runs on the thread that called
/// [`crate::Guest::run_with`], between two steps of the guest.
pub trait HostCalls {
    /// Answers one request. The answer is copied into the guest, so it should stay within
    /// what the guest may be given ([`crate::Limits::max_input_bytes`]); a longer answer is
    /// replaced by an empty one, which the guest reports as a protocol failure.
    fn call(&mut self, request: &[u8], deadline: Instant) -> Vec<u8>;
}

impl<F: FnMut(&[u8], Instant) -> Vec<u8>> HostCalls for F {
    fn call(&mut self, request: &[u8], deadline: Instant) -> Vec<u8> {
        self(request, deadline)
    }
}

/// The request a guest parked and the answer it waits for, shared between the host
/// function's future (inside the guest's fiber) and the driver (outside it).
#[derive(Default)]
pub(crate) struct Exchange {
    /// Parked by `zeval.call`, taken by the driver.
    request: Option<Vec<u8>>,
    /// Put by the driver, taken by `zeval.call`'s future.
    answer: Option<Vec<u8>>,
}

/// The exchange of one call (`None`: the call has no handler).
pub(crate) type SharedExchange = Option<Arc<Mutex<Exchange>>>;

pub(crate) fn lock(exchange: &Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    exchange.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the request the guest parked, if any.
pub(crate) fn take_request(exchange: &Mutex<Exchange>) -> Option<Vec<u8>> {
    lock(exchange).request.take()
}

/// Hands the guest its answer; it is read when the guest resumes.
pub(crate) fn put_answer(exchange: &Mutex<Exchange>, answer: Vec<u8>) {
    lock(exchange).answer = Some(answer);
}

/// Defines `zeval.call` and `zeval.answer` for the guests of the sandbox.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        HOST_MODULE,
        "call",
        |mut caller: Caller<'_, CallState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                let Some(exchange) = caller.data().host_exchange() else {
                    return Ok(NO_HOST);
                };
                let limit = caller.data().max_host_request_bytes();
                let Ok(len) = usize::try_from(len) else {
                    return Ok(REQUEST_TOO_LARGE);
                };
                if len > limit {
                    return Ok(REQUEST_TOO_LARGE);
                }
                let request = read_guest(&mut caller, ptr, len)?;
                {
                    let mut parked = lock(&exchange);
                    parked.answer = None;
                    parked.request = Some(request);
                }
                let answer = WaitForAnswer(&exchange).await;
                // The guest may only be given what its input limit allows.
                let answer = if answer.len() > limit {
                    Vec::new()
                } else {
                    answer
                };
                let answer_len = i32::try_from(answer.len()).unwrap_or(0);
                caller.data_mut().set_host_answer(answer);
                Ok(answer_len)
            })
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "answer",
        |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let answer = caller.data_mut().take_host_answer();
            let len = usize::try_from(len).unwrap_or(0).min(answer.len());
            write_guest(&mut caller, ptr, &answer[..len])?;
            Ok(i32::try_from(len).unwrap_or(0))
        },
    )?;
    Ok(())
}

/// The same imports for a linker whose calls never have a host to call (the snapshot step):
/// `zeval.call` answers [`NO_HOST`], `zeval.answer` copies nothing.
pub fn add_unavailable_to_linker<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(HOST_MODULE, "call", |_: i32, _: i32| NO_HOST)?;
    linker.func_wrap(HOST_MODULE, "answer", |_: i32, _: i32| 0i32)?;
    Ok(())
}

/// Resolves once the driver has put the answer; pending until then (the driver re-polls the
/// call after putting it, so no waker is needed).
struct WaitForAnswer<'a>(&'a Mutex<Exchange>);

impl std::future::Future for WaitForAnswer<'_> {
    type Output = Vec<u8>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Vec<u8>> {
        match lock(self.0).answer.take() {
            Some(answer) => std::task::Poll::Ready(answer),
            None => std::task::Poll::Pending,
        }
    }
}

fn memory(caller: &mut Caller<'_, CallState>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::Error::msg(
            "zeval.call: the guest exports no memory",
        )),
    }
}

fn read_guest(
    caller: &mut Caller<'_, CallState>,
    ptr: i32,
    len: usize,
) -> wasmtime::Result<Vec<u8>> {
    let memory = memory(caller)?;
    let start = u32::try_from(ptr).map_err(|_| wasmtime::Error::msg("zeval.call: bad pointer"))?;
    let mut bytes = vec![0; len];
    memory
        .read(&*caller, start as usize, &mut bytes)
        .map_err(|_| {
            wasmtime::Error::msg("zeval.call: the request is outside the guest's memory")
        })?;
    Ok(bytes)
}

fn write_guest(caller: &mut Caller<'_, CallState>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let memory = memory(caller)?;
    let start =
        u32::try_from(ptr).map_err(|_| wasmtime::Error::msg("zeval.answer: bad pointer"))?;
    memory
        .write(&mut *caller, start as usize, bytes)
        .map_err(|_| wasmtime::Error::msg("zeval.answer: the buffer is outside the guest's memory"))
}
