//! A loaded guest and one call of it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Engine, InstancePre, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::host_call::{self, HostCalls, SharedExchange};
use crate::limiter::CallLimiter;
use crate::output::CappedPipe;
use crate::priority::CallPriority;
use crate::stdio::Stdio;
use crate::{GuestOptions, Limits, SandboxError, engine::EngineRegistry};

/// The most bytes one `random_get` may ask for (wasmtime-wasi's default is 64 MiB, which the
/// host allocates and fills before it checks the guest's pointer: a guest of one page looped
/// on it, 0.1 s of host CPU a call, outside its memory limit). Interpreters ask for a few
/// dozen bytes at a time.
pub(crate) const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// How much of the guest's stderr a trap message quotes: enough for the last line of a
/// traceback, short enough that an error message never carries bulk guest output.
const STDERR_TAIL_BYTES: usize = 200;

/// What a successful call produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Fuel burnt by the call (instantiation included); `None` when fuel metering is off.
    pub fuel_consumed: Option<u64>,
    /// Largest size the guest's linear memory reached, snapshot heap included.
    pub peak_memory_bytes: u64,
    /// Wall time from just before instantiation to the end of the call.
    pub duration: Duration,
    /// CPU time the calling thread spent from then on (the guest runs on it).
    pub cpu_time: Duration,
    /// The calling thread's CPU clock as the call ended, and when it was read; `None` when
    /// the call ran on another thread (a worker's output).
    pub ended: Option<ThreadClockReading>,
}

/// A reading of the calling thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`) and the instant it
/// was taken. A caller on the same thread adds the wall time since to it, to know the CPU
/// time it has used up to now without reading the clock again: a reading is a system call
/// (0.5–0.8 µs on the 2-core VM, against a few dozen ns for the monotonic clock, which has
/// the vDSO), and wall time equals CPU time on a thread that neither blocks nor is
/// preempted meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadClockReading {
    /// When the reading was taken.
    pub at: Instant,
    /// The thread's CPU time then.
    pub thread_cpu: Duration,
}

impl ThreadClockReading {
    /// The thread's CPU time now, estimated as described on the type: for the thread that took
    /// the reading, a moment after it.
    pub fn now_estimate(&self) -> Duration {
        self.thread_cpu + self.at.elapsed()
    }
}

/// A compiled, linked guest, ready to run. Cheap to clone; every [`Guest::run`] gets a fresh
/// store and instance, so nothing a call does is visible to the next.
#[derive(Clone)]
pub struct Guest {
    inner: Arc<GuestInner>,
}

struct GuestInner {
    name: String,
    sha256: String,
    engine: Engine,
    pre: InstancePre<CallState>,
    options: GuestOptions,
    /// Shared by every module of one [`crate::ModuleHost`]; a guest's own otherwise.
    slots: Arc<Slots>,
    max_wasm_stack: usize,
    max_memory_bytes: usize,
    max_table_elements: usize,
    fuel_metering: bool,
    /// Whether the code checks the epoch; see [`crate::ModuleHostConfig::epoch_interruption`].
    epoch_interruption: bool,
    /// Whether a memory fault below address 0 is this guest running out of its C stack
    /// ([`faulted_below_address_zero`]): true for the interpreters this project builds,
    /// which are linked with the stack first; not for compiled user modules, where it may
    /// as well be a wild pointer.
    stack_first: bool,
    lower_priority_after: Option<Duration>,
    /// Keeps the epoch ticker running while any guest is alive; lowers the long calls of a
    /// guest without epoch checks.
    registry: Arc<EngineRegistry>,
}

/// The store data of one call.
pub(crate) struct CallState {
    wasi: WasiP1Ctx,
    /// What `fd_read` and `fd_write` serve without `wasi` while they can ([`crate::stdio`]).
    pub(crate) stdio: Stdio,
    limiter: CallLimiter,
    /// Dropped with the store, on the calling thread, which restores its priority.
    priority: CallPriority,
    /// Where `zeval.call` parks its requests (`None`: the call has no host to call).
    host_exchange: SharedExchange,
    /// The last answer to `zeval.call`, until `zeval.answer` copies it.
    host_answer: Vec<u8>,
    /// The largest request or answer of `zeval.call` ([`Limits::max_input_bytes`]).
    max_host_request_bytes: usize,
    /// Time the guest spent asleep in `poll_oneoff`, and since when it sleeps now: its own
    /// use of its time, as its CPU time is ([`SandboxError::after_running`]).
    slept: Duration,
    sleeping_since: Option<Instant>,
}

