//! The evaluator of zeval (being written).
pub mod language;
pub mod wire;
