//! The wire between the parent and a worker: length-prefixed frames on one Unix stream
//! socket (the worker's descriptor 0).
//!
//! 1. The parent sends the [`WorkerSpec`] as one JSON frame. When a guest's compiled code
//!    comes sealed in a memfd ([`GuestSpec::sealed`]), one byte follows that carries the
//!    descriptors (`SCM_RIGHTS`, [`send_descriptors`]).
//! 2. The worker loads its guests, confines itself and answers one JSON [`Hello`] frame.
//! 3. Then, one call at a time: a binary [`Request`] frame, a binary [`Response`] frame.
//!    A reentrant call ([`Request::Run`] with `reentrant`) may, before its response, send any
//!    number of [`Response::HostCall`] frames (the guest's `zeval.call` request), each
//!    answered by one [`Request::HostAnswer`] frame; the guest waits meanwhile. A compiled
//!    module's bytes travel in [`Request::RunModule`] until the worker holds the module;
//!    then [`Request::RunLoadedModule`] names it by key, and the worker answers
//!    [`Response::ModuleNotLoaded`] if it has dropped it since.
//!
//! A frame is a little-endian `u32` length and that many bytes. The two sides do not trust
//! each other's frames equally: the worker runs untrusted code, so the parent treats every
//! byte it reads as hostile. Its decoder ([`Response::decode`]) bounds the frame length
//! before allocating ([`max_response_frame`]), checks every field against the buffer, and
//! any failure ends that worker. It is a fuzz target (`fuzz/`).

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeval_sandbox::{Limits, RunOutput, SandboxConfig, SandboxError};

use crate::confine::ConfinementReport;

/// Largest request frame a worker reads: the input limit is at most this (the parent's
/// [`Limits::max_input_bytes`] is checked before sending), plus the header.
pub const MAX_REQUEST_FRAME: usize = 256 * 1024 * 1024;

/// Bytes of a response besides stdout and stderr (header and error message), at most.
const RESPONSE_OVERHEAD: usize = 64 * 1024;

/// Largest JSON frame (spec, hello).
pub const MAX_JSON_FRAME: usize = 1024 * 1024;

/// The largest response frame the parent accepts for a call under `limits`: both output
/// streams at their cap, plus `RESPONSE_OVERHEAD`.
pub fn max_response_frame(limits: &Limits) -> usize {
    limits
        .max_output_bytes
        .saturating_mul(2)
        .saturating_add(RESPONSE_OVERHEAD)
}

/// One guest a worker loads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestSpec {
    /// The name the sandbox loads it under (e.g. `quickjs`).
    pub name: String,
    /// Its `.wasm` file.
    pub path: std::path::PathBuf,
    /// The file's SHA-256 (hex), as the parent read it once for every worker: the worker
    /// then reads the file only when the module cache has no verified compilation of it,
    /// and refuses it unless it has this digest (`Sandbox::load_guest_file_with_digest`).
    pub sha256: String,
    /// Its compiled code comes as a sealed memfd (`zeval_sandbox::Sandbox::seal_guest_file`,
    /// made by the parent once for every worker), sent after the spec in the order of the
    /// guests that have this: the worker maps it instead of reading and verifying the module
    /// cache, and falls back to that when the descriptor cannot be used.
    #[serde(default)]
    pub sealed: bool,
    /// A call run once after loading and before confinement, so that everything a call
    /// needs (the pool slot, the thread's async runtime, lazily built tables) exists before
    /// the system calls that build it are forbidden. Must succeed.
    pub warm_up_input: Vec<u8>,
}

/// Everything a worker needs, sent by the parent as the first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub guests: Vec<GuestSpec>,
    pub sandbox: SandboxConfig,
    /// The user to run as when started as root (`None`: `nobody`); see
    /// [`crate::confine::ConfineOptions::user`].
    pub user: Option<String>,
    /// Accept [`Request::ForbiddenSyscall`]. Tests only.
    pub test_hooks: bool,
    /// The parent binds the serving thread to the caller's CPU before each request
    /// ([`crate::WorkerPoolConfig::colocate`]): the worker takes back its starting CPU set
    /// once it has read the request.
    #[serde(default)]
    pub colocated: bool,
}