impl CallState {
    pub(crate) fn wasi_mut(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }

    /// Notes that the guest starts waiting in `poll_oneoff`.
    pub(crate) fn start_sleeping(&mut self) {
        self.sleeping_since = Some(Instant::now());
    }

    /// Notes that the guest's wait in `poll_oneoff` ended.
    pub(crate) fn stop_sleeping(&mut self) {
        if let Some(since) = self.sleeping_since.take() {
            self.slept += since.elapsed();
        }
    }

    /// All the time the guest slept in `poll_oneoff`, a sleep still going on included (a
    /// call cut at its deadline in the middle of one).
    fn time_asleep(&self) -> Duration {
        self.slept
            + self
                .sleeping_since
                .map_or(Duration::ZERO, |since| since.elapsed())
    }

    pub(crate) fn host_exchange(&self) -> SharedExchange {
        self.host_exchange.clone()
    }

    pub(crate) fn max_host_request_bytes(&self) -> usize {
        self.max_host_request_bytes
    }

    pub(crate) fn set_host_answer(&mut self, answer: Vec<u8>) {
        self.host_answer = answer;
    }

    pub(crate) fn take_host_answer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.host_answer)
    }
}

pub(crate) struct GuestParts {
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<CallState>,
    pub(crate) options: GuestOptions,
    pub(crate) slots: Arc<Slots>,
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_bytes: usize,
    pub(crate) max_table_elements: usize,
    pub(crate) fuel_metering: bool,
    pub(crate) epoch_interruption: bool,
    pub(crate) stack_first: bool,
    pub(crate) lower_priority_after: Option<Duration>,
    pub(crate) registry: Arc<EngineRegistry>,
}

/// WASI preview 1 and the `zeval` host-call imports ([`crate::host_call`]).
pub(crate) fn add_wasi_to_linker(linker: &mut wasmtime::Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, |state: &mut CallState| &mut state.wasi)?;
    crate::wasi_bounds::bound_poll_oneoff(linker)?;
    crate::stdio::serve_stdio_directly(linker)?;
    crate::host_call::add_to_linker(linker)
}

impl Guest {
    pub(crate) fn from_parts(parts: GuestParts) -> Self {
        Self {
            inner: Arc::new(GuestInner {
                name: parts.name,
                sha256: parts.sha256,
                engine: parts.engine,
                pre: parts.pre,
                options: parts.options,
                slots: parts.slots,
                max_wasm_stack: parts.max_wasm_stack,
                max_memory_bytes: parts.max_memory_bytes,
                max_table_elements: parts.max_table_elements,
                fuel_metering: parts.fuel_metering,
                epoch_interruption: parts.epoch_interruption,
                stack_first: parts.stack_first,
                lower_priority_after: parts.lower_priority_after,
                registry: parts.registry,
            }),
        }
    }

    /// The name the guest was loaded under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Hex sha256 of the guest's `.wasm` as loaded.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Runs the guest's `_start` once with `stdin` as its standard input, in a fresh store
    /// and instance, under `limits`. Blocks the calling thread (call it from a blocking
    /// context such as `tokio::task::spawn_blocking`, not from inside an async task); the
    /// wasm runs on its own fiber stack, so the caller's stack size does not matter.
    ///
    /// Exit status 0 is success. A trap, a non-zero exit status or any limit is an error;
    /// partial output is dropped with it.
    ///
    /// [`Limits::wall_time`] covers the whole call from here: waiting for a pool slot, then
    /// instantiating and running, against one deadline measured with the real clock.
    ///
    /// The guest's `zeval.call` answers "no host" (see [`crate::host_call`]).
    pub fn run(&self, stdin: &[u8], limits: &Limits) -> Result<RunOutput, SandboxError> {
        self.run_with(stdin, limits, None)
    }

    /// [`Guest::run`], with `host` answering the guest's `zeval.call` requests on this
    /// thread while the guest waits (see [`crate::host_call`]). The deadline covers the
    /// handler's work too; its CPU time is left out of [`RunOutput::cpu_time`].
    pub fn run_with(
        &self,
        stdin: &[u8],
        limits: &Limits,
        host: Option<&mut dyn HostCalls>,
    ) -> Result<RunOutput, SandboxError> {
        let (output, pending) = self.run_resetting_later(stdin, limits, host);
        // Reset here, before the answer goes back, unless the caller answers first
        // (`crate::answer_first`).
        if let Some(pending) = pending {
            crate::answer_first::keep_or_reset(pending);
        }
        output
    }

