//! The HTTP services of zeval, as axum routers: the orchestrator API, the evaluator API, the
//! objects and testers APIs, `/metrics`, and the health and `/_info` routes.
//!
//! Handlers hold no business logic: they decode, call the library crates, and encode.

pub mod evaluator_api;
