//! The [`Sandbox`]: configuration, the epoch ticker and guest loading.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker, Module};

use crate::engine::{EngineRegistry, build_engine, start_ticker};
use crate::guest::{GuestParts, SlotReserve, Slots, add_wasi_to_linker};
use crate::{Guest, GuestOptions, ModuleHost, ModuleHostConfig, SandboxConfig, SandboxError};

/// The wasm runtime of zeval. Cheap to clone. Owns the epoch ticker thread (which stops when
/// the sandbox and every guest loaded from it are dropped) and the module cache.
#[derive(Clone)]
pub struct Sandbox {
    config: Arc<SandboxConfig>,
    registry: Arc<EngineRegistry>,
}

impl Sandbox {
    /// Validates `config` and starts the epoch ticker.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        if config.pool.enabled && config.pool.max_instances == 0 {
            return Err(SandboxError::Setup(
                "pool.max_instances must be at least 1".to_owned(),
            ));
        }
        let registry = Arc::new(EngineRegistry::default());
        start_ticker(&registry)?;
        Ok(Self {
            config: Arc::new(config),
            registry,
        })
    }

    /// The configuration this sandbox was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Loads the guest `name` from the module bytes `wasm`, granting it nothing but its
    /// standard streams. Compiles it (or loads the cached compilation) and links it once;
    /// calls then only instantiate.
    pub fn load_guest(&self, name: &str, wasm: &[u8]) -> Result<Guest, SandboxError> {
        self.load_guest_with_options(name, wasm, GuestOptions::default())
    }

    /// A host for compiled modules (see [`ModuleHost`]): one engine and pool for all of them.
    pub fn module_host(&self, config: ModuleHostConfig) -> Result<ModuleHost, SandboxError> {
        ModuleHost::new(Arc::clone(&self.config), Arc::clone(&self.registry), config)
    }

    /// Reads `path` and loads it as [`Sandbox::load_guest`] does.
    pub fn load_guest_file(&self, name: &str, path: &Path) -> Result<Guest, SandboxError> {
        self.load_guest(name, &read_guest_file(path)?)
    }

    /// [`Sandbox::load_guest_file`] for a file whose SHA-256 (hex) the caller knows: for a
    /// process that loads guests another process has read (each worker). The file is read
    /// only when the module cache has no verified precompiled copy of that digest, and then
    /// it must have that digest; a cache hit costs neither the read nor the hash.
    pub fn load_guest_file_with_digest(
        &self,
        name: &str,
        path: &Path,
        sha256: &str,
    ) -> Result<Guest, SandboxError> {
        let read = || {
            let wasm = read_guest_file(path)?;
            let actual = module_digest(&wasm);
            if actual != sha256 {
                return Err(SandboxError::Load {
                    guest: name.to_owned(),
                    message: format!(
                        "{} has the SHA-256 {actual}, not the {sha256:.64} it was loaded for",
                        path.display()
                    ),
                });
            }
            Ok(Cow::Owned(wasm))
        };
        self.load_guest_parts(name, sha256.to_owned(), read, GuestOptions::default())
    }

    /// Like [`Sandbox::load_guest`], with extra grants. **Benchmarks only**: this is how an
    /// interpreter is run without its snapshot (CPython then needs its stdlib preopened).
    pub fn load_guest_with_options(
        &self,
        name: &str,
        wasm: &[u8],
        options: GuestOptions,
    ) -> Result<Guest, SandboxError> {
        let sha256 = module_digest(wasm);
        self.load_guest_parts(name, sha256, || Ok(Cow::Borrowed(wasm)), options)
    }

    /// Loads the guest `name` whose module has the digest `sha256` and the bytes `wasm` gives
    /// (asked for only when the module cache lacks it).
    fn load_guest_parts<'w>(
        &self,
        name: &str,
        sha256: String,
        wasm: impl FnOnce() -> Result<Cow<'w, [u8]>, SandboxError>,
        options: GuestOptions,
    ) -> Result<Guest, SandboxError> {
        let cache_dir = &self.config.cache_dir;
        let module =
            |engine: &Engine| crate::cache::load_module(engine, cache_dir, name, &sha256, wasm);
        self.link_guest(name, sha256.clone(), module, options)
    }

    /// Compiles the guest `name` from the file `path` for this sandbox's configuration (or
    /// takes its verified compilation from the module cache) and seals the compiled code in a
    /// memfd for [`Sandbox::load_guest_sealed`] in other processes with the same
    /// configuration; the file's SHA-256 (hex) with it.
    pub fn seal_guest_file(
        &self,
        name: &str,
        path: &Path,
    ) -> Result<(String, std::fs::File), SandboxError> {
        let wasm = read_guest_file(path)?;
        let sha256 = module_digest(&wasm);
        let engine = build_engine(&self.config, name)?;
        let (_, compiled) = crate::cache::load_module_keeping_code(
            &engine,
            &self.config.cache_dir,
            name,
            &sha256,
            || Ok(Cow::Borrowed(&wasm)),
        )?;
        let sealed = crate::sealed::seal_precompiled(name, &compiled).map_err(|e| {
            SandboxError::Setup(format!("sealing the compiled {name} in a memfd: {e}"))
        })?;
        Ok((sha256, sealed))
    }

    /// Loads the guest `name` (whose module file has the SHA-256 `sha256`) from `sealed`,
    /// its compiled code as [`Sandbox::seal_guest_file`] sealed it in a process with the same
    /// configuration. The code is mapped, not read; a file without the seals is refused.
    pub fn load_guest_sealed(
        &self,
        name: &str,
        sha256: &str,
        sealed: std::fs::File,
    ) -> Result<Guest, SandboxError> {
        let module = |engine: &Engine| {
            crate::sealed::check_sealed(&sealed).map_err(|reason| SandboxError::Load {
                guest: name.to_owned(),
                message: format!("its precompiled code is refused: {reason}"),
            })?;
            map_sealed(engine, sealed).map_err(|e| SandboxError::Load {
                guest: name.to_owned(),
                message: format!("{e:#}"),
            })
        };
        self.link_guest(name, sha256.to_owned(), module, GuestOptions::default())
    }

    /// Builds the guest `name`'s engine, its module with `module`, and links it.
    fn link_guest(
        &self,
        name: &str,
        sha256: String,
        module: impl FnOnce(&Engine) -> Result<Module, SandboxError>,
        options: GuestOptions,
    ) -> Result<Guest, SandboxError> {
        let engine = build_engine(&self.config, name)?;
        let module = module(&engine)?;
        let load_error = |e: wasmtime::Error| SandboxError::Load {
            guest: name.to_owned(),
            message: format!("{e:#}"),
        };
        crate::images::prepare(&module).map_err(load_error)?;
        let mut linker = Linker::new(&engine);
        add_wasi_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(&module).map_err(load_error)?;
        self.registry.register(&engine);
        let pool = &self.config.pool;
        Ok(Guest::from_parts(GuestParts {
            name: name.to_owned(),
            sha256,
            engine,
            pre,
            options,
            slots: Arc::new(Slots::new(
                pool.max_instances.max(1) as usize,
                SlotReserve::of(pool, self.config.lower_priority_after),
            )),
            max_wasm_stack: self.config.max_wasm_stack,
            max_memory_bytes: if pool.enabled {
                pool.max_memory_bytes
            } else {
                usize::MAX
            },
            max_table_elements: pool.max_table_elements,
            fuel_metering: self.config.fuel_metering,
            epoch_interruption: true,
            // The interpreters (zeval's own builds) are linked with their C stack first.
            stack_first: true,
            lower_priority_after: self.config.lower_priority_after,
            registry: Arc::clone(&self.registry),
        }))
    }
}

/// The hex SHA-256 of the module file at `path`, as [`Sandbox::load_guest_file_with_digest`]
/// takes it.
pub fn module_file_digest(path: &Path) -> Result<String, SandboxError> {
    Ok(module_digest(&read_guest_file(path)?))
}

fn module_digest(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

fn read_guest_file(path: &Path) -> Result<Vec<u8>, SandboxError> {
    std::fs::read(path).map_err(|source| SandboxError::Io {
        path: path.to_owned(),
        source,
    })
}

// Mapping a compiled module trusts its bytes as wasmtime's own output and needs them never to
// change while the module lives. `seal_guest_file` wrote them from a verified compilation,
// and the caller checked the seals that stop any write or resize (`crate::sealed`).
#[allow(unsafe_code)]
fn map_sealed(engine: &Engine, sealed: std::fs::File) -> wasmtime::Result<Module> {
    // SAFETY: see the comment above.
    unsafe { Module::deserialize_open_file(engine, sealed) }
}