    /// [`Guest::run_with`], leaving the reset of the call's instance (wasmtime copies its
    /// dirty pages back from the snapshot: about a fifth of a trivial CPython call) to
    /// whenever the returned [`PendingReset`] is dropped, so that a caller can send the
    /// answer first. The pool slot stays taken until then, so the instances alive at once
    /// are still at most the pool's capacity; nothing of the call is reused.
    pub fn run_resetting_later(
        &self,
        stdin: &[u8],
        limits: &Limits,
        mut host: Option<&mut dyn HostCalls>,
    ) -> (Result<RunOutput, SandboxError>, Option<PendingReset>) {
        // A reset left waiting on this thread by `crate::answer_first` is done before this call
        // takes a slot: at most one waits per thread.
        crate::answer_first::reset_waiting();
        let called = Instant::now();
        let wall_time = limits.wall_time;
        let deadline = called + wall_time;
        if let Err(error) = self.check_limits(stdin, limits) {
            return (Err(error), None);
        }
        let Some((slot, reserved)) = self.inner.slots.acquire(deadline) else {
            let busy = SandboxError::Busy {
                guest: self.inner.name.clone(),
                capacity: self.inner.slots.capacity,
                waited: called.elapsed(),
            };
            return (Err(busy), None);
        };
        let started = Instant::now();
        // A call in a reserve slot runs at most the reserve's time, and its timeout says so.
        let cut;
        let in_reserve = matches!(reserved, Some(time) if started + time < deadline);
        let (limits, deadline) = match reserved {
            Some(time) if in_reserve => {
                cut = Limits {
                    wall_time: time,
                    ..limits.clone()
                };
                (&cut, started + time)
            }
            _ => (limits, deadline),
        };
        // Until the call's outcome is known: its deadline is checked on the ticker's ticks.
        let _running = self.inner.registry.running();
        let _watch = if self.inner.epoch_interruption {
            None
        } else {
            self.inner
                .registry
                .watchlist
                .watch(started, self.inner.lower_priority_after)
        };
        let cpu_started = thread_cpu_time();
        let stdout = CappedPipe::new(limits.max_output_bytes);
        let stderr = CappedPipe::new(limits.max_output_bytes);
        let exchange: SharedExchange = host.is_some().then(Default::default);
        let mut store = match self.new_store(stdin, limits, deadline, started, &stdout, &stderr) {
            Ok(store) => store,
            Err(error) => return (Err(error), None),
        };
        store.data_mut().host_exchange = exchange.clone();
        let fuel_limit = limits.fuel.unwrap_or(u64::MAX);

        let pre = &self.inner.pre;
        let mut handler_cpu = Duration::ZERO;
        let mut handler_wall = Duration::ZERO;
        let outcome = {
            let call = async {
                let instance = pre.instantiate_async(&mut store).await?;
                let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                start.call_async(&mut store, ()).await
            };
            let mut call = std::pin::pin!(call);
            loop {
                let step = crate::block_on::block_on_until(
                    deadline,
                    Step {
                        call: call.as_mut(),
                        exchange: exchange.as_deref(),
                    },
                );
                match step {
                    None => break None,
                    Some(Stepped::Done(result)) => break Some(result),
                    Some(Stepped::HostCall(request)) => {
                        let (Some(host), Some(exchange)) = (host.as_deref_mut(), &exchange) else {
                            break Some(Err(wasmtime::Error::msg("a host call without a host")));
                        };
                        // The handler runs here, outside the guest's fiber and the executor;
                        // its CPU time is its own, not the guest's.
                        let handler_started = thread_cpu_time();
                        let handler_called = Instant::now();
                        let answer = host.call(&request, deadline);
                        handler_cpu += thread_cpu_time().saturating_sub(handler_started);
                        handler_wall += handler_called.elapsed();
                        host_call::put_answer(exchange, answer);
                        if Instant::now() >= deadline {
                            break None;
                        }
                    }
                }
            }
        };
        let ended = ThreadClockReading {
            thread_cpu: thread_cpu_time(),
            at: Instant::now(),
        };
        let duration = ended.at - started;
        let cpu_time = ended
            .thread_cpu
            .saturating_sub(cpu_started)
            .saturating_sub(handler_cpu);
        let fuel_consumed = if self.inner.fuel_metering {
            store.get_fuel().ok().map(|left| fuel_limit - left)
        } else {
            None
        };
        let asleep = store.data().time_asleep();
        let limiter = &store.data().limiter;
        let peak_memory_bytes = limiter.peak_memory as u64;
        let memory_limit_hit = limiter.memory_limit_hit;
        let pending = PendingReset {
            _store: store,
            _slot: slot,
        };

        let result = match outcome {
            None => Err(SandboxError::Timeout {
                limit: limits.wall_time,
            }),
            Some(Ok(())) => Ok(()),
            Some(Err(error)) => self.classify(error, limits, memory_limit_hit, &stdout, &stderr),
        };
        // A timeout is the code's own only when the code had its time: cut by the reserve,
        // or after waiting a tenth of its time or more for a slot, it is the load's.
        let waited = started.saturating_duration_since(called);
        let result = match result {
            Err(SandboxError::Timeout { limit }) if in_reserve => {
                Err(SandboxError::ReserveTimeout { limit })
            }
            result => result.map_err(|error| {
                error
                    .after_waiting(
                        waited,
                        wall_time,
                        || self.inner.name.clone(),
                        self.inner.slots.capacity,
                    )
                    .after_running(cpu_time + asleep, duration.saturating_sub(handler_wall))
            }),
        };
        let output = result.map(|()| RunOutput {
            stdout: stdout.take(),
            stderr: stderr.take(),
            fuel_consumed,
            peak_memory_bytes,
            duration,
            cpu_time,
            ended: Some(ended),
        });
        (output, Some(pending))
    }

