//! The guest modules browsers run: the same snapshots (`quickjs.wasm`, `python.wasm`) the
//! server's evaluator loads from its guest directory, served at content-hashed URLs
//! (`/playground/guests/{stem}.{hash}.wasm`) as `application/wasm` with a one-year immutable
//! cache lifetime, so a browser downloads and compiles each once per version.
//!
//! They are read from the guest directory once, on first use (a server that never serves the
//! playground keeps no copy), and kept in memory. Limit: a file larger than
//! [`MAX_GUEST_BYTES`] is not read (the browser then runs that language on the server).
//! The hash is FNV-1a 64 of the bytes: it only has to change when the file does (cache
//! busting), it does not protect anything.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::json;
use zeval_evaluator::Family;
use zeval_zobject::Value;

/// The largest guest module served (python.wasm is about 20 MB).
pub const MAX_GUEST_BYTES: u64 = 64 * 1024 * 1024;

/// The largest `{stem}.version` file read (it holds one short line).
const MAX_VERSION_BYTES: u64 = 200;

/// One loaded guest.
pub(super) struct Guest {
    pub(super) family: Family,
    pub(super) bytes: axum::body::Bytes,
    pub(super) hash: String,
    pub(super) version: String,
}

impl Guest {
    /// Its URL.
    pub(super) fn url(&self) -> String {
        format!(
            "/playground/guests/{}.{}.wasm",
            self.family.guest_name(),
            self.hash
        )
    }
}

/// The guests of one server, loaded on first use.
pub struct Guests {
    dir: PathBuf,
    loaded: OnceLock<HashMap<Family, Guest>>,
}

impl Guests {
    /// The guests in `dir`, not read yet.
    pub fn new(dir: PathBuf) -> Self {
        Guests {
            dir,
            loaded: OnceLock::new(),
        }
    }

    /// The guest directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn all(&self) -> &HashMap<Family, Guest> {
        self.loaded.get_or_init(|| {
            let mut guests = HashMap::new();
            for family in [Family::JavaScript, Family::Python] {
                match load(&self.dir, family) {
                    Ok(guest) => {
                        guests.insert(family, guest);
                    }
                    Err(why) => {
                        tracing::warn!(%family, %why, "no guest module for browsers");
                    }
                }
            }
            guests
        })
    }

    /// What a plan tells the browser about the guest of `family`: its URL and version.
    pub(super) fn describe(&self, family: Family) -> Option<Value> {
        let guest = self.all().get(&family)?;
        Some(json!({
            "family": family.to_string(),
            "url": guest.url(),
            "bytes": guest.bytes.len(),
            "version": guest.version,
        }))
    }

    /// The guest served at `/playground/guests/{file}`, if `file` names a current one.
    pub(super) fn by_file(&self, file: &str) -> Option<&Guest> {
        self.all()
            .values()
            .find(|guest| guest.url().rsplit('/').next() == Some(file))
    }
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} is larger than the limit of {limit} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

fn load(dir: &Path, family: Family) -> Result<Guest, String> {
    let stem = family.guest_name();
    let bytes = read_bounded(&dir.join(format!("{stem}.wasm")), MAX_GUEST_BYTES)?;
    let version = read_bounded(&dir.join(format!("{stem}.version")), MAX_VERSION_BYTES)
        .map(|v| String::from_utf8_lossy(&v).trim().to_owned())
        .unwrap_or_else(|_| family.to_string());
    Ok(Guest {
        family,
        hash: format!("{:016x}", fnv1a(&bytes)),
        bytes: bytes.into(),
        version,
    })
}

/// FNV-1a, 64 bits.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_are_found_by_their_hashed_name_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("quickjs.wasm"), b"\0asm-not-really").unwrap();
        std::fs::write(dir.path().join("quickjs.version"), b"QuickJS-ng 9\n").unwrap();
        let guests = Guests::new(dir.path().to_owned());
        let described = guests.describe(Family::JavaScript).unwrap();
        assert_eq!(described["version"], "QuickJS-ng 9");
        let url = described["url"].as_str().unwrap();
        let file = url.rsplit('/').next().unwrap();
        assert!(
            file.starts_with("quickjs.") && file.ends_with(".wasm"),
            "{url}"
        );
        assert!(guests.by_file(file).is_some());
        assert!(guests.by_file("quickjs.wasm").is_none());
        assert!(guests.describe(Family::Python).is_none());
    }

    #[test]
    fn oversized_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![0u8; 11]).unwrap();
        assert!(read_bounded(&path, 10).unwrap_err().contains("larger than"));
        assert_eq!(read_bounded(&path, 11).unwrap().len(), 11);
    }

    #[test]
    fn the_hash_is_fnv1a() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
