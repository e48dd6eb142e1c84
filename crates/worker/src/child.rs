//! The worker's side: load the guests, warm them up, confine the process, then serve calls
//! one at a time on descriptor 0 until the parent closes it.
//!
//! Nothing untrusted is read before [`crate::confine::confine`] has run: the spec comes from
//! the parent, and the warm-up calls are the parent's own inputs. The first request frame
//! (which carries user code) is read after the filter is in place.

use std::io::{BufReader, BufWriter, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use zeval_sandbox::{Guest, Limits, ModuleHost, ModuleHostConfig, Sandbox};

use crate::WorkerError;
use crate::confine::{ConfineOptions, ConfinementReport, confine};
use crate::protocol::{
    Hello, MAX_REQUEST_FRAME, Request, Response, WorkerSpec, read_frame, read_json, write_json,
};

/// Compiled modules a worker keeps in memory (most recently used): with 32 workers, each
/// holding up to this many modules of a few hundred KiB of native code, the total stays in
/// the hundreds of MiB at worst.
pub(crate) const MAX_LOADED_MODULES: usize = 16;

/// The smallest WASI command: compiled and run once before confinement.
const WARM_UP_MODULE: &[u8] = b"(module (func (export \"_start\")))";

/// Wall time of one warm-up call: generous, since a cold machine may be busy compiling.
const WARM_UP_WALL_TIME: Duration = Duration::from_secs(60);

/// The whole life of a worker process: serves, then ends the process at once, from the
/// thread that ran the guests. Nothing else runs after confinement: no destructors of
/// thread-locals, no exit handlers, whose system calls the filter may not allow. An error is
/// one line on standard error and exit status 3.
pub fn run() -> ! {
    let code = match serve_on_stdin() {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("zeval worker: {error}");
            3
        }
    };
    exit_now(code)
}

#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running any code of this process; nothing is
    // left to observe a broken invariant.
    unsafe { libc::_exit(code) }
}

/// Runs a worker on the socket the parent passed as descriptor 0. Returns when the parent
/// closes the socket; any error before the first request is also reported to the parent
/// (as [`Hello::Failed`]) when possible.
pub fn serve_on_stdin() -> Result<(), WorkerError> {
    // The parent's death ends the worker, whatever state it is in.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| WorkerError::Setup(format!("PR_SET_PDEATHSIG: {e}")))?;
    // One descriptor for both directions: the filter allows reads and writes on 0–2 only, so
    // the socket must not be duplicated.
    let socket = UnixStream::from(take_stdin());
    let mut writer = BufWriter::new(&socket);

    // Read without a buffer: the byte that carries the sealed guests' descriptors must be
    // left for `recvmsg`.
    let spec: WorkerSpec = read_json(&mut &socket)?;
    let sealed_count = spec.guests.iter().filter(|guest| guest.sealed).count();
    let sealed = if sealed_count > 0 {
        crate::protocol::receive_descriptors(&socket, sealed_count)
            .map_err(|e| WorkerError::Setup(format!("receiving the sealed guests: {e}")))?
    } else {
        Vec::new()
    };
    let mut reader = BufReader::new(&socket);
    let prepared = match prepare(&spec, sealed) {
        Ok(prepared) => prepared,
        Err(error) => {
            let _ = write_json(
                &mut writer,
                &Hello::Failed {
                    message: error.to_string(),
                },
            );
            let _ = writer.flush();
            return Err(error);
        }
    };
    if !prepared.confinement.priority_restorable {
        // The probe ran while privileged; since then the process lost the right to raise a
        // lowered thread back, so it must not lower one.
        zeval_sandbox::turn_priority_lowering_off();
    }
    write_json(
        &mut writer,
        &Hello::Ready {
            confinement: prepared.confinement.clone(),
            address_space_limit: Some(prepared.address_space_limit),
            serving_thread: u32::try_from(rustix::thread::gettid().as_raw_nonzero().get()).ok(),
        },
    )?;
    writer.flush()?;
    let served = serve(&prepared, spec.test_hooks, &mut reader, &mut writer);
    // Not dropped: the process ends right after ([`run`]), and dropping the guests and the
    // socket would make system calls (closing memfds, debug checks of descriptors) that the
    // filter does not allow.
    drop((reader, writer));
    std::mem::forget(prepared);
    std::mem::forget(socket);
    served
}