    fn check_limits(&self, stdin: &[u8], limits: &Limits) -> Result<(), SandboxError> {
        if stdin.len() > limits.max_input_bytes {
            return Err(SandboxError::InputLimit {
                limit: limits.max_input_bytes,
            });
        }
        if limits.memory_bytes > self.inner.max_memory_bytes {
            return Err(SandboxError::InvalidLimits(format!(
                "memory_bytes {} is above the pool slot size of {} bytes",
                limits.memory_bytes, self.inner.max_memory_bytes
            )));
        }
        if limits.fuel.is_some() && !self.inner.fuel_metering {
            return Err(SandboxError::InvalidLimits(
                "a fuel limit needs fuel_metering in the sandbox configuration".to_owned(),
            ));
        }
        Ok(())
    }

    /// The call's WASI context and store: see [`MAX_RANDOM_BYTES`] for what the host may
    /// allocate on the guest's behalf in one `random_get`.
    fn new_store(
        &self,
        stdin: &[u8],
        limits: &Limits,
        deadline: Instant,
        started: Instant,
        stdout: &CappedPipe,
        stderr: &CappedPipe,
    ) -> Result<Store<CallState>, SandboxError> {
        let stdin = MemoryInputPipe::new(stdin.to_vec());
        let mut wasi = WasiCtxBuilder::new();
        // argv[0] only; no environment, no preopens, no sockets (WASI preview 1 cannot open
        // any), no name lookup. Clocks and randomness are wasmtime-wasi's defaults (see the
        // crate docs).
        wasi.arg(&self.inner.name)
            .stdin(stdin.clone())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES);
        if let Some((host, guest)) = &self.inner.options.preopen_readonly {
            // File reads then run inline instead of on tokio's blocking pool (an interpreter
            // loading its stdlib does thousands). This also makes a sleep block the thread
            // past the wall-time limit, which is acceptable for benchmark-only guests and
            // why it is not on by default.
            wasi.allow_blocking_current_thread(true);
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| SandboxError::Setup(format!("preopen {}: {e:#}", host.display())))?;
        }
        for (key, value) in &self.inner.options.env {
            wasi.env(key, value);
        }
        let state = CallState {
            wasi: wasi.build_p1(),
            stdio: Stdio::new(stdin, stdout.clone(), stderr.clone()),
            limiter: CallLimiter::new(limits.memory_bytes, self.inner.max_table_elements),
            priority: CallPriority::new(started, self.inner.lower_priority_after),
            host_exchange: None,
            host_answer: Vec::new(),
            max_host_request_bytes: limits.max_input_bytes,
            slept: Duration::ZERO,
            sleeping_since: None,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        if self.inner.fuel_metering {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| SandboxError::Setup(format!("set fuel: {e:#}")))?;
        }
        if self.inner.epoch_interruption {
            // Epochs are the cheap interruption: wasm only checks a counter. Each tick then
            // asks the real clock, because ticks stretch when the ticker thread is starved of
            // CPU.
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |mut context| {
                if Instant::now() >= deadline {
                    return Ok(UpdateDeadline::Interrupt);
                }
                context.data_mut().priority.lower_if_due();
                Ok(UpdateDeadline::Continue(1))
            });
        }
        Ok(store)
    }

    fn classify(
        &self,
        error: wasmtime::Error,
        limits: &Limits,
        memory_limit_hit: bool,
        stdout: &CappedPipe,
        stderr: &CappedPipe,
    ) -> Result<(), SandboxError> {
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return match exit.0 {
                0 => Ok(()),
                code => Err(SandboxError::Trap(format!(
                    "exit status {code}{}",
                    stderr_tail(&stderr.take())
                ))),
            };
        }
        // The flags are checked first: the error that reaches us may be a secondary one
        // (e.g. the guest aborting after a failed write).
        if stdout.overflowed() || stderr.overflowed() {
            return Err(SandboxError::OutputLimit {
                limit: limits.max_output_bytes,
            });
        }
        if memory_limit_hit {
            return Err(SandboxError::MemoryLimit {
                limit: limits.memory_bytes,
            });
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Err(SandboxError::Timeout {
                limit: limits.wall_time,
            }),
            Some(Trap::OutOfFuel) => Err(SandboxError::OutOfFuel {
                limit: limits.fuel.unwrap_or(u64::MAX),
            }),
            Some(Trap::StackOverflow) => Err(SandboxError::StackOverflow {
                limit: self.inner.max_wasm_stack,
            }),
            Some(Trap::MemoryOutOfBounds)
                if self.inner.stack_first && faulted_below_address_zero(&error) =>
            {
                Err(SandboxError::StackOverflow {
                    limit: self.inner.max_wasm_stack,
                })
            }
            trap => {
                // The message names the trap (or the innermost cause) only: the full chain
                // carries a wasm backtrace, which is for the log, not for callers.
                tracing::debug!(guest = %self.inner.name, "guest trapped: {error:?}");
                let cause = match trap {
                    Some(trap) => trap.to_string(),
                    None => error.root_cause().to_string(),
                };
                Err(SandboxError::Trap(format!(
                    "{cause}{}",
                    stderr_tail(&stderr.take())
                )))
            }
        }
    }
}