/// The worker's first answer: confined and ready, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Hello {
    Ready {
        confinement: ConfinementReport,
        /// The worker's `RLIMIT_AS` (see `child::limit_address_space`), when set.
        #[serde(default)]
        address_space_limit: Option<u64>,
        /// The id of the thread that serves requests (not the process's main thread: the
        /// command runs on a thread with a larger stack), which the parent binds to its
        /// caller's CPU ([`crate::WorkerPoolConfig::colocate`]).
        #[serde(default)]
        serving_thread: Option<u32>,
    },
    Failed {
        message: String,
    },
}

/// What the parent asks of a worker. It borrows the call's input, so the input is copied
/// once, into the frame, on each side.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    /// Run guest number `guest` (in [`WorkerSpec::guests`]) once.
    Run {
        guest: u32,
        limits: Limits,
        stdin: Cow<'a, [u8]>,
        /// Whether the guest's host calls go to the parent ([`Response::HostCall`]); when
        /// not, `zeval.call` answers "no host" in the worker.
        reentrant: bool,
    },
    /// The answer to the [`Response::HostCall`] the worker sent last.
    HostAnswer(&'a [u8]),
    /// Run a compiled module (an artifact) once. The worker compiles `wasm` the first time
    /// it sees `key` and keeps it among its most recently used modules; the parent vouches
    /// that one key always comes with the same bytes (keys are content hashes).
    RunModule {
        key: &'a str,
        wasm: &'a [u8],
        limits: Limits,
        stdin: &'a [u8],
    },
    /// Run the compiled module `key` that this worker already holds: the parent sends a
    /// module's bytes only until a worker has loaded it. A worker that no longer holds it
    /// (it keeps only the most recently used) answers [`Response::ModuleNotLoaded`], and the
    /// parent sends a [`Request::RunModule`] instead.
    RunLoadedModule {
        key: &'a str,
        limits: Limits,
        stdin: &'a [u8],
    },
    /// Test hook: issue a system call the filter forbids.
    ForbiddenSyscall,
}

/// A call's result, as the worker reports it.
#[derive(Debug)]
pub enum Response {
    Ran(RunOutput),
    Failed(SandboxError),
    /// Not the end of the call: the guest asks its host (the parent) for something and
    /// waits for a [`Request::HostAnswer`]. Its length is checked by the parent against the
    /// call's [`Limits::max_input_bytes`].
    HostCall(Vec<u8>),
    /// The answer to a [`Request::RunLoadedModule`] whose module the worker does not hold;
    /// nothing ran.
    ModuleNotLoaded,
}

const RUN: u8 = 1;
const RUN_MODULE: u8 = 3;
/// Longest module key in a [`Request::RunModule`] (a hex SHA-256 is 64 bytes).
const MAX_KEY_BYTES: usize = 255;
const FORBIDDEN_SYSCALL: u8 = 2;
const RUN_REENTRANT: u8 = 4;
const HOST_ANSWER: u8 = 5;
const RUN_LOADED_MODULE: u8 = 6;
const RAN: u8 = 0;
const FAILED: u8 = 1;
const HOST_CALL: u8 = 2;
const MODULE_NOT_LOADED: u8 = 3;
const NONE: u64 = u64::MAX;

/// Why a frame could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the peer closed the connection")]
    Closed,
    #[error("a frame of {len} bytes is over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("malformed JSON frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// A frame whose payload `build` writes, in one buffer (written with one `write_all`).
/// Payloads are bounded far below 4 GiB by the limits; a larger one would get a wrong
/// length, which the reader refuses.
fn framed(payload_capacity: usize, build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + payload_capacity);
    frame.extend_from_slice(&[0; 4]);
    build(&mut frame);
    let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame
}

/// Writes one frame.
pub fn write_frame(writer: &mut impl Write, payload: &[u8]) -> Result<(), FrameError> {
    writer.write_all(&framed(payload.len(), |out| out.extend_from_slice(payload)))?;
    Ok(())
}

