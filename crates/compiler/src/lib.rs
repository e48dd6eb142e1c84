//! Compiled languages for zeval: C and Rust implementations compiled once, when saved, into
//! wasm32-wasip1 command modules ("artifacts") that the sandbox runs once per call.
//!
//! This crate owns the calling convention (both sides), the artifact key, the source check,
//! finding the compilers and running them confined. It never runs an artifact (the sandbox
//! does) and never imports wasmtime.
//!
//! # Calling convention, version 1
//! An implementation defines a function named by the function's ZID (e.g. `Z10000`) with one
//! parameter per argument, named by the argument key (e.g. `Z10000K1`), in declaration order.
//! A value crosses the boundary as one of three [`Kind`]s: Z6 strings as [`Kind::String`]
//! (the text), Z40 Booleans as [`Kind::Boolean`], every other type as [`Kind::Json`] (the
//! value's normal-form JSON text, e.g. a Z881 list as `{"Z1K1":…,"K1":…,"K2":…}`).
//!
//! ## C (C17, `-std=c17 -O2`, wasi-libc only)
//! ```c
//! #include <string.h>
//! #include <stdlib.h>
//! #include "zeval.h"   /* optional: declares zeval_error */
//!
//! char *Z10000(const char *Z10000K1, bool Z10000K2) {  /* string, Boolean -> string */
//!     if (!Z10000K2) zeval_error("K2 must be true");
//!     return strdup(Z10000K1);
//! }
//! ```
//! - parameters: Z6 and JSON as `const char *` (UTF-8, NUL-terminated; a string that
//!   contains NUL is cut at the first NUL), Z40 as `bool` (`<stdbool.h>` is already included by
//!   the glue, but the user's file must include it itself);
//! - result: Z6 and JSON as `char *` or `const char *` (copied by zeval; malloc'd or static,
//!   nobody frees it: the instance is discarded after the call), Z40 as `bool`;
//! - failure: `_Noreturn void zeval_error(const char *message)`, or returning `NULL` for a
//!   string result ("the function returned NULL");
//! - the user's file is its own translation unit (`main.c`, so diagnostics carry its line
//!   numbers); the glue (`glue.c`) has `main`. A function with a different wasm-level
//!   signature (e.g. `double` instead of `bool`) fails to link (`--fatal-warnings`).
//!
//! ## Rust (edition 2021, std only, `-O -C panic=abort`)
//! ```rust,ignore
//! fn Z10000(Z10000K1: &str, Z10000K2: bool) -> Result<String, String> {
//!     if !Z10000K2 { return Err("K2 must be true".into()); }
//!     Ok(Z10000K1.chars().rev().collect())
//! }
//! ```
//! - parameters: Z6 and JSON as `&str`, Z40 as `bool`;
//! - result: Z6 and JSON as `String` or `&str`, Z40 as `bool`, each optionally in
//!   `Result<T, E: Display>` (an `Err(e)` fails with `e.to_string()`); checked by a trait, so
//!   a wrong return type is a compile error;
//! - a panic fails with "panicked at line L:C: message" (a panic hook writes the record);
//! - the glue is appended to the source (one crate, `main.rs`); its items start with
//!   `__zeval` and it defines `main`, which the user's code must not.
//!
//! ## Wire format ([`encode_arguments`], [`decode_result`])
//! - stdin: for each parameter in signature order, a u32 little-endian byte length, then the
//!   bytes (String: UTF-8; Boolean: one byte 0 or 1; Json: UTF-8 JSON text);
//! - stdout ends with one record: [`RECORD_MARKER`] (`\0ZEVAL1`), a tag byte (`R` result, `E`
//!   failure), the payload (String: UTF-8; Boolean: one byte; Json: JSON text, which must be an
//!   object or a string; failure: a UTF-8 message), the payload's length as u32 LE, and
//!   [`RECORD_MARKER`] again. The host reads it from the end (the closing marker, then the
//!   length, then checks the opening marker), so whatever the user's code printed before is
//!   ignored and a payload containing the marker cannot mislead it. The glue flushes the
//!   user's buffered output first and writes the record last. A failure then exits at once
//!   (C `_Exit`); a result returns from `main`, because a normal end costs the host far less
//!   than `proc_exit`, which wasmtime turns into an error and unwinds (an `atexit` handler of
//!   the user's that prints after the record only spoils its own answer). No record (the
//!   function called `exit`, aborted or trapped) is [`ConventionError::NoRecord`].
//!
//! # Artifacts
//! [`ArtifactKey`] is a SHA-256 over length-prefixed fields: convention version, language,
//! compiler identity, the exact flags, function name, signature and source. The same unit
//! compiled by the same compiler always has the same key.
//!
//! # Safety of compiling hostile source
//! Two walls: the source check (see `check.rs`: no file inclusion beyond plain relative
//! headers, no `#embed`, no `include_str!`, no out-of-line modules, …) refuses before any
//! compiler runs; then the compiler runs confined (see [`Confinement`]): a fresh temp dir as
//! cwd, an empty environment, rlimits (CPU, address space, file size, no core), no network
//! namespace, no capabilities, no new privileges, landlock (read-only toolchains, the temp dir
//! only, no TCP, scoped signals), a wall-clock limit that kills the process group, and capped
//! output. At most [`CompilerConfig::max_concurrent`] compilations run at once.
//!
//! # Measurements
//! A small string-reversal function, release build, confined as in production, on the 2-core
//! development machine (median of 5, `cargo run --release -p zeval-compiler --example
//! measure` from the workspace root):
//!
//! | language | compiler | compile time | artifact |
//! |---|---|---|---|
//! | C | Debian clang 19.1.7, `-O2 -s` | 135 ms (109–143) | 16.0 KiB |
//! | Rust | rustc 1.95.0, `-O -C strip=symbols` | 237 ms (209–292) | 47.3 KiB |
//!
//! Unconfined, the same compilations take about 95 ms (clang) and 180 ms (rustc): the
//! confinement (a network namespace, the landlock ruleset, a fresh temp dir) costs some tens
//! of milliseconds. rustc peaks at about 105 MiB resident; it needs an address space above
//! 384 MiB to start at all, so the 4 GiB default of [`CompilerConfig::address_space`] is
//! generous. The CPU default (20 s) is about 100 times what a small function needs.

mod check;
mod confine;
mod convention;
mod glue;
mod language;
mod toolchain;

#[doc(hidden)]
pub use confine::run_confined_for_test;
pub use confine::{Confinement, Limits};
pub use convention::{
    Answer, CONVENTION_VERSION, ConventionError, Kind, MAX_PAYLOAD_BYTES, RECORD_MARKER,
    RECORD_OVERHEAD, Signature, TAG_FAILURE, TAG_RESULT, decode_result, encode_argument_map,
    encode_arguments, encode_record, z40,
};
pub use language::{ArtifactKey, Language, Unit};
pub use toolchain::{
    CALLS_CPU_TIME, CompileFailure, Compiled, CompilerConfig, CompilerError, Gate,
    MAX_DIAGNOSTICS_BYTES, STALE_TEMP_DIR_AGE, Slot, Toolchain, sweep_stale_temp_dirs,
};
