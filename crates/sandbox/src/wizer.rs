//! Pre-initialising a guest into a snapshot (build time only).

use std::path::Path;

use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::SandboxError;

/// The export a guest runs to initialise itself for the snapshot. (wasmtime-wizer's own
/// default changed to `wizer-initialize`; our guests keep the historical name.)
pub const INIT_FUNC: &str = "wizer.initialize";

/// Stack for the init function: interpreter start-up (CPython importing its stdlib) is
/// deeper than an ordinary call.
const INIT_WASM_STACK: usize = 8 * 1024 * 1024;

/// Runs `wasm`'s [`INIT_FUNC`] and returns a module whose initial state is the state it left.
/// The init function may use the clocks, randomness and stderr, and may read `preopen`
/// (`(host directory, guest path)`, read-only) if given; nothing of the preopen is granted
/// when the snapshot later runs.
pub fn snapshot(wasm: &[u8], preopen: Option<(&Path, &str)>) -> Result<Vec<u8>, SandboxError> {
    let setup = |what: &str, e: wasmtime::Error| SandboxError::Setup(format!("{what}: {e:#}"));
    let mut config = Config::new();
    config
        .max_wasm_stack(INIT_WASM_STACK)
        .async_stack_size(INIT_WASM_STACK + 1024 * 1024);
    let engine = Engine::new(&config).map_err(|e| setup("engine", e))?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stderr().allow_blocking_current_thread(true);
    if let Some((host, guest)) = preopen {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| setup(&format!("preopen {}", host.display()), e))?;
    }
    let mut store = Store::new(&engine, wasi.build_p1());
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |ctx| ctx)
        .map_err(|e| setup("linker", e))?;
    // Guests that can call their host import `zeval.*`; nothing calls it while snapshotting.
    crate::host_call::add_unavailable_to_linker(&mut linker).map_err(|e| setup("linker", e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| SandboxError::Setup(format!("tokio runtime: {e}")))?;
    runtime
        .block_on(async {
            wasmtime_wizer::Wizer::new()
                .init_func(INIT_FUNC)
                .run(&mut store, wasm, async |store, module| {
                    linker.instantiate_async(store, module).await
                })
                .await
        })
        .map_err(|e| setup("snapshot", e))
}