/// Reads one frame of at most `limit` bytes. The length is checked before anything is
/// allocated, and the buffer grows only as bytes arrive.
pub fn read_frame(reader: &mut impl Read, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        other => other?,
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut payload = Vec::with_capacity(len.min(1024 * 1024));
    let read = reader.take(len as u64).read_to_end(&mut payload)?;
    if read != len {
        return Err(FrameError::Closed);
    }
    Ok(payload)
}

/// Writes `value` as a JSON frame.
pub fn write_json(writer: &mut impl Write, value: &impl Serialize) -> Result<(), FrameError> {
    write_frame(writer, &serde_json::to_vec(value)?)
}

/// Reads a JSON frame of at most [`MAX_JSON_FRAME`] bytes.
pub fn read_json<T: for<'de> Deserialize<'de>>(reader: &mut impl Read) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(&read_frame(
        reader,
        MAX_JSON_FRAME,
    )?)?)
}

impl<'a> Request<'a> {
    /// The whole frame, length included.
    pub fn to_frame(&self) -> Vec<u8> {
        match self {
            Request::ForbiddenSyscall => framed(1, |out| out.push(FORBIDDEN_SYSCALL)),
            Request::HostAnswer(answer) => framed(1 + answer.len(), |out| {
                out.push(HOST_ANSWER);
                out.extend_from_slice(answer);
            }),
            Request::Run {
                guest,
                limits,
                stdin,
                reentrant,
            } => framed(1 + 4 + 5 * 8 + stdin.len(), |out| {
                out.push(if *reentrant { RUN_REENTRANT } else { RUN });
                out.extend_from_slice(&guest.to_le_bytes());
                put_limits(out, limits);
                out.extend_from_slice(stdin);
            }),
            Request::RunModule {
                key,
                wasm,
                limits,
                stdin,
            } => framed(
                1 + 1 + key.len() + 4 + wasm.len() + 5 * 8 + stdin.len(),
                |out| {
                    out.push(RUN_MODULE);
                    put_key(out, key);
                    let wasm_len = u32::try_from(wasm.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&wasm_len.to_le_bytes());
                    out.extend_from_slice(&wasm[..wasm_len as usize]);
                    put_limits(out, limits);
                    out.extend_from_slice(stdin);
                },
            ),
            Request::RunLoadedModule { key, limits, stdin } => {
                framed(1 + 1 + key.len() + 5 * 8 + stdin.len(), |out| {
                    out.push(RUN_LOADED_MODULE);
                    put_key(out, key);
                    put_limits(out, limits);
                    out.extend_from_slice(stdin);
                })
            }
        }
    }

    /// Decodes a frame's payload (as [`read_frame`] returns it); the input is borrowed.
    pub fn decode(frame: &'a [u8]) -> Result<Self, FrameError> {
        let mut cursor = Cursor(frame);
        match cursor.u8()? {
            FORBIDDEN_SYSCALL => Ok(Request::ForbiddenSyscall),
            kind @ (RUN | RUN_REENTRANT) => {
                let guest = cursor.u32()?;
                let limits = cursor.limits()?;
                Ok(Request::Run {
                    guest,
                    limits,
                    stdin: Cow::Borrowed(cursor.0),
                    reentrant: kind == RUN_REENTRANT,
                })
            }
            HOST_ANSWER => Ok(Request::HostAnswer(cursor.0)),
            RUN_MODULE => {
                let key = cursor.key()?;
                let wasm_len = cursor.u32()? as usize;
                let wasm = cursor.bytes(wasm_len)?;
                let limits = cursor.limits()?;
                Ok(Request::RunModule {
                    key,
                    wasm,
                    limits,
                    stdin: cursor.0,
                })
            }
            RUN_LOADED_MODULE => {
                let key = cursor.key()?;
                let limits = cursor.limits()?;
                Ok(Request::RunLoadedModule {
                    key,
                    limits,
                    stdin: cursor.0,
                })
            }
            _ => Err(FrameError::Malformed("unknown request kind")),
        }
    }
}

