//! A page that a call wrote and the kernel swapped out before the call's instance was reset
//! is reset too: the next call in the slot sees the snapshot, not the last call's data.
//!
//! wasmtime's pagemap reset looked only for dirty pages that are present; a swapped-out
//! dirty page was neither copied back nor returned to the kernel, and came back, swapped in,
//! with the previous call's bytes (vendor/wasmtime/ZEVAL-PATCH.md, the third change). The
//! test needs swap: it uses the machine's, or, as root, turns on a swap file of its own for
//! its duration; without either it says so and checks nothing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use zeval_sandbox::{Limits, SandboxConfig};

/// The 8 bytes a writing call fills its pages with.
const PATTERN: u64 = 0x5EC2_E7DA_7A0F_CA11;

/// Pages 1 to 16 (host pages of 4 KiB) of the guest's memory.
const FIRST_PAGE: u32 = 4096;
const PAGES: u32 = 16;

/// With stdin "w": fills pages 1 to 16 with [`PATTERN`], then asks its host (which pages
/// them out) and exits 0. Otherwise: exits 3 if any byte of those pages is not zero.
fn guest_wat() -> String {
    let end = FIRST_PAGE + PAGES * 4096;
    format!(
        r#"(module
          (import "zeval" "call" (func $call (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_read"
            (func $read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 2)
          (data (i32.const 0) "snapshot")
          (func (export "_start") (local $at i32) (local $seen i64)
            (i32.store (i32.const 16) (i32.const 32))
            (i32.store (i32.const 20) (i32.const 1))
            (drop (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
            (local.set $at (i32.const {FIRST_PAGE}))
            (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 119))
              (then
                (loop $fill
                  (i64.store (local.get $at) (i64.const {PATTERN}))
                  (local.set $at (i32.add (local.get $at) (i32.const 8)))
                  (br_if $fill (i32.lt_u (local.get $at) (i32.const {end}))))
                (drop (call $call (i32.const 0) (i32.const 8)))
                (call $exit (i32.const 0))))
            (loop $check
              (local.set $seen (i64.or (local.get $seen) (i64.load (local.get $at))))
              (local.set $at (i32.add (local.get $at) (i32.const 8)))
              (br_if $check (i32.lt_u (local.get $at) (i32.const {end}))))
            (call $exit (select (i32.const 3) (i32.const 0)
              (i64.ne (local.get $seen) (i64.const 0))))))"#,
        PATTERN = PATTERN as i64,
    )
}

/// A swap file this test turned on, turned off again when dropped.
struct OwnSwap(PathBuf);

impl Drop for OwnSwap {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.0).status();
        let _ = std::fs::remove_file(&self.0);
    }
}

fn swap_active() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|swaps| swaps.lines().count() > 1)
}

/// `Ok(None)`: the machine has swap; `Ok(Some(_))`: this test turned some on; `Err`: why
/// there is none.
#[allow(unsafe_code)]
fn ensure_swap() -> Result<Option<OwnSwap>, String> {
    if swap_active() {
        return Ok(None);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("no swap, and not root to turn some on".into());
    }
    let path = std::env::temp_dir().join(format!("zeval-test-swap-{}", std::process::id()));
    let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    // A real file (not sparse, which swapon refuses) of 16 MiB.
    std::io::Write::write_all(&mut &file, &vec![0u8; 16 * 1024 * 1024])
        .map_err(|e| e.to_string())?;
    drop(file);
    let own = OwnSwap(path.clone());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let ran = |program: &str| {
        Command::new(program)
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !ran("mkswap") || !ran("swapon") {
        return Err(format!("mkswap/swapon of {} failed", path.display()));
    }
    Ok(Some(own))
}

/// The host pages of this process that hold nothing but [`PATTERN`]: the guest's.
#[allow(unsafe_code)]
fn pattern_pages() -> Vec<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = usize::from_str_radix(start, 16).unwrap();
        let end = usize::from_str_radix(end, 16).unwrap();
        let mut incore = vec![0u8; (end - start) / 4096];
        // SAFETY: a mapping of this process, as `/proc/self/maps` lists it; `mincore` only
        // reports which of its pages are resident, so that reading them faults none in.
        if unsafe { libc::mincore(start as *mut _, end - start, incore.as_mut_ptr()) } != 0 {
            continue;
        }
        for (index, resident) in incore.iter().enumerate() {
            let page = start + index * 4096;
            // SAFETY: a resident page of a readable mapping of this process.
            if resident & 1 == 1
                && unsafe { std::slice::from_raw_parts(page as *const u64, 512) }
                    .iter()
                    .all(|word| *word == PATTERN)
            {
                found.push(page);
            }
        }
    }
    found
}

/// Whether `/proc/self/pagemap` says the page at `address` is swapped out.
fn is_swapped(address: usize) -> bool {
    use std::os::unix::fs::FileExt;
    let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
    let mut entry = [0u8; 8];
    pagemap
        .read_exact_at(&mut entry, (address / 4096 * 8) as u64)
        .unwrap();
    u64::from_le_bytes(entry) & (1 << 62) != 0
}

#[test]
#[allow(unsafe_code)]
fn a_page_swapped_out_before_the_reset_is_reset_too() {
    let _swap = match ensure_swap() {
        Ok(swap) => swap,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let mut config = SandboxConfig::new(tempfile::tempdir().unwrap().keep());
    config.pool.max_instances = 1;
    config.pool.reserve_instances = 0;
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    let guest = sandbox
        .load_guest("swapped-pages", guest_wat().as_bytes())
        .unwrap();
    let limits = Limits {
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    for round in 0..3 {
        let mut swapped = 0;
        let mut page_out = |_: &[u8], _: Instant| {
            let pages = pattern_pages();
            // The kernel skips a page mapped twice, as it briefly is while another test's
            // thread forks a child: ask again for a while.
            for _ in 0..200 {
                for &page in &pages {
                    if !is_swapped(page) {
                        // SAFETY: a page of this process's memory (the guest's), which the
                        // kernel writes to swap and will read back on the next access.
                        unsafe { libc::madvise(page as *mut _, 4096, libc::MADV_PAGEOUT) };
                    }
                }
                swapped = pages.iter().filter(|&&page| is_swapped(page)).count();
                if swapped == pages.len() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Vec::new()
        };
        guest
            .run_with(b"w", &limits, Some(&mut page_out))
            .unwrap_or_else(|e| panic!("round {round}: the writing call: {e}"));
        assert_eq!(
            swapped, PAGES as usize,
            "round {round}: the guest's pages were not all swapped out"
        );
        let checked = guest.run(b"r", &limits);
        assert!(
            checked.is_ok(),
            "round {round}: the next call saw the last call's swapped-out pages: {checked:?}"
        );
    }
}
