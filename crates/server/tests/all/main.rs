//! Integration tests of the orchestrator port's routes, run in process against the real
//! backends (a SQLite store in a temporary directory, the real orchestrator). Only built-in
//! and composition functions run here, so no guest is needed; code implementations are
//! covered by the end-to-end tests of the root package.

mod access;
mod common;
mod connections;
mod evaluator_api;
mod http_cases;
mod limits;
mod metrics;
mod objects;
mod playground;
mod testers;
