//! Compiled programs (C, Rust): many small modules, each an artifact of one implementation,
//! sharing one engine and one instance pool.
//!
//! An interpreter guest has an engine of its own, sized for it. A compiled module is one of
//! arbitrarily many (one per implementation), so giving each its own engine would reserve a
//! pool's address space per implementation. Instead a [`ModuleHost`] owns one engine whose
//! pool ([`crate::PoolConfig::max_instances`] slots, the same sizing as a guest's) every module
//! shares; a call waits for a free slot as a guest call does.
//!
//! Loaded modules are kept in a bounded most-recently-used list
//! ([`ModuleHostConfig::max_loaded`], default 64): compiled code is native code in memory
//! (a few hundred KiB per module), and the set of implementations is unbounded.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker, Module};

use crate::engine::{EngineOptions, EngineRegistry, build_engine_with};
use crate::guest::{GuestParts, SlotReserve, Slots, add_wasi_to_linker};
use crate::{Guest, GuestOptions, SandboxConfig, SandboxError};

/// The name the shared engine is built under (and its pool's keep-resident entry).
pub const MODULE_ENGINE_NAME: &str = "compiled";

/// Modules [`ModuleHost::load_within`] compiles at once, each on a thread of its own.
/// Cranelift cannot be stopped part-way, so a compilation outlives a call that stopped
/// waiting for it at its deadline (and its module is kept for the next call): this bounds
/// what such compilations take of the machine to one core (with
/// [`ModuleHostConfig::parallel_compilation`] off, as the evaluator's in-process host has
/// it). A call that finds it taken waits, within its deadline, unless it needs the module
/// being compiled, or the module is in the disk cache (loaded at once, without the slot).
pub const MAX_COMPILATIONS_AT_ONCE: usize = 1;

/// How a [`ModuleHost`] compiles and keeps modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleHostConfig {
    /// Most modules kept compiled in memory; the least recently used is dropped beyond it.
    /// Default 64.
    pub max_loaded: usize,
    /// Keep precompiled modules in [`SandboxConfig::cache_dir`] (verified before use, as the
    /// guests' are). Off in a confined worker, which can open no file: it compiles in memory.
    pub disk_cache: bool,
    /// Let Cranelift compile on a thread pool. Off in a confined worker, which can start no
    /// thread.
    pub parallel_compilation: bool,
    /// Count fuel in compiled modules. Default off: compiled code is what metering slows
    /// most (every basic block updates the counter), and the wall-time deadline (epoch
    /// interruption) bounds a call without it. With it off, a call reports no fuel and a
    /// [`crate::Limits::fuel`] is refused as for a guest without metering.
    pub fuel_metering: bool,
    /// Compile epoch checks into the modules. Default on: they are how a call stops at its
    /// [`crate::Limits::wall_time`] in this process. They cost a compiled program about a
    /// third of its time where it makes many small calls (fib(27): 0.88 ms against 0.68 ms
    /// without, on this kind of machine), which is why a confined worker turns them off:
    /// its parent kills it at the call's deadline, a wall the guest cannot get round. **Off
    /// only where something outside the process enforces the deadline that way**: nothing
    /// inside it can stop such a call (a guest blocked in a host call such as a sleep is
    /// still woken at the deadline). Long calls are then lowered in priority by the epoch
    /// ticker thread instead of by the call itself.
    pub epoch_interruption: bool,
}

impl Default for ModuleHostConfig {
    fn default() -> Self {
        Self {
            max_loaded: 64,
            disk_cache: true,
            parallel_compilation: true,
            fuel_metering: false,
            epoch_interruption: true,
        }
    }
}

/// One engine and pool for every compiled module. Cheap to clone.
#[derive(Clone)]
pub struct ModuleHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    sandbox: Arc<SandboxConfig>,
    config: ModuleHostConfig,
    engine: Engine,
    slots: Arc<Slots>,
    registry: Arc<EngineRegistry>,
    /// Most recently used last.
    loaded: Mutex<Vec<(String, Guest)>>,
    /// The compilations [`ModuleHost::load_within`] started and that have not ended, by key.
    compiling: Mutex<HashMap<String, Arc<Compilation>>>,
    /// Signalled when one of them ends.
    compiled: Condvar,
}

/// A compilation on its own thread, and its outcome once it ends.
#[derive(Default)]
struct Compilation {
    outcome: Mutex<Option<Result<Guest, CompileFailure>>>,
    ended: Condvar,
}

/// Why a compilation on its own thread gave no module: the module's doing, or the server's
/// (the cache, a panic), which is not reported as the module failing to load.
#[derive(Clone)]
enum CompileFailure {
    Module(String),
    Server(String),
}

