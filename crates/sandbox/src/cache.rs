//! The on-disk cache of precompiled modules, verified before it is trusted.
//!
//! A `.cwasm` file is native code: loading it runs whatever it holds. So a cached file is
//! loaded only when
//! - the cache directory, the `.cwasm` and its manifest entry (`<file>.cwasm.sha256`) are
//!   owned by this process's effective uid and writable by nobody else (no group or other
//!   write bit; the files are opened without following symlinks), and
//! - the SHA-256 of the bytes read matches the manifest entry, which this module wrote when
//!   it compiled the file.
//!
//! Otherwise the entry is logged, removed and compiled again. The bytes that were hashed are
//! the bytes deserialised (read into memory, not mapped), so the file cannot change in
//! between. A cache directory that fails the check is not used at all: the module is
//! compiled in memory, every time, until the directory is fixed.
//!
//! A process that starts others with the same guests verifies once and hands them the code
//! sealed in a memfd (`crate::sealed`).

use std::borrow::Cow;
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::SandboxError;

/// Permission bits that let someone other than the owner write.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// The largest file the cache reads: a `.cwasm` of CPython is 34 MB, so 1 GiB leaves room
/// for any guest and still refuses a file (a sparse one, say) whose size, allocated before
/// reading, would abort the process. A manifest entry is 64 hex digits and a newline at most.
const MAX_CACHE_FILE_BYTES: u64 = 1 << 30;

/// Returns the module whose hex SHA-256 is `wasm_sha256` compiled for `engine`, from
/// `cache_dir` when a verified precompiled copy is there, otherwise compiling the bytes `wasm`
/// gives and storing the result with its manifest entry. `wasm` is called only then: a caller
/// that knows the digest need not read, nor hash, the module's file when the cache has it
/// (hashing CPython's 20 MB module took about 13 ms of every worker's start).
pub(crate) fn load_module<'w>(
    engine: &Engine,
    cache_dir: &Path,
    guest: &str,
    wasm_sha256: &str,
    wasm: impl FnOnce() -> Result<Cow<'w, [u8]>, SandboxError>,
) -> Result<Module, SandboxError> {
    load_module_keeping_code(engine, cache_dir, guest, wasm_sha256, wasm).map(|(module, _)| module)
}

/// [`load_module`], and the compiled code it was loaded from (verified, or compiled just
/// now), for [`crate::sealed`].
pub(crate) fn load_module_keeping_code<'w>(
    engine: &Engine,
    cache_dir: &Path,
    guest: &str,
    wasm_sha256: &str,
    wasm: impl FnOnce() -> Result<Cow<'w, [u8]>, SandboxError>,
) -> Result<(Module, Vec<u8>), SandboxError> {
    let load_error = |message: String| SandboxError::Load {
        guest: guest.to_owned(),
        message,
    };
    let path = cache_path(engine, cache_dir, guest, wasm_sha256);
    let manifest = manifest_path(&path);
    let directory_usable = match prepare_directory(cache_dir) {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(dir = %cache_dir.display(), "not using the module cache: {reason}");
            false
        }
    };
    if directory_usable && path.exists() {
        match read_verified(&path, &manifest) {
            Ok(bytes) => match deserialize(engine, &bytes) {
                Ok(module) => return Ok((module, bytes)),
                // A stale file (another wasmtime build) is replaced below.
                Err(e) => tracing::warn!(path = %path.display(), "recompiling: {e:#}"),
            },
            Err(reason) => {
                tracing::warn!(path = %path.display(), "recompiling, not loading: {reason}");
            }
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&manifest);
    }
    let wasm = wasm()?;
    let started = std::time::Instant::now();
    let compiled = engine
        .precompile_module(&wasm)
        .map_err(|e| load_error(format!("{e:#}")))?;
    tracing::info!(guest, elapsed = ?started.elapsed(), "precompiled guest");
    // A cache that cannot be written costs the next start a compilation, not this load.
    if directory_usable && let Err(e) = store_entry(&path, &manifest, &compiled) {
        tracing::warn!(path = %path.display(), error = %e, "the module cache could not be written; using the module compiled in memory");
    }
    let module = deserialize(engine, &compiled)
        .map_err(|e| load_error(format!("loading the module just compiled: {e:#}")))?;
    Ok((module, compiled))
}

/// The module whose hex SHA-256 is `wasm_sha256`, when a verified precompiled copy is in
/// `cache_dir` (the checks of [`load_module`]); `None` otherwise, with nothing removed or
/// compiled: the caller compiles where compilations are bounded, and [`load_module`] there
/// replaces a bad entry.
pub(crate) fn read_back(
    engine: &Engine,
    cache_dir: &Path,
    guest: &str,
    wasm_sha256: &str,
) -> Option<Module> {
    prepare_directory(cache_dir).ok()?;
    let path = cache_path(engine, cache_dir, guest, wasm_sha256);
    let bytes = read_verified(&path, &manifest_path(&path)).ok()?;
    deserialize(engine, &bytes).ok()
}

