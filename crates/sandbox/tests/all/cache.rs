//! The module cache loads only `.cwasm` files it can verify; anything else is compiled again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeval_sandbox::{Limits, Sandbox, SandboxConfig, SandboxError};

/// A guest that exits with `status`.
fn exit_wat(status: i32) -> String {
    format!(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const {status}))))"#
    )
}

/// The exit status a guest `name` built from `wat` in `cache` reports, with a fresh sandbox
/// (so the module comes from the cache directory, not from memory).
fn exit_status(cache: &Path, name: &str, wat: &str) -> String {
    let sandbox = Sandbox::new(SandboxConfig::new(cache)).unwrap();
    let guest = sandbox.load_guest(name, wat.as_bytes()).unwrap();
    match guest.run(b"", &Limits::default()) {
        Ok(_) => "exit status 0".to_owned(),
        Err(SandboxError::Trap(message)) => message,
        Err(other) => panic!("{other:?}"),
    }
}

/// The `.cwasm` of the guest named `name`.
fn cwasm(cache: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let file = path.file_name().unwrap().to_string_lossy();
            file.starts_with(&format!("{name}-")) && file.ends_with(".cwasm")
        })
        .unwrap_or_else(|| panic!("no .cwasm for {name}"))
}

fn manifest(cwasm: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sha256", cwasm.display()))
}

/// A cache with guest `a` (exits 1) and guest `b` (exits 2), and `b`'s compiled code copied
/// over `a`'s: the substitution an attacker who can write the cache would make.
fn substituted() -> (tempfile::TempDir, PathBuf) {
    let cache = tempfile::tempdir().unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    assert!(exit_status(cache.path(), "b", &exit_wat(2)).starts_with("exit status 2"));
    let (a, b) = (cwasm(cache.path(), "a"), cwasm(cache.path(), "b"));
    std::fs::copy(&b, &a).unwrap();
    (cache, a)
}

#[test]
fn a_compiled_module_is_cached_with_its_manifest_entry_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    let a = cwasm(cache.path(), "a");
    let recorded = std::fs::read_to_string(manifest(&a)).unwrap();
    let modified = std::fs::metadata(&a).unwrap().modified().unwrap();
    assert_eq!(recorded.trim().len(), 64);
    assert_eq!(
        std::fs::metadata(&a).unwrap().permissions().mode() & 0o022,
        0
    );
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    assert_eq!(
        std::fs::metadata(&a).unwrap().modified().unwrap(),
        modified,
        "recompiled"
    );
}

#[test]
fn a_tampered_module_is_recompiled_not_loaded() {
    let (cache, a) = substituted();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    // And the entry was rewritten: the next load uses the cache again.
    let bytes = std::fs::read(&a).unwrap();
    let recorded = std::fs::read_to_string(manifest(&a)).unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), recorded.trim());
}

#[test]
fn a_flipped_byte_is_recompiled_not_loaded() {
    let cache = tempfile::tempdir().unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    let a = cwasm(cache.path(), "a");
    let mut bytes = std::fs::read(&a).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&a, &bytes).unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
    assert_ne!(std::fs::read(&a).unwrap(), bytes);
}

#[test]
fn a_module_without_a_manifest_entry_is_recompiled_not_loaded() {
    let (cache, a) = substituted();
    std::fs::remove_file(manifest(&a)).unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
}

#[test]
fn a_group_or_world_writable_module_is_recompiled_not_loaded() {
    for mode in [0o664, 0o646] {
        let (cache, a) = substituted();
        // Even with a matching manifest entry: whoever could write the file could write that.
        let b_manifest = manifest(&cwasm(cache.path(), "b"));
        std::fs::copy(&b_manifest, manifest(&a)).unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(mode)).unwrap();
        assert!(
            exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"),
            "mode {mode:o}"
        );
    }
}

