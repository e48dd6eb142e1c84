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

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker, Module};

use crate::engine::{EngineOptions, EngineRegistry, build_engine_with};
use crate::guest::{GuestParts, SlotReserve, Slots, add_wasi_to_linker};
use crate::{Guest, GuestOptions, SandboxConfig, SandboxError};

/// The name the shared engine is built under (and its pool's keep-resident entry).
pub const MODULE_ENGINE_NAME: &str = "compiled";

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
        let guest = self.compile(key, wasm)?;
        let mut loaded = self.lock();
        if !loaded.iter().any(|(loaded_key, _)| loaded_key == key) {
            loaded.push((key.to_owned(), guest.clone()));
            let excess = loaded
                .len()
                .saturating_sub(self.inner.config.max_loaded.max(1));
            loaded.drain(..excess);
        }
        Ok(guest)
    }

    /// How many modules are compiled in memory.
    pub fn loaded(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Guest)>> {
        self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn compile(&self, key: &str, wasm: &[u8]) -> Result<Guest, SandboxError> {
        let inner = &self.inner;
        let name = format!("module-{}", key.get(..16).unwrap_or(key));
        let load_error = |e: wasmtime::Error| SandboxError::Load {
            guest: name.clone(),
            message: format!("{e:#}"),
        };
        let sha256 = hex::encode(Sha256::digest(wasm));
        let module = if inner.config.disk_cache {
            crate::cache::load_module(
                &inner.engine,
                &inner.sandbox.cache_dir,
                &name,
                &sha256,
                || Ok(std::borrow::Cow::Borrowed(wasm)),
            )?
        } else {
            Module::new(&inner.engine, wasm).map_err(load_error)?
        };
        crate::images::prepare(&module).map_err(load_error)?;
        let mut linker = Linker::new(&inner.engine);
        add_wasi_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(&module).map_err(load_error)?;
        let pool = &inner.sandbox.pool;
        Ok(Guest::from_parts(GuestParts {
            name,
            sha256,
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