/// The hex SHA-256 of a module's bytes (its disk-cache name and the guest's digest).
fn sha256_of(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// The name a module's errors give it.
fn module_name(key: &str) -> String {
    format!("module-{}", key.get(..16).unwrap_or(key))
}

impl ModuleHost {
    pub(crate) fn new(
        sandbox: Arc<SandboxConfig>,
        registry: Arc<EngineRegistry>,
        config: ModuleHostConfig,
    ) -> Result<Self, SandboxError> {
        // Compiled programs have small data segments, so they are copied into each instance
        // rather than mapped copy-on-write: that needs no memfd per module, which a
        // confined worker could not create.
        let mut engine_config = (*sandbox).clone();
        engine_config.fuel_metering = config.fuel_metering;
        let engine = build_engine_with(
            &engine_config,
            MODULE_ENGINE_NAME,
            EngineOptions {
                parallel_compilation: config.parallel_compilation,
                copy_on_write_images: false,
                epoch_interruption: config.epoch_interruption,
            },
        )?;
        registry.register(&engine);
        if !config.epoch_interruption {
            // Now, before a worker confines itself (the ticker signals long calls to lower
            // themselves; see the priority module).
            crate::priority::install_lowering_handler()
                .map_err(|e| SandboxError::Setup(format!("the lowering signal's handler: {e}")))?;
        }
        let (capacity, reserve) = if sandbox.pool.enabled {
            (
                sandbox.pool.max_instances.max(1) as usize,
                SlotReserve::of(&sandbox.pool, sandbox.lower_priority_after),
            )
        } else {
            (usize::MAX, SlotReserve::NONE)
        };
        Ok(Self {
            inner: Arc::new(HostInner {
                sandbox,
                config,
                engine,
                slots: Arc::new(Slots::new(capacity, reserve)),
                registry,
                loaded: Mutex::new(Vec::new()),
                compiling: Mutex::new(HashMap::new()),
                compiled: Condvar::new(),
            }),
        })
    }

    /// The module loaded under `key`, if it is still in memory.
    pub fn get(&self, key: &str) -> Option<Guest> {
        let mut loaded = self.lock();
        let position = loaded
            .iter()
            .position(|(loaded_key, _)| loaded_key == key)?;
        let entry = loaded.remove(position);
        let guest = entry.1.clone();
        loaded.push(entry);
        Some(guest)
    }

    /// The module `key` (an artifact key: the caller vouches that the same key always means
    /// the same bytes), compiling `wasm` when it is not in memory. A module that needs more
    /// than its standard streams fails to link ([`SandboxError::Load`]).
    pub fn load(&self, key: &str, wasm: &[u8]) -> Result<Guest, SandboxError> {
        if let Some(guest) = self.get(key) {
            return Ok(guest);
        }
        let guest = self.compile(key, wasm, &sha256_of(wasm))?;
        self.keep(key, &guest);
        Ok(guest)
    }

    /// [`ModuleHost::load`] by `deadline`: a module not in memory is compiled on a thread of
    /// its own (at most [`MAX_COMPILATIONS_AT_ONCE`] at once, calls needing the same module
    /// waiting for the one compilation), and the call stops waiting at `deadline` with
    /// [`SandboxError::Timeout`] (`limit` names the call's time limit); the compilation
    /// goes on and keeps its module for the next call. For a process that runs calls on
    /// its own threads: without it a large module (an artifact is up to 32 MiB of wasm)
    /// held a call for as long as Cranelift took, whatever its deadline. (A confined worker
    /// can start no thread; it uses [`ModuleHost::load`], and its parent kills it at the
    /// deadline.)
    pub fn load_within(
        &self,
        key: &str,
        wasm: &Arc<[u8]>,
        deadline: Instant,
        limit: std::time::Duration,
    ) -> Result<Guest, SandboxError> {
        if let Some(guest) = self.get(key) {
            return Ok(guest);
        }
        // A module compiled before is only read back: no need to wait for the slot behind
        // someone else's long compilation.
        // Only a verified copy is read back here: until 2026-12-06 a `.cwasm` that merely
        // existed (its manifest entry missing: a writer between its two renames, a crash) sent
        // the call to compile on its own thread, outside the slot and past its deadline.
        let sha256 = sha256_of(wasm);
        if self.inner.config.disk_cache
            && let Some(module) = crate::cache::read_back(
                &self.inner.engine,
                &self.inner.sandbox.cache_dir,
                &module_name(key),
                &sha256,
            )
        {
            let guest = self.guest_of(key, &module, &sha256)?;
            self.keep(key, &guest);
            return Ok(guest);
        }
        let timeout = || SandboxError::Timeout { limit };
        let compilation = {
            let mut compiling = self.compiling();
            loop {
                if let Some(compilation) = compiling.get(key) {
                    break Arc::clone(compilation);
                }
                if let Some(guest) = self.get(key) {
                    return Ok(guest);
                }
                if compiling.len() < MAX_COMPILATIONS_AT_ONCE {
                    let compilation = Arc::new(Compilation::default());
                    compiling.insert(key.to_owned(), Arc::clone(&compilation));
                    if let Err(e) = self.spawn_compilation(key, wasm, sha256.clone(), &compilation)
                    {
                        compiling.remove(key);
                        return Err(e);
                    }
                    break compilation;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timeout());
                }
                compiling = self
                    .inner
                    .compiled
                    .wait_timeout(compiling, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        let mut outcome = compilation
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return outcome.clone().map_err(|failure| match failure {
                    CompileFailure::Module(message) => SandboxError::Load {
                        guest: module_name(key),
                        message,
                    },
                    CompileFailure::Server(message) => SandboxError::Setup(message),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout());
            }
            outcome = compilation
                .ended
                .wait_timeout(outcome, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Starts compiling `wasm` on a thread; it records the outcome in `compilation` (a
    /// panic too, so that no key stays "compiling" for ever), keeps the module, and leaves
    /// the set of compilations in flight.
    fn spawn_compilation(
        &self,
        key: &str,
        wasm: &Arc<[u8]>,
        sha256: String,
        compilation: &Arc<Compilation>,
    ) -> Result<(), SandboxError> {
        let host = self.clone();
        let key_owned = key.to_owned();
        let wasm = Arc::clone(wasm);
        let compilation_owned = Arc::clone(compilation);
        let spawned = std::thread::Builder::new()
            .name("zeval-module-compile".into())
            .spawn(move || {
                let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    host.compile(&key_owned, &wasm, &sha256)
                }));
                let outcome = match compiled {
                    Ok(Ok(guest)) => Ok(guest),
                    Ok(Err(SandboxError::Load { message, .. })) => {
                        Err(CompileFailure::Module(message))
                    }
                    Ok(Err(other)) => Err(CompileFailure::Server(other.to_string())),
                    Err(_) => Err(CompileFailure::Server(
                        "compiling the module panicked".to_owned(),
                    )),
                };
                if let Ok(guest) = &outcome {
                    host.keep(&key_owned, guest);
                }
                *compilation_owned
                    .outcome
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(outcome);
                compilation_owned.ended.notify_all();
                host.compiling().remove(&key_owned);
                host.inner.compiled.notify_all();
            });
        spawned
            .map(drop)
            .map_err(|e| SandboxError::Setup(format!("a thread to compile a module: {e}")))
    }

    fn compiling(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Compilation>>> {
        self.inner
            .compiling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `guest` as the most recently used module, dropping the least recently used
    /// beyond [`ModuleHostConfig::max_loaded`].
    fn keep(&self, key: &str, guest: &Guest) {
        let mut loaded = self.lock();
        if !loaded.iter().any(|(loaded_key, _)| loaded_key == key) {
            loaded.push((key.to_owned(), guest.clone()));
            let excess = loaded
                .len()
                .saturating_sub(self.inner.config.max_loaded.max(1));
            loaded.drain(..excess);
        }
    }

    /// How many modules are compiled in memory.
    pub fn loaded(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Guest)>> {
        self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compiles (or reads back from the disk cache) `wasm`, whose hex SHA-256 is `sha256`.
    fn compile(&self, key: &str, wasm: &[u8], sha256: &str) -> Result<Guest, SandboxError> {
        let inner = &self.inner;
        let name = module_name(key);
        let load_error = |e: wasmtime::Error| SandboxError::Load {
            guest: name.clone(),
            message: format!("{e:#}"),
        };
        let module = if inner.config.disk_cache {
            crate::cache::load_module(
                &inner.engine,
                &inner.sandbox.cache_dir,
                &name,
                sha256,
                || Ok(std::borrow::Cow::Borrowed(wasm)),
            )?
        } else {
            Module::new(&inner.engine, wasm).map_err(load_error)?
        };
        self.guest_of(key, &module, sha256)
    }

    /// The guest of `module`, compiled from bytes whose hex SHA-256 is `sha256`.
    fn guest_of(&self, key: &str, module: &Module, sha256: &str) -> Result<Guest, SandboxError> {
        let inner = &self.inner;
        let name = module_name(key);
        let load_error = |e: wasmtime::Error| SandboxError::Load {
            guest: name.clone(),
            message: format!("{e:#}"),
        };
        crate::images::prepare(module).map_err(load_error)?;
        let mut linker = Linker::new(&inner.engine);
        add_wasi_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(module).map_err(load_error)?;
        let pool = &inner.sandbox.pool;
        Ok(Guest::from_parts(GuestParts {
            name,
            sha256: sha256.to_owned(),
            engine: inner.engine.clone(),
            pre,
            options: GuestOptions::default(),
            slots: Arc::clone(&inner.slots),
            max_wasm_stack: inner.sandbox.max_wasm_stack,
            max_memory_bytes: if pool.enabled {
                pool.max_memory_bytes
            } else {
                usize::MAX
            },
            max_table_elements: pool.max_table_elements,
            fuel_metering: inner.config.fuel_metering,
            epoch_interruption: inner.config.epoch_interruption,
            // A user's module may be laid out either way, and may write anywhere.
            stack_first: false,
            lower_priority_after: inner.sandbox.lower_priority_after,
            registry: Arc::clone(&inner.registry),
        }))
    }
}
