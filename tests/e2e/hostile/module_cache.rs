//! Item 9: the compiled-module cache is not trusted blindly. Any `.cwasm` at the predictable
//! cache path (`<guest dir>/../module-cache/`) used to be loaded as native code; now a file
//! that does not match what was compiled is recompiled instead.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{
    DEADLINE, PYTHON, Target, call_of, code_function, linked_guest_dir, one_at_a_time, timed_call,
};
use crate::common::Server;

/// The cached `.cwasm` of the guest whose name starts with `guest`.
fn cached_module(cache: &Path, guest: &str) -> PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(guest) && name.ends_with(".cwasm")
        })
        .unwrap_or_else(|| panic!("no cached module of {guest} in {}", cache.display()))
}

/// A guest directory linked to the shared guests, and a module cache holding copies of the
/// shared cache's files, checked (or filled) by a first server that started and stopped.
fn guests_and_a_copied_cache(root: &Path) -> (PathBuf, PathBuf) {
    let guests = root.join("guests");
    let cache = root.join("module-cache");
    linked_guest_dir(&guests, &[]);
    // Start from the shared cache's files (compiling both guests again would be slow).
    std::fs::create_dir_all(&cache).unwrap();
    let shared_cache = super::guest_dir().parent().unwrap().join("module-cache");
    if let Ok(entries) = std::fs::read_dir(&shared_cache) {
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), cache.join(entry.file_name())).unwrap();
            }
        }
    }
    let first_data = tempfile::tempdir().unwrap();
    let first = Server::start(
        first_data.path(),
        &[],
        &[("ZEVAL_GUEST_DIR", guests.to_str().unwrap())],
    );
    assert!(first.stop(), "the first server did not stop cleanly");
    (guests, cache)
}

/// A Python call, answered only if the Python guest loaded.
fn assert_python_answers(target: &Target) {
    let python_call = call_of(
        code_function(
            "Z10800",
            json!("Z6"),
            "Z6",
            PYTHON,
            "def Z10800(Z10800K1):\n    return Z10800K1[::-1]",
        ),
        "Z10800",
        json!("abc"),
    );
    let answer = timed_call(target.orch(), None, &python_call, DEADLINE).answer;
    assert_eq!(
        answer.as_ref().map(|a| a.json()["Z22K1"].clone()).ok(),
        Some(json!("cba")),
        "a Python call: {:?}",
        answer.map(|a| a.text)
    );
}

#[test]
fn a_tampered_module_cache_is_recompiled_not_loaded() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let (guests, cache) = guests_and_a_copied_cache(root.path());
    let guest_env = guests.to_str().unwrap().to_owned();

    // Swap in another guest's compiled code: valid for this wasmtime and engine, so only a
    // check of what the file should hold can tell.
    let quickjs = cached_module(&cache, "quickjs");
    let python = cached_module(&cache, "python");
    std::fs::copy(&python, &quickjs).unwrap();

    let target = Target::start(&[("ZEVAL_GUEST_DIR", &guest_env)]);
    // Z10000 is JavaScript: it runs only if QuickJS was compiled again.
    target.assert_survived();
    assert_python_answers(&target);
}

/// A cache file whose size the cache would allocate before reading it, here a sparse 64 GiB
/// `.cwasm` in place of QuickJS's, is refused unread (`MAX_CACHE_FILE_BYTES`, 1 GiB), and
/// the guest compiled again. It aborted the server at its start: "memory allocation of
/// 68719476736 bytes failed" (2026-12-06).
#[test]
fn a_huge_module_cache_file_is_refused_unread() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let (guests, cache) = guests_and_a_copied_cache(root.path());
    // Every QuickJS entry (one per engine that filled the cache), so that the server's is
    // among them. Sparse: they take no room on the disk.
    let mut made_huge = 0;
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("quickjs") && name.ends_with(".cwasm") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(64 << 30)
                .unwrap();
            made_huge += 1;
        }
    }
    assert!(made_huge > 0, "no cached QuickJS module");
    let target = Target::start(&[("ZEVAL_GUEST_DIR", guests.to_str().unwrap())]);
    // Z10000 is JavaScript: it runs only if QuickJS was compiled again.
    target.assert_survived();
}