/// Error codes of [`Response::Failed`].
mod code {
    pub(super) const TIMEOUT: u8 = 1;
    pub(super) const OUT_OF_FUEL: u8 = 2;
    pub(super) const MEMORY: u8 = 3;
    pub(super) const STACK: u8 = 4;
    pub(super) const OUTPUT: u8 = 5;
    pub(super) const INPUT: u8 = 6;
    pub(super) const BUSY: u8 = 7;
    pub(super) const TRAP: u8 = 8;
    pub(super) const INVALID_LIMITS: u8 = 9;
    pub(super) const OTHER: u8 = 10;
    pub(super) const RESERVE_TIMEOUT: u8 = 11;
    pub(super) const STARVED: u8 = 12;
}

/// Longest error message a response carries; the sandbox's own messages are far shorter.
const MAX_MESSAGE_BYTES: usize = 4096;

impl Response {
    /// The whole frame, length included.
    pub fn to_frame(&self) -> Vec<u8> {
        match self {
            Response::HostCall(request) => framed(1 + request.len(), |out| {
                out.push(HOST_CALL);
                out.extend_from_slice(request);
            }),
            Response::ModuleNotLoaded => framed(1, |out| out.push(MODULE_NOT_LOADED)),
            Response::Ran(output) => framed(
                1 + 4 * 8 + 4 + output.stdout.len() + output.stderr.len(),
                |out| {
                    out.push(RAN);
                    put_u64(out, output.fuel_consumed.unwrap_or(NONE));
                    put_u64(out, output.peak_memory_bytes);
                    put_u64(out, nanos(output.duration));
                    put_u64(out, nanos(output.cpu_time));
                    let stdout_len = u32::try_from(output.stdout.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&stdout_len.to_le_bytes());
                    out.extend_from_slice(&output.stdout[..stdout_len as usize]);
                    out.extend_from_slice(&output.stderr);
                },
            ),
            Response::Failed(error) => framed(1 + 1 + 8 + MAX_MESSAGE_BYTES, |out| {
                out.push(FAILED);
                let (kind, param, message): (u8, u64, String) = match error {
                    SandboxError::Timeout { limit } => {
                        (code::TIMEOUT, micros(*limit), String::new())
                    }
                    SandboxError::ReserveTimeout { limit } => {
                        (code::RESERVE_TIMEOUT, micros(*limit), String::new())
                    }
                    SandboxError::OutOfFuel { limit } => (code::OUT_OF_FUEL, *limit, String::new()),
                    SandboxError::MemoryLimit { limit } => {
                        (code::MEMORY, *limit as u64, String::new())
                    }
                    SandboxError::StackOverflow { limit } => {
                        (code::STACK, *limit as u64, String::new())
                    }
                    SandboxError::OutputLimit { limit } => {
                        (code::OUTPUT, *limit as u64, String::new())
                    }
                    SandboxError::InputLimit { limit } => {
                        (code::INPUT, *limit as u64, String::new())
                    }
                    SandboxError::Busy { waited, .. } => {
                        (code::BUSY, micros(*waited), String::new())
                    }
                    // Both in milliseconds, in one word: the limit high, the time used low.
                    SandboxError::Starved { limit, used } => (
                        code::STARVED,
                        (millis_u32(*limit) << 32) | millis_u32(*used),
                        String::new(),
                    ),
                    SandboxError::Trap(message) => (code::TRAP, 0, message.clone()),
                    SandboxError::InvalidLimits(message) => {
                        (code::INVALID_LIMITS, 0, message.clone())
                    }
                    other => (code::OTHER, 0, other.to_string()),
                };
                out.push(kind);
                put_u64(out, param);
                let message = truncate_utf8(&message, MAX_MESSAGE_BYTES);
                out.extend_from_slice(message.as_bytes());
            }),
        }
    }

