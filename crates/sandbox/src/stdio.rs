//! The guest's standard input and output, read and written without wasmtime-wasi's preview 1
//! adapter: `fd_read` of descriptor 0 and `fd_write` of descriptors 1 and 2, the WASI calls
//! every guest call makes (a trivial JavaScript call makes three WASI calls, and these are
//! all three).
//!
//! wasmtime-wasi serves preview 1 through its preview 2 streams. The first descriptor call of
//! an instance builds the adapter's descriptor table (a resource-table entry for each of the
//! three streams), and every call then opens a transaction on that table, looks the stream
//! up, enters a tracing span, and copies the bytes through a buffer of its own. Under wrk,
//! that was 5 % of a guest lane's time for a trivial JavaScript call (docs/benchmarks.md,
//! "Standard input and output without the preview 1 adapter"). Here the same pipes are read
//! and written directly, with wasmtime-wasi's results, its quirks included:
//! - a read fills the first non-empty iovec only (as much of it as input is left), and reads
//!   0 bytes at the end of the input; with no non-empty iovec it answers `EINTR` while input
//!   is left, and 0 bytes after (wasmtime-wasi's blocking read of 0 bytes);
//! - a write takes the first non-empty ciovec whole, and past the output limit traps, keeping
//!   what fitted, as [`CappedPipe`] does under wasmtime-wasi;
//! - an iovec array or a result pointer out of bounds or misaligned traps, and so does a
//!   write's buffer out of bounds, or the part of a read's buffer that the read fills (the
//!   witx rule wiggle follows: a pointer the host must dereference and cannot traps);
//! - the host-call fuel bounds the work as wasmtime-wasi's does: the iovec array (8 bytes an
//!   entry), then the chosen buffer, must fit in the store's host-call fuel (128 MiB by
//!   default), else `ENOMEM`. That bounds the entries a call may walk looking for a
//!   non-empty one.
//!
//! Once the guest closes or renumbers one of the three descriptors (`fd_close` and
//! `fd_renumber` note it, then run wasmtime-wasi's), these calls go to wasmtime-wasi for the rest of
//! the call, whose table then says what each number is. The input pipe is shared with it, so
//! what was read stays read. Every other descriptor is wasmtime-wasi's from the start (a
//! guest has no other, and gets `EBADF` from it). The integration tests (`tests/all/stdio.rs`)
//! run each case both ways and compare.

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p2::InputStream as _;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use crate::guest::CallState;
use crate::output::CappedPipe;
use crate::wasi_bounds::wasi_call;

/// WASI preview 1's `errno::intr`.
const ERRNO_INTR: i32 = 27;
/// WASI preview 1's `errno::nomem`.
const ERRNO_NOMEM: i32 = 48;
/// The size of an `iovec` or `ciovec` (a `u32` pointer and a `u32` length).
const IOVEC_BYTES: usize = 8;

/// The three descriptors a call starts with, while they are still what they were.
pub(crate) struct Stdio {
    stdin: MemoryInputPipe,
    stdout: CappedPipe,
    stderr: CappedPipe,
    /// The guest closed or renumbered one of the three: wasmtime-wasi serves them from then on.
    moved: bool,
}

impl Stdio {
    /// The pipes given to wasmtime-wasi as the call's stdin, stdout and stderr (clones that
    /// share their buffers).
    pub(crate) fn new(stdin: MemoryInputPipe, stdout: CappedPipe, stderr: CappedPipe) -> Self {
        Self {
            stdin,
            stdout,
            stderr,
            moved: false,
        }
    }
}

