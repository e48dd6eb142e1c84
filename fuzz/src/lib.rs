//! Fuzz targets for the parsers and wire formats of zeval that take untrusted bytes, and a
//! small coverage-less driver that runs them on the pinned stable toolchain (cargo-fuzz and
//! libFuzzer need nightly sanitizer flags).
//!
//! `zeval-fuzz TARGET --iterations N [--seed S]` runs one target; `tests/smoke.rs` runs
//! every target for a fixed number of iterations in CI.

pub mod corpus;
pub mod driver;
pub mod mutate;
pub mod rng;
pub mod targets;

pub use driver::{Finding, Report, RunConfig, run};
pub use targets::Target;