/// Whether `error` is a memory fault at a wasm address that wrapped below zero: a guest
/// compiled by clang keeps its C stack ("shadow stack") in linear memory, below its data
/// (`--stack-first`, which both interpreters are linked with: their `__stack_pointer` starts
/// at 4 and 8 MiB, their data just above), so a call that runs out of it writes below 0,
/// which wraps to the top of the 32-bit space and traps. QuickJS does not check its own
/// stack on WASI (`update_stack_limit` sets no limit there), so a deep recursion of JS
/// functions with large frames ends this way; it is the stack limit, and is reported as
/// such. wasmtime records the fault only as the text of a context in the error's chain
/// (its `WasmFault` is private); `sandbox::tests` pins the text.
fn faulted_below_address_zero(error: &wasmtime::Error) -> bool {
    /// How far below zero a frame may have reached: a C frame larger than this would be
    /// a guest that allocates megabytes on its stack at once.
    const WRAPPED_FROM: u64 = (1 << 32) - (64 << 20);
    error.chain().any(|cause| {
        let text = cause.to_string();
        let Some(rest) = text.strip_prefix("memory fault at wasm address 0x") else {
            return false;
        };
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        u64::from_str_radix(&hex, 16).is_ok_and(|address| address >= WRAPPED_FROM)
    })
}

/// What one step of a call's driver ended with.
enum Stepped<T> {
    /// The call finished.
    Done(T),
    /// The guest parked a `zeval.call` request and waits for its answer.
    HostCall(Vec<u8>),
}

/// Polls the call until it finishes or parks a host-call request.
struct Step<'a, F> {
    call: std::pin::Pin<&'a mut F>,
    exchange: Option<&'a std::sync::Mutex<host_call::Exchange>>,
}

impl<F: std::future::Future> std::future::Future for Step<'_, F> {
    type Output = Stepped<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let std::task::Poll::Ready(output) = self.call.as_mut().poll(context) {
            return std::task::Poll::Ready(Stepped::Done(output));
        }
        match self.exchange.and_then(host_call::take_request) {
            Some(request) => std::task::Poll::Ready(Stepped::HostCall(request)),
            None => std::task::Poll::Pending,
        }
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn stderr_tail(stderr: &[u8]) -> String {
    if stderr.is_empty() {
        return String::new();
    }
    let start = stderr.len().saturating_sub(STDERR_TAIL_BYTES);
    format!(
        "; stderr: {}",
        String::from_utf8_lossy(&stderr[start..]).trim_end()
    )
}