#[test]
fn a_writable_manifest_entry_is_not_trusted() {
    let (cache, a) = substituted();
    let b_manifest = manifest(&cwasm(cache.path(), "b"));
    std::fs::copy(&b_manifest, manifest(&a)).unwrap();
    std::fs::set_permissions(manifest(&a), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
}

#[test]
fn a_group_writable_cache_directory_is_not_used() {
    let (cache, a) = substituted();
    let b_manifest = manifest(&cwasm(cache.path(), "b"));
    std::fs::copy(&b_manifest, manifest(&a)).unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(exit_status(cache.path(), "a", &exit_wat(1)).starts_with("exit status 1"));
}

/// The exit status of the guest `name` loaded from `path` for `sha256`, with a fresh sandbox.
fn exit_status_by_digest(cache: &Path, name: &str, path: &Path, sha256: &str) -> String {
    let sandbox = Sandbox::new(SandboxConfig::new(cache)).unwrap();
    let guest = sandbox
        .load_guest_file_with_digest(name, path, sha256)
        .unwrap();
    match guest.run(b"", &Limits::default()) {
        Err(SandboxError::Trap(message)) => message,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_guest_loaded_by_its_digest_is_read_only_when_the_cache_lacks_it() {
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("a.wat");
    std::fs::write(&file, exit_wat(1)).unwrap();
    let sha256 = zeval_sandbox::module_file_digest(&file).unwrap();
    assert!(exit_status_by_digest(cache.path(), "a", &file, &sha256).starts_with("exit status 1"));
    // The compilation of that digest is in the cache now: the file is not read again.
    std::fs::write(&file, "not a module").unwrap();
    assert!(exit_status_by_digest(cache.path(), "a", &file, &sha256).starts_with("exit status 1"));
}

#[test]
fn a_guest_file_without_the_digest_it_is_loaded_for_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("a.wat");
    std::fs::write(&file, exit_wat(1)).unwrap();
    let other = cache.path().join("b.wat");
    std::fs::write(&other, exit_wat(2)).unwrap();
    let sha256 = zeval_sandbox::module_file_digest(&other).unwrap();
    let sandbox = Sandbox::new(SandboxConfig::new(cache.path())).unwrap();
    match sandbox.load_guest_file_with_digest("a", &file, &sha256) {
        Err(SandboxError::Load { message, .. }) => {
            assert!(message.contains("not the"), "{message}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a file with another digest was loaded"),
    }
}

#[test]
fn a_sealed_compiled_guest_loads_in_another_sandbox_and_an_unsealed_file_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("a.wat");
    std::fs::write(&file, exit_wat(3)).unwrap();
    let config = SandboxConfig::new(cache.path());
    let (sha256, sealed) = Sandbox::new(config.clone())
        .unwrap()
        .seal_guest_file("a", &file)
        .unwrap();
    assert_eq!(sha256, zeval_sandbox::module_file_digest(&file).unwrap());
    // The module file is not read again: the sealed code is the guest.
    std::fs::write(&file, "not a module").unwrap();
    let sandbox = Sandbox::new(config).unwrap();
    let guest = sandbox.load_guest_sealed("a", &sha256, sealed).unwrap();
    match guest.run(b"", &Limits::default()) {
        Err(SandboxError::Trap(message)) => {
            assert!(message.starts_with("exit status 3"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The same code in a file anyone with the descriptor could change is refused.
    let (_, sealed) = Sandbox::new(SandboxConfig::new(cache.path()))
        .unwrap()
        .seal_guest_file("b", &{
            let b = cache.path().join("b.wat");
            std::fs::write(&b, exit_wat(4)).unwrap();
            b
        })
        .unwrap();
    let mut unsealed = tempfile::tempfile().unwrap();
    let mut code = &sealed;
    std::io::Seek::seek(&mut code, std::io::SeekFrom::Start(0)).unwrap();
    std::io::copy(&mut code, &mut unsealed).unwrap();
    match sandbox.load_guest_sealed("b", &sha256, unsealed) {
        Err(SandboxError::Load { message, .. }) => {
            assert!(message.contains("refused"), "{message}")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("an unsealed file was mapped as compiled code"),
    }
}