/// Descriptor 0 as an owned descriptor (the parent made it a socket).
#[allow(unsafe_code)]
fn take_stdin() -> OwnedFd {
    // SAFETY: descriptor 0 is open (the parent passed the socket there) and nothing else in
    // this process owns it: std never closes or uses stdin by itself.
    unsafe { OwnedFd::from_raw_fd(0) }
}

/// Room above the address space a worker has mapped once it is warm: the host side of a call
/// (the output pipes up to twice [`Limits::max_output_bytes`], the parsed input, the
/// runner's answer) allocates well under this, while the guests' own memory grows inside
/// regions wasmtime reserved at load time.
const ADDRESS_SPACE_HEADROOM: u64 = 1024 * 1024 * 1024;

/// Caps the worker's address space (`RLIMIT_AS`) at what it has mapped now plus
/// [`ADDRESS_SPACE_HEADROOM`]; the limit it set. Where no cgroup bounds a worker's memory
/// (this machine has no cgroup v2 memory controller), this does: code that escaped the
/// sandbox cannot map more than that, however it asks (its `mmap` fails).
fn limit_address_space() -> Result<u64, WorkerError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let mapped_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| WorkerError::Setup("no VmSize in /proc/self/status".to_owned()))?;
    let limit = mapped_kib * 1024 + ADDRESS_SPACE_HEADROOM;
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .map_err(|e| WorkerError::Setup(format!("RLIMIT_AS: {e}")))?;
    Ok(limit)
}

/// A worker ready to serve: what [`prepare`] made.
struct Prepared {
    guests: Vec<Guest>,
    /// Compiled modules, compiled in memory on first use.
    modules: ModuleHost,
    /// What the kernel granted.
    confinement: ConfinementReport,
    /// The `RLIMIT_AS` it set, in bytes.
    address_space_limit: u64,
    /// The CPU set the serving thread started with, taken back after each request when
    /// the parent colocates ([`WorkerSpec::colocated`]); read before confinement, which
    /// forbids `sched_getaffinity`.
    starting_cpu_set: Option<crate::affinity::CpuSet>,
}

/// Loads, warms up and confines. `sealed` holds the compiled code of the guests that came
/// sealed ([`crate::GuestSpec::sealed`]), in their order.
fn prepare(spec: &WorkerSpec, sealed: Vec<OwnedFd>) -> Result<Prepared, WorkerError> {
    let sandbox = Sandbox::new(spec.sandbox.clone())?;
    let mut guests = Vec::with_capacity(spec.guests.len());
    let mut sealed = sealed.into_iter();
    for guest in &spec.guests {
        let code = guest.sealed.then(|| sealed.next()).flatten();
        let sealed_load = code.map(|code| {
            sandbox.load_guest_sealed(&guest.name, &guest.sha256, std::fs::File::from(code))
        });
        let loaded = match sealed_load {
            Some(Ok(loaded)) => loaded,
            unsealed => {
                if let Some(Err(error)) = unsealed {
                    tracing::warn!(
                        guest = guest.name,
                        %error,
                        "loading the guest from the module cache instead of its sealed code"
                    );
                }
                sandbox.load_guest_file_with_digest(&guest.name, &guest.path, &guest.sha256)?
            }
        };
        let limits = Limits {
            wall_time: WARM_UP_WALL_TIME,
            ..Limits::default()
        };
        loaded
            .run(&guest.warm_up_input, &limits)
            .map_err(|e| WorkerError::Setup(format!("warm-up call of {}: {e}", guest.name)))?;
        guests.push(loaded);
    }
    let modules = sandbox.module_host(ModuleHostConfig {
        max_loaded: MAX_LOADED_MODULES,
        // No file can be opened and no thread started once confined.
        disk_cache: false,
        parallel_compilation: false,
        // The parent kills this worker at a module call's deadline (its
        // `module_kill_margin`), so compiled code runs without epoch checks.
        epoch_interruption: false,
        ..ModuleHostConfig::default()
    })?;
    // One module compiled and run now, so that whatever Cranelift and the module engine set
    // up on first use happens before the filter is in place.
    modules
        .load("warm-up", WARM_UP_MODULE)?
        .run(
            b"",
            &Limits {
                wall_time: WARM_UP_WALL_TIME,
                ..Limits::default()
            },
        )
        .map_err(|e| WorkerError::Setup(format!("warm-up call of a module: {e}")))?;
    // Probed now: the probe starts a thread, which the confinement forbids. (The warm-up
    // calls did the same for the first clock reads, which locate the vDSO with
    // `prctl(PR_GET_AUXV)`.)
    zeval_sandbox::priority_lowering_available();
    let address_space_limit = limit_address_space()?;
    let starting_cpu_set = spec
        .colocated
        .then(crate::affinity::CpuSet::of_calling_thread)
        .flatten();
    let confinement = confine(&ConfineOptions {
        user: spec.user.clone(),
    })?;
    Ok(Prepared {
        guests,
        modules,
        confinement,
        address_space_limit,
        starting_cpu_set,
    })
}