/// A finished call's instance and pool slot ([`Guest::run_resetting_later`]): dropping it
/// resets the instance's memory and frees the slot.
pub struct PendingReset {
    // Dropped first: the store gives its instance back to the pool, then the slot is freed.
    _store: Store<CallState>,
    _slot: SlotGuard,
}

impl std::fmt::Debug for PendingReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReset")
    }
}

/// A counting semaphore over the guest's pool slots, with a reserve for when every slot holds
/// a long call ([`crate::PoolConfig::reserve_instances`]).
pub(crate) struct Slots {
    pub(crate) capacity: usize,
    reserve: SlotReserve,
    held: Mutex<HeldSlots>,
    freed: Condvar,
}

/// The slots taken, under the lock of [`Slots`].
#[derive(Default)]
struct HeldSlots {
    /// Each call holding a slot, and when it took it, in that order.
    calls: Vec<(u64, Instant)>,
    next_id: u64,
}

/// The reserve of a [`Slots`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotReserve {
    /// Slots beyond the capacity (0: none).
    pub(crate) slots: usize,
    /// How long a call must have run to count as long.
    pub(crate) long_after: Duration,
    /// The longest a call in a reserve slot may run.
    pub(crate) call_time: Duration,
}

impl SlotReserve {
    /// No reserve.
    pub(crate) const NONE: SlotReserve = SlotReserve {
        slots: 0,
        long_after: Duration::ZERO,
        call_time: Duration::ZERO,
    };

    /// The reserve `pool` configures, calls counting as long after `lower_priority_after`
    /// (10 ms when unset).
    pub(crate) fn of(pool: &crate::PoolConfig, lower_priority_after: Option<Duration>) -> Self {
        SlotReserve {
            slots: pool.reserve_instances as usize,
            long_after: lower_priority_after.unwrap_or(crate::DEFAULT_LOWER_PRIORITY_AFTER),
            call_time: pool.reserve_call_time,
        }
    }
}

/// A slot taken, given back when dropped.
struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
}

impl Slots {
    pub(crate) fn new(capacity: usize, reserve: SlotReserve) -> Self {
        Self {
            capacity,
            reserve,
            held: Mutex::new(HeldSlots::default()),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting for one until `deadline` at the latest; and, when it is a
    /// reserve slot, the longest the call may run.
    fn acquire(self: &Arc<Self>, deadline: Instant) -> Option<(SlotGuard, Option<Duration>)> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            let in_use = held.calls.len();
            let reserved = in_use >= self.capacity;
            let reserve_left = in_use < self.capacity + self.reserve.slots;
            let reserve_open = reserved
                && reserve_left
                && held
                    .calls
                    .iter()
                    .filter(|(_, since)| {
                        now.saturating_duration_since(*since) >= self.reserve.long_after
                    })
                    .count()
                    >= self.capacity;
            if !reserved || reserve_open {
                let id = held.next_id;
                held.next_id += 1;
                held.calls.push((id, now));
                let guard = SlotGuard {
                    slots: Arc::clone(self),
                    id,
                };
                return Some((guard, reserved.then_some(self.reserve.call_time)));
            }
            let mut left = deadline.checked_duration_since(now)?;
            // Calls turn long with time alone, and nobody is woken for that: wake when the
            // `capacity`-th call (the last of them to turn long) does.
            if reserve_left
                && let Some((_, since)) = held.calls.get(self.capacity.saturating_sub(1))
                && let Some(opens_in) =
                    (*since + self.reserve.long_after).checked_duration_since(now)
            {
                left = left.min(opens_in);
            }
            held = self
                .freed
                .wait_timeout(held, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .calls
            .retain(|(id, _)| *id != self.id);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_end() {
        let long = vec![b'x'; STDERR_TAIL_BYTES + 10];
        assert_eq!(
            stderr_tail(&long).len(),
            "; stderr: ".len() + STDERR_TAIL_BYTES
        );
        assert_eq!(stderr_tail(b""), "");
    }

    #[test]
    fn slots_block_when_full_and_free_on_drop() {
        let soon = || Instant::now() + Duration::from_millis(10);
        let slots = Arc::new(Slots::new(1, SlotReserve::NONE));
        let first = slots.acquire(soon()).unwrap();
        assert!(slots.acquire(soon()).is_none());
        drop(first);
        assert!(slots.acquire(soon()).is_some());
    }
}