/// `<cache_dir>/<guest>-<module sha256>-<wasmtime version>-<engine config digest>.cwasm`.
pub(crate) fn cache_path(
    engine: &Engine,
    cache_dir: &Path,
    guest: &str,
    module_sha256: &str,
) -> PathBuf {
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
        module_sha256.get(..16).unwrap_or(module_sha256),
        crate::WASMTIME_VERSION,
        &config[..16]
    ))
}

/// The manifest entry of a `.cwasm`: its hex SHA-256, beside it.
fn manifest_path(cwasm: &Path) -> PathBuf {
    let mut name = cwasm.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Creates the cache directory (owner-writable only) if missing, and checks it.
fn prepare_directory(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
    }
    let metadata = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot stat it: {e}"))?;
    if !metadata.is_dir() {
        return Err("it is not a directory".to_owned());
    }
    check_owner_and_mode(&metadata)
}

/// Owned by our effective uid and not writable by group or others.
fn check_owner_and_mode(metadata: &Metadata) -> Result<(), String> {
    let euid = rustix::process::geteuid().as_raw();
    if metadata.uid() != euid {
        return Err(format!(
            "owned by uid {}, not by this process's uid {euid}",
            metadata.uid()
        ));
    }
    if metadata.mode() & WRITABLE_BY_OTHERS != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Reads a regular file without following symlinks, after checking its owner and mode on
/// the opened file itself. Opened without blocking: a FIFO in its place held the opening
/// thread (a call's) until someone wrote to it; now it is refused as not a regular file.
fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", file_name(path)))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", file_name(path)))?;
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", file_name(path)));
    }
    check_owner_and_mode(&metadata).map_err(|e| format!("{} is {e}", file_name(path)))?;
    if metadata.len() > MAX_CACHE_FILE_BYTES {
        return Err(format!(
            "{} holds {} bytes, more than the cache reads ({MAX_CACHE_FILE_BYTES})",
            file_name(path),
            metadata.len()
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // At most one byte more than the limit, should the file grow after the check.
    (&mut file)
        .take(MAX_CACHE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", file_name(path)))?;
    if bytes.len() as u64 > MAX_CACHE_FILE_BYTES {
        return Err(format!("{} grew past the cache's limit", file_name(path)));
    }
    Ok(bytes)
}

/// The `.cwasm` bytes, when the file and its manifest entry pass every check.
fn read_verified(path: &Path, manifest: &Path) -> Result<Vec<u8>, String> {
    let expected = read_checked(manifest)?;
    let expected = std::str::from_utf8(&expected)
        .map(str::trim)
        .map_err(|_| "the manifest entry is not text".to_owned())?;
    let bytes = read_checked(path)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(format!(
            "its SHA-256 {actual} does not match the manifest entry {expected:.64}"
        ));
    }
    Ok(bytes)
}

/// Writes the `.cwasm`, then its manifest entry, each atomically (a temporary file renamed
/// over the final name), owner-writable only whatever the umask.
fn store_entry(path: &Path, manifest: &Path, compiled: &[u8]) -> Result<(), SandboxError> {
    write_atomically(path, compiled)?;
    write_atomically(manifest, hex::encode(Sha256::digest(compiled)).as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    // Unique per process and per write: threads of one process may store the same module
    // at once, and must not remove or rename each other's temporary files.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp{}-{serial}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    let written = write()
        .map_err(|source| io(&temporary, source))
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|source| io(path, source)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// Loading precompiled code is unsafe because wasmtime must trust the bytes to be its own
// output. Only bytes that this module compiled itself, or read back from a file that passed
// `read_verified` (owner, mode, and the SHA-256 recorded when this module wrote it), are
// deserialised; wasmtime still checks the version and engine configuration they record.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: see the comment above; the bytes are in memory, so they cannot change after
    // they were verified.
    unsafe { Module::deserialize(engine, bytes) }
}

fn io(path: &Path, source: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of 64 GiB (sparse: it takes no disk) is refused before anything is allocated.
    /// Its size was allocated first, and the allocation's failure aborted the process.
    #[test]
    fn a_huge_cache_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guest.cwasm");
        let file = File::create(&path).unwrap();
        file.set_len(64 << 30).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        drop(file);
        let error = read_checked(&path).unwrap_err();
        assert!(error.contains("more than the cache reads"), "{error}");
    }

    /// A FIFO where a cache file should be is refused at once; opening it blocked until
    /// someone wrote to it.
    #[test]
    fn a_fifo_in_the_cache_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guest.cwasm");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(read_checked(&path)));
        let error = receiver
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("opening the FIFO blocked")
            .unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn threads_storing_the_same_entry_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guest.cwasm");
        let manifest = manifest_path(&path);
        std::thread::scope(|scope| {
            for i in 0..16u8 {
                let (path, manifest) = (&path, &manifest);
                scope.spawn(move || {
                    for _ in 0..20 {
                        store_entry(path, manifest, &[i; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = read_verified(&path, &manifest);
        // The last writer of each file may differ; either way no temporary file is left.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        if let Ok(bytes) = bytes {
            assert_eq!(bytes.len(), 4096);
        }
    }
}
