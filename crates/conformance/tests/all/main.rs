//! Conformance suites run as one integration test binary, one module per suite.

mod evaluator;
mod orchestrator;
mod schemata;