/// Why a call traps: as wiggle says it of a bad pointer.
#[derive(Debug, thiserror::Error)]
#[error("pointer out of bounds or misaligned in {0}")]
struct BadPointer(&'static str);

/// Replaces wasmtime-wasi's `fd_read`, `fd_write`, `fd_close` and `fd_renumber` in `linker`
/// (which must already hold them) with the ones described in the module documentation.
pub(crate) fn serve_stdio_directly(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = define(linker);
    linker.allow_shadowing(false);
    defined
}

fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    const MODULE: &str = "wasi_snapshot_preview1";
    linker.func_wrap_async(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, CallState>, (fd, iovs, iovs_len, nread): (i32, i32, i32, i32)| {
            Box::new(async move {
                if fd == 0
                    && !caller.data().stdio.moved
                    && let Some(Extern::Memory(memory)) = caller.get_export("memory")
                {
                    let fuel = caller.as_context_mut().hostcall_fuel();
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    let stdin = &mut state.stdio.stdin;
                    return read_stdin(bytes, stdin, fuel, iovs, iovs_len, nread);
                }
                wasi_call!(caller, fd_read(fd, iovs, iovs_len, nread))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, CallState>,
         (fd, ciovs, ciovs_len, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                if matches!(fd, 1 | 2)
                    && !caller.data().stdio.moved
                    && let Some(Extern::Memory(memory)) = caller.get_export("memory")
                {
                    let fuel = caller.as_context_mut().hostcall_fuel();
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    let stdio = &state.stdio;
                    let output = if fd == 1 {
                        &stdio.stdout
                    } else {
                        &stdio.stderr
                    };
                    return write_output(bytes, output, fuel, ciovs, ciovs_len, nwritten);
                }
                wasi_call!(caller, fd_write(fd, ciovs, ciovs_len, nwritten))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, CallState>, (fd,): (i32,)| {
            Box::new(async move {
                moving(&mut caller, &[fd]);
                wasi_call!(caller, fd_close(fd))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, CallState>, (from, to): (i32, i32)| {
            Box::new(async move {
                moving(&mut caller, &[from, to]);
                wasi_call!(caller, fd_renumber(from, to))
            })
        },
    )?;
    Ok(())
}

/// Notes that a call on `fds` may change what the three standard descriptors are. Noted
/// before the call, whatever its outcome: after a failed one, wasmtime-wasi answers as it
/// would have, only more slowly.
fn moving(caller: &mut Caller<'_, CallState>, fds: &[i32]) {
    if fds.iter().any(|fd| (0..=2).contains(fd)) {
        caller.data_mut().stdio.moved = true;
    }
}

/// `fd_read` of the call's input into `memory` (see the module documentation).
fn read_stdin(
    memory: &mut [u8],
    stdin: &mut MemoryInputPipe,
    fuel: usize,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    let (buffer, length) = match first_non_empty(memory, fuel, iovs, iovs_len, "fd_read")? {
        Ok(found) => found,
        Err(errno) => return Ok(errno),
    };
    let read = match stdin.read(length) {
        Ok(read) if read.is_empty() => return Ok(ERRNO_INTR),
        Ok(read) => read,
        // The only error a memory pipe gives: its end.
        Err(_) => Default::default(),
    };
    let target = memory
        .get_mut(buffer..)
        .and_then(|rest| rest.get_mut(..read.len()))
        .ok_or(BadPointer("fd_read"))?;
    target.copy_from_slice(&read);
    store_u32(memory, nread, read.len(), "fd_read")?;
    Ok(0)
}

/// `fd_write` of `memory`'s bytes to `output` (see the module documentation).
fn write_output(
    memory: &mut [u8],
    output: &CappedPipe,
    fuel: usize,
    ciovs: i32,
    ciovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    let (buffer, length) = match first_non_empty(memory, fuel, ciovs, ciovs_len, "fd_write")? {
        Ok(found) => found,
        Err(errno) => return Ok(errno),
    };
    let bytes = memory
        .get(buffer..)
        .and_then(|rest| rest.get(..length))
        .ok_or(BadPointer("fd_write"))?;
    output.append(bytes).map_err(wasmtime::Error::new)?;
    store_u32(memory, nwritten, length, "fd_write")?;
    Ok(0)
}

/// The first iovec of the array at `iovs` with a non-zero length, as (address, length), or
/// (0, 0) when there is none; `Err(errno)` when the host-call fuel does not cover the array or
/// the buffer, as wasmtime-wasi's `first_non_empty_iovec` does.
fn first_non_empty(
    memory: &[u8],
    fuel: usize,
    iovs: i32,
    iovs_len: i32,
    call: &'static str,
) -> wasmtime::Result<Result<(usize, usize), i32>> {
    // Wasm's `u32`s, passed as `i32`.
    let (iovs, count) = (iovs as u32 as usize, iovs_len as u32 as usize);
    let Some(fuel) = fuel.checked_sub(count.saturating_mul(IOVEC_BYTES)) else {
        return Ok(Err(ERRNO_NOMEM));
    };
    for index in 0..count {
        let at = iovs + index * IOVEC_BYTES;
        let buffer = load_u32(memory, at, call)?;
        let length = load_u32(memory, at + 4, call)?;
        if length == 0 {
            continue;
        }
        if length > fuel {
            return Ok(Err(ERRNO_NOMEM));
        }
        return Ok(Ok((buffer, length)));
    }
    Ok(Ok((0, 0)))
}

/// The little-endian `u32` at `at`, which must be 4-aligned and in bounds.
fn load_u32(memory: &[u8], at: usize, call: &'static str) -> wasmtime::Result<usize> {
    let bytes = at
        .is_multiple_of(4)
        .then(|| memory.get(at..at.checked_add(4)?))
        .flatten()
        .ok_or(BadPointer(call))?;
    let word: [u8; 4] = bytes.try_into().expect("four bytes");
    Ok(u32::from_le_bytes(word) as usize)
}

/// Stores `value` as the little-endian `u32` at the guest's `at`, which must be 4-aligned and
/// in bounds.
fn store_u32(memory: &mut [u8], at: i32, value: usize, call: &'static str) -> wasmtime::Result<()> {
    let at = at as u32 as usize;
    let value = u32::try_from(value).map_err(|_| BadPointer(call))?;
    let target = at
        .is_multiple_of(4)
        .then(|| memory.get_mut(at..at + 4))
        .flatten()
        .ok_or(BadPointer(call))?;
    target.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory of 64 bytes with `iovecs` written from address 16.
    fn memory_with(iovecs: &[(u32, u32)]) -> Vec<u8> {
        let mut memory = vec![0; 64];
        for (index, (buffer, length)) in iovecs.iter().enumerate() {
            let at = 16 + index * 8;
            memory[at..at + 4].copy_from_slice(&buffer.to_le_bytes());
            memory[at + 4..at + 8].copy_from_slice(&length.to_le_bytes());
        }
        memory
    }

    #[test]
    fn a_read_fills_the_first_non_empty_iovec_only() {
        let mut memory = memory_with(&[(40, 0), (40, 3), (48, 8)]);
        let mut stdin = MemoryInputPipe::new(&b"hello"[..]);
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 3, 0).unwrap(),
            0
        );
        assert_eq!(&memory[40..43], b"hel");
        assert_eq!(memory[48], 0);
        assert_eq!(&memory[0..4], &3u32.to_le_bytes());
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 3, 0).unwrap(),
            0
        );
        assert_eq!(&memory[40..42], b"lo");
        assert_eq!(&memory[0..4], &2u32.to_le_bytes());
        // At the end, 0 bytes.
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 3, 0).unwrap(),
            0
        );
        assert_eq!(&memory[0..4], &0u32.to_le_bytes());
    }

    #[test]
    fn a_read_with_no_room_is_interrupted_while_input_is_left() {
        let mut memory = memory_with(&[(40, 0)]);
        let mut stdin = MemoryInputPipe::new(&b"x"[..]);
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 1, 0).unwrap(),
            ERRNO_INTR
        );
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 0, 0).unwrap(),
            ERRNO_INTR
        );
        let mut empty = MemoryInputPipe::new(&b""[..]);
        assert_eq!(
            read_stdin(&mut memory, &mut empty, 1 << 20, 16, 1, 0).unwrap(),
            0
        );
    }

    #[test]
    fn the_host_call_fuel_bounds_the_array_and_the_buffer() {
        let mut memory = memory_with(&[(40, 8)]);
        let mut stdin = MemoryInputPipe::new(&b"input"[..]);
        // The array alone (8 bytes) fits in 10, the buffer then does not.
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 10, 16, 1, 0).unwrap(),
            ERRNO_NOMEM
        );
        // A billion entries are refused before one is read.
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 1 << 30, 0).unwrap(),
            ERRNO_NOMEM
        );
        assert_eq!(
            read_stdin(&mut memory, &mut stdin, 16, 16, 1, 0).unwrap(),
            0
        );
    }

    #[test]
    fn bad_pointers_trap() {
        let mut stdin = MemoryInputPipe::new(&b"input"[..]);
        let mut memory = memory_with(&[(40, 8)]);
        // The array past the end, misaligned, or its result pointer so.
        assert!(read_stdin(&mut memory, &mut stdin, 1 << 20, 60, 1, 0).is_err());
        assert!(read_stdin(&mut memory, &mut stdin, 1 << 20, 18, 1, 0).is_err());
        assert!(read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 1, 62).is_err());
        assert!(read_stdin(&mut memory, &mut stdin, 1 << 20, 16, 1, -4).is_err());
        // A read's buffer past the end traps only where the read fills it.
        let mut memory = memory_with(&[(60, 100)]);
        let mut short = MemoryInputPipe::new(&b"abcd"[..]);
        assert_eq!(
            read_stdin(&mut memory, &mut short, 1 << 20, 16, 1, 0).unwrap(),
            0
        );
        assert_eq!(&memory[60..64], b"abcd");
        let mut long = MemoryInputPipe::new(&b"abcde"[..]);
        assert!(read_stdin(&mut memory, &mut long, 1 << 20, 16, 1, 0).is_err());
        // A write's buffer must be in bounds whole.
        let output = CappedPipe::new(1 << 10);
        assert!(write_output(&mut memory, &output, 1 << 20, 16, 1, 0).is_err());
        assert!(output.take().is_empty());
    }

    #[test]
    fn a_write_past_the_limit_traps_and_keeps_what_fitted() {
        let mut memory = memory_with(&[(0, 0), (40, 6)]);
        memory[40..46].copy_from_slice(b"abcdef");
        let output = CappedPipe::new(8);
        assert_eq!(
            write_output(&mut memory, &output, 1 << 20, 16, 2, 4).unwrap(),
            0
        );
        assert_eq!(&memory[4..8], &6u32.to_le_bytes());
        assert!(write_output(&mut memory, &output, 1 << 20, 16, 2, 4).is_err());
        assert!(output.overflowed());
        assert_eq!(output.take(), b"abcdefab");
    }
}
