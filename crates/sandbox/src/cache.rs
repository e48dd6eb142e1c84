//! The on-disk cache of precompiled modules.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::SandboxError;

/// Returns `wasm` compiled for `engine`, from `cache_dir` when a compatible precompiled copy
/// is there, otherwise compiling it and storing the result (atomically, via rename).
pub(crate) fn load_module(
    engine: &Engine,
    cache_dir: &Path,
    guest: &str,
    wasm: &[u8],
) -> Result<Module, SandboxError> {
    let path = cache_path(engine, cache_dir, guest, wasm);
    if path.exists() {
        match deserialize(engine, &path) {
            Ok(module) => return Ok(module),
            // A stale or damaged file is replaced below rather than trusted.
            Err(e) => tracing::warn!(path = %path.display(), "recompiling: {e:#}"),
        }
    }
    let started = std::time::Instant::now();
    let compiled = engine
        .precompile_module(wasm)
        .map_err(|e| SandboxError::Load {
            guest: guest.to_owned(),
            message: format!("{e:#}"),
        })?;
    tracing::info!(guest, elapsed = ?started.elapsed(), "precompiled guest");
    std::fs::create_dir_all(cache_dir).map_err(|source| io(cache_dir, source))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, &compiled).map_err(|source| io(&temporary, source))?;
    std::fs::rename(&temporary, &path).map_err(|source| io(&path, source))?;
    deserialize(engine, &path).map_err(|e| SandboxError::Load {
        guest: guest.to_owned(),
        message: format!("loading the module just compiled: {e:#}"),
    })
}

/// `<cache_dir>/<guest>-<module sha256>-<wasmtime version>-<engine config digest>.cwasm`.
pub(crate) fn cache_path(engine: &Engine, cache_dir: &Path, guest: &str, wasm: &[u8]) -> PathBuf {
    let module = hex::encode(Sha256::digest(wasm));
    let config = crate::engine::compatibility_digest(engine);
    let safe_name: String = guest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache_dir.join(format!(
        "{safe_name}-{}-wasmtime{}-{}.cwasm",
        &module[..16],
        crate::WASMTIME_VERSION,
        &config[..16]
    ))
}

// Loading precompiled code is unsafe because wasmtime must trust the file to be its own
// output. Only files this module wrote into the cache directory are loaded (the directory
// must be writable only by zeval), and wasmtime still checks the version and engine
// configuration recorded in the file.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: see the comment above; the file is not modified while mapped.
    unsafe { Module::deserialize_file(engine, path) }
}

fn io(path: &Path, source: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_owned(),
        source,
    }
}
