//! Precompiled guests handed from one process to others in sealed memfds.
//!
//! Every worker process loads the same guests. Reading and verifying their `.cwasm` files from
//! the module cache (`crate::cache`) cost each worker start most of its CPU: the server does it
//! once instead, copies the verified code into a memfd and seals it against any change
//! ([`seal_precompiled`]), and passes the descriptor to each worker, which maps it instead of
//! reading it ([`crate::Sandbox::load_guest_sealed`]). The mapping is shared, so the guests'
//! code is in memory once for all workers.
//!
//! Mapping a compiled module is sound only while its bytes never change
//! (`wasmtime::Module::deserialize_open_file`): the seals make that a property the kernel
//! enforces, and the loader refuses a descriptor without them ([`check_sealed`]).

use std::fs::File;
use std::io::Write;

use rustix::fs::{MemfdFlags, SealFlags};

/// The seals a precompiled guest's memfd must carry: no write, no change of size, and no
/// removal of these seals.
const REQUIRED_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// A memfd named after `name` holding `compiled`, sealed with [`REQUIRED_SEALS`]. Its
/// descriptor is close-on-exec: it reaches a worker only by being sent.
pub(crate) fn seal_precompiled(name: &str, compiled: &[u8]) -> std::io::Result<File> {
    let memfd = rustix::fs::memfd_create(
        format!("zeval-{name}.cwasm"),
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = File::from(memfd);
    file.write_all(compiled)?;
    rustix::fs::fcntl_add_seals(&file, REQUIRED_SEALS)?;
    Ok(file)
}

/// `Ok` when `file` carries every seal of [`REQUIRED_SEALS`].
pub(crate) fn check_sealed(file: &File) -> Result<(), String> {
    let seals = rustix::fs::fcntl_get_seals(file)
        .map_err(|e| format!("its seals cannot be read ({e}): not a sealed memfd"))?;
    if seals.contains(REQUIRED_SEALS) {
        Ok(())
    } else {
        Err(format!(
            "it is not sealed against changes (seals {seals:?})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_precompiled_guest_cannot_be_changed() {
        let file = seal_precompiled("test", b"compiled code").unwrap();
        check_sealed(&file).unwrap();
        let mut writable = std::fs::OpenOptions::new()
            .write(true)
            .open(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&file)
            ))
            .unwrap();
        assert!(writable.write_all(b"changed").is_err());
        assert!(file.set_len(1).is_err());
    }

    #[test]
    fn an_unsealed_file_is_refused() {
        let memfd =
            rustix::fs::memfd_create("unsealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .unwrap();
        assert!(check_sealed(&File::from(memfd)).is_err());
        let plain = tempfile::tempfile().unwrap();
        assert!(check_sealed(&plain).is_err());
    }
}