fn serve(
    prepared: &Prepared,
    test_hooks: bool,
    reader: &mut impl std::io::Read,
    writer: &mut impl Write,
) -> Result<(), WorkerError> {
    loop {
        let frame = match read_frame(reader, MAX_REQUEST_FRAME) {
            Ok(frame) => frame,
            Err(crate::protocol::FrameError::Closed) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        if let Some(starting_set) = &prepared.starting_cpu_set {
            // The parent bound this thread to its caller's CPU for the wake-up
            // (`pool::colocate`); the call itself may run wherever the kernel likes.
            starting_set.bind(0);
        }
        // A finished guest call's instance, reset after its answer is sent (so the caller
        // does not wait for it); before the next frame is read.
        let mut pending_reset = None;
        let response = match Request::decode(&frame)? {
            Request::Run {
                guest,
                limits,
                stdin,
                reentrant,
            } => {
                let Some(guest) = prepared.guests.get(guest as usize) else {
                    return Err(WorkerError::Protocol(format!("no guest number {guest}")));
                };
                let mut ask_parent = |request: &[u8], _deadline: std::time::Instant| {
                    ask_the_parent(request, reader, writer)
                };
                let host: Option<&mut dyn zeval_sandbox::HostCalls> = if reentrant {
                    Some(&mut ask_parent)
                } else {
                    None
                };
                let (outcome, reset) = guest.run_resetting_later(&stdin, &limits, host);
                pending_reset = reset;
                match outcome {
                    Ok(output) => Response::Ran(output),
                    Err(error) => Response::Failed(error),
                }
            }
            Request::HostAnswer(_) => {
                return Err(WorkerError::Protocol(
                    "a host answer outside a host call".to_owned(),
                ));
            }
            Request::RunModule {
                key,
                wasm,
                limits,
                stdin,
            } => match prepared
                .modules
                .load(key, wasm)
                .and_then(|module| module.run(stdin, &limits))
            {
                Ok(output) => Response::Ran(output),
                Err(error) => Response::Failed(error),
            },
            Request::RunLoadedModule { key, limits, stdin } => match prepared.modules.get(key) {
                Some(module) => match module.run(stdin, &limits) {
                    Ok(output) => Response::Ran(output),
                    Err(error) => Response::Failed(error),
                },
                None => Response::ModuleNotLoaded,
            },
            Request::ForbiddenSyscall if test_hooks => {
                crate::confine::issue_forbidden_syscall()?;
                return Err(WorkerError::Setup(
                    "the forbidden system call was allowed".to_owned(),
                ));
            }
            Request::ForbiddenSyscall => {
                return Err(WorkerError::Protocol("test hooks are off".to_owned()));
            }
        };
        writer.write_all(&response.to_frame())?;
        writer.flush()?;
        drop(pending_reset);
    }
}

/// A guest's host call, sent to the parent ([`Response::HostCall`]), and the parent's answer
/// ([`Request::HostAnswer`]). No timeout here: the parent answers within the call's
/// deadline, or kills this worker at the deadline plus its margin. A broken exchange answers
/// nothing (an empty answer, which the runner reports as a failed call); the next frame then
/// fails the worker's loop.
fn ask_the_parent(
    request: &[u8],
    reader: &mut impl std::io::Read,
    writer: &mut impl Write,
) -> Vec<u8> {
    let sent = writer
        .write_all(&Response::HostCall(request.to_vec()).to_frame())
        .and_then(|()| writer.flush());
    if sent.is_err() {
        return Vec::new();
    }
    match read_frame(reader, MAX_REQUEST_FRAME) {
        Ok(frame) => match Request::decode(&frame) {
            Ok(Request::HostAnswer(answer)) => answer.to_vec(),
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}