    /// Decodes a worker's response. Every length is checked against the frame; a message
    /// that is not UTF-8 is replaced, one that is too long is refused.
    pub fn decode(frame: &[u8]) -> Result<Self, FrameError> {
        let mut cursor = Cursor(frame);
        match cursor.u8()? {
            RAN => {
                let fuel_consumed = Some(cursor.u64()?).filter(|&fuel| fuel != NONE);
                let peak_memory_bytes = cursor.u64()?;
                let duration = Duration::from_nanos(cursor.u64()?);
                let cpu_time = Duration::from_nanos(cursor.u64()?);
                let stdout_len = cursor.u32()? as usize;
                let stdout = cursor.bytes(stdout_len)?.to_vec();
                let stderr = cursor.0.to_vec();
                Ok(Response::Ran(RunOutput {
                    stdout,
                    stderr,
                    fuel_consumed,
                    peak_memory_bytes,
                    duration,
                    cpu_time,
                    ended: None,
                }))
            }
            FAILED => {
                let kind = cursor.u8()?;
                let param = cursor.u64()?;
                if cursor.0.len() > MAX_MESSAGE_BYTES {
                    return Err(FrameError::Malformed("error message too long"));
                }
                let message = String::from_utf8_lossy(cursor.0).into_owned();
                let size = usize::try_from(param).unwrap_or(usize::MAX);
                let error = match kind {
                    code::TIMEOUT => SandboxError::Timeout {
                        limit: Duration::from_micros(param),
                    },
                    code::RESERVE_TIMEOUT => SandboxError::ReserveTimeout {
                        limit: Duration::from_micros(param),
                    },
                    code::OUT_OF_FUEL => SandboxError::OutOfFuel { limit: param },
                    code::MEMORY => SandboxError::MemoryLimit { limit: size },
                    code::STACK => SandboxError::StackOverflow { limit: size },
                    code::OUTPUT => SandboxError::OutputLimit { limit: size },
                    code::INPUT => SandboxError::InputLimit { limit: size },
                    code::BUSY => SandboxError::Busy {
                        guest: "worker".to_owned(),
                        capacity: 1,
                        waited: Duration::from_micros(param),
                    },
                    code::STARVED => SandboxError::Starved {
                        limit: Duration::from_millis(param >> 32),
                        used: Duration::from_millis(param & u64::from(u32::MAX)),
                    },
                    code::TRAP => SandboxError::Trap(message),
                    code::INVALID_LIMITS => SandboxError::InvalidLimits(message),
                    code::OTHER => SandboxError::Setup(message),
                    _ => return Err(FrameError::Malformed("unknown error code")),
                };
                Ok(Response::Failed(error))
            }
            HOST_CALL => Ok(Response::HostCall(cursor.0.to_vec())),
            MODULE_NOT_LOADED if cursor.0.is_empty() => Ok(Response::ModuleNotLoaded),
            _ => Err(FrameError::Malformed("unknown response kind")),
        }
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A module key: its length in one byte, then the key, cut at [`MAX_KEY_BYTES`].
fn put_key(out: &mut Vec<u8>, key: &str) {
    let key = truncate_utf8(key, MAX_KEY_BYTES);
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
}

fn put_limits(out: &mut Vec<u8>, limits: &Limits) {
    put_u64(out, micros(limits.wall_time));
    put_u64(out, limits.fuel.unwrap_or(NONE));
    put_u64(out, limits.memory_bytes as u64);
    put_u64(out, limits.max_input_bytes as u64);
    put_u64(out, limits.max_output_bytes as u64);
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Whole milliseconds, at most `u32::MAX` (49 days), as a `u64`.
fn millis_u32(duration: Duration) -> u64 {
    u64::from(u32::try_from(duration.as_millis()).unwrap_or(u32::MAX))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Reads fields off the front of a frame.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < len {
            return Err(FrameError::Malformed(
                "a field runs past the end of the frame",
            ));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.bytes(1)?[0])
    }

    /// A module key, as [`put_key`] wrote it.
    fn key(&mut self) -> Result<&'a str, FrameError> {
        let len = self.u8()? as usize;
        std::str::from_utf8(self.bytes(len)?)
            .map_err(|_| FrameError::Malformed("module key is not UTF-8"))
    }

    fn limits(&mut self) -> Result<Limits, FrameError> {
        let wall_time = Duration::from_micros(self.u64()?);
        let fuel = Some(self.u64()?).filter(|&fuel| fuel != NONE);
        Ok(Limits {
            wall_time,
            fuel,
            memory_bytes: self.usize()?,
            max_input_bytes: self.usize()?,
            max_output_bytes: self.usize()?,
        })
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let bytes = self.bytes(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        let bytes = self.bytes(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn usize(&mut self) -> Result<usize, FrameError> {
        usize::try_from(self.u64()?).map_err(|_| FrameError::Malformed("size out of range"))
    }
}

/// Sends `descriptors` over `socket` with one byte (`SCM_RIGHTS`).
pub fn send_descriptors(
    socket: &std::os::unix::net::UnixStream,
    descriptors: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space =
        vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(descriptors.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(descriptors)) {
        return Err(io::Error::other("no room for the descriptors"));
    }
    rustix::net::sendmsg(
        socket,
        &[io::IoSlice::new(&[0])],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives the byte [`send_descriptors`] sent and exactly `count` descriptors with it.
pub fn receive_descriptors(
    socket: &std::os::unix::net::UnixStream,
    count: usize,
) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(count))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let received = rustix::net::recvmsg(
        socket,
        &mut [io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut descriptors = Vec::with_capacity(count);
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            descriptors.extend(fds);
        }
    }
    if received.bytes != 1
        || received.flags.contains(ReturnFlags::CTRUNC)
        || descriptors.len() != count
    {
        return Err(io::Error::other(format!(
            "expected {count} descriptors with one byte, got {} with {} bytes",
            descriptors.len(),
            received.bytes
        )));
    }
    Ok(descriptors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The payload of a whole frame, as the other side reads it.
    fn payload(frame: &[u8]) -> Vec<u8> {
        read_frame(&mut &frame[..], usize::MAX).unwrap()
    }

    /// `request` framed, read and decoded is `request` again.
    fn assert_round_trip(request: &Request<'_>) {
        assert_eq!(
            &Request::decode(&payload(&request.to_frame())).unwrap(),
            request
        );
    }

    #[test]
    fn requests_round_trip() {
        let run = Request::Run {
            guest: 1,
            limits: Limits {
                fuel: Some(7),
                wall_time: Duration::from_millis(1500),
                ..Limits::default()
            },
            stdin: Cow::Borrowed(b"{\"x\":1}"),
            reentrant: false,
        };
        assert_round_trip(&run);
        let reentrant = Request::Run {
            guest: 0,
            limits: Limits::default(),
            stdin: Cow::Borrowed(b"{}"),
            reentrant: true,
        };
        assert_round_trip(&reentrant);
        let answer = Request::HostAnswer(b"{\"result\": 1}");
        assert_round_trip(&answer);
        assert_round_trip(&Request::ForbiddenSyscall);
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[RUN, 0, 0]).is_err());
        let module = Request::RunModule {
            key: "ab12",
            wasm: b"\0asm\x01\0\0\0",
            limits: Limits::default(),
            stdin: b"args",
        };
        assert_round_trip(&module);
        assert!(Request::decode(&[RUN_MODULE, 5, b'a']).is_err());
        assert!(Request::decode(&[RUN_MODULE, 1, b'a', 9, 0, 0, 0, 1]).is_err());
        let loaded = Request::RunLoadedModule {
            key: "ab12",
            limits: Limits::default(),
            stdin: b"args",
        };
        assert_round_trip(&loaded);
        assert!(Request::decode(&[RUN_LOADED_MODULE, 3, b'a']).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let ran = Response::Ran(RunOutput {
            stdout: b"out".to_vec(),
            stderr: b"err".to_vec(),
            fuel_consumed: None,
            peak_memory_bytes: 4096,
            duration: Duration::from_micros(55),
            cpu_time: Duration::from_micros(50),
            ended: Some(zeval_sandbox::ThreadClockReading {
                at: std::time::Instant::now(),
                thread_cpu: Duration::from_micros(70),
            }),
        });
        let Response::Ran(output) = Response::decode(&payload(&ran.to_frame())).unwrap() else {
            panic!("not ran");
        };
        assert_eq!(output.stdout, b"out");
        assert_eq!(output.stderr, b"err");
        assert_eq!(output.fuel_consumed, None);
        assert_eq!(output.peak_memory_bytes, 4096);
        assert_eq!(output.cpu_time, Duration::from_micros(50));
        // A reading of the worker's thread's clock means nothing to the caller's.
        assert_eq!(output.ended, None);

        let failed = Response::Failed(SandboxError::MemoryLimit { limit: 1 << 20 });
        assert!(matches!(
            Response::decode(&payload(&failed.to_frame())).unwrap(),
            Response::Failed(SandboxError::MemoryLimit { limit }) if limit == 1 << 20
        ));
        let starved = Response::Failed(SandboxError::Starved {
            limit: Duration::from_millis(10_000),
            used: Duration::from_millis(900),
        });
        assert!(matches!(
            Response::decode(&payload(&starved.to_frame())).unwrap(),
            Response::Failed(SandboxError::Starved { limit, used })
                if limit == Duration::from_millis(10_000) && used == Duration::from_millis(900)
        ));
        let trap = Response::Failed(SandboxError::Trap("x".repeat(10_000)));
        let Response::Failed(SandboxError::Trap(message)) =
            Response::decode(&payload(&trap.to_frame())).unwrap()
        else {
            panic!("not a trap");
        };
        assert_eq!(message.len(), MAX_MESSAGE_BYTES);

        let host_call = Response::HostCall(b"{\"function\": \"Z801\"}".to_vec());
        let Response::HostCall(request) =
            Response::decode(&payload(&host_call.to_frame())).unwrap()
        else {
            panic!("not a host call");
        };
        assert_eq!(request, b"{\"function\": \"Z801\"}");

        assert!(matches!(
            Response::decode(&payload(&Response::ModuleNotLoaded.to_frame())).unwrap(),
            Response::ModuleNotLoaded
        ));
        assert!(Response::decode(&[MODULE_NOT_LOADED, 0]).is_err());
    }

    #[test]
    fn hostile_responses_are_refused_not_trusted() {
        // A stdout length past the end of the frame.
        let mut frame = vec![RAN];
        frame.extend_from_slice(&[0; 32]);
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Response::decode(&frame).is_err());
        // An unknown error code, a message over the cap.
        assert!(Response::decode(&[FAILED, 99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let mut long = vec![FAILED, code::TRAP];
        long.extend_from_slice(&[0; 8]);
        long.extend(std::iter::repeat_n(b'x', MAX_MESSAGE_BYTES + 1));
        assert!(Response::decode(&long).is_err());
    }

    #[test]
    fn frames_are_bounded_before_allocation() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        assert_eq!(read_frame(&mut wire.as_slice(), 5).unwrap(), b"hello");
        assert!(matches!(
            read_frame(&mut wire.as_slice(), 4),
            Err(FrameError::TooLarge { len: 5, limit: 4 })
        ));
        // A length announcing 4 GiB with nothing behind it: refused by the limit, and with
        // a large limit the short read is a closed connection, not an allocation.
        let lying = u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame(&mut lying.as_slice(), usize::MAX),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut [1u8, 0].as_slice(), 10),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn descriptors_travel_with_one_byte_and_a_missing_one_is_an_error() {
        let (parent, child) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        send_descriptors(&parent, &[file.as_fd()]).unwrap();
        let received = receive_descriptors(&child, 1).unwrap();
        let inode = |fd: std::os::fd::BorrowedFd<'_>| rustix::fs::fstat(fd).unwrap().st_ino;
        assert_eq!(inode(received[0].as_fd()), inode(file.as_fd()));
        // A frame after them is read as usual.
        write_json(&mut &parent, &"after").unwrap();
        assert_eq!(read_json::<String>(&mut &child).unwrap(), "after");
        // Fewer descriptors than expected: refused.
        send_descriptors(&parent, &[file.as_fd()]).unwrap();
        assert!(receive_descriptors(&child, 2).is_err());
    }
}
