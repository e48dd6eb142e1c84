//! The ZObject data model of Wikifunctions, with no I/O.
//!
//! A ZObject is a JSON value ([`Value`], with object key order preserved). This crate owns:
//! - [`json`]: parsing JSON text into a [`Value`] with a nesting limit, so hostile input gives
//!   an error and never a stack overflow;
//! - [`ident`]: ZIDs, keys and the "reference-like" test;
//! - [`normalize()`](normalize::normalize) and [`canonicalize()`](canonicalize::canonicalize),
//!   the three forms (canonical, normal, mixed) and the conversions between them;
//! - [`canonical_text`]: canonical JSON text written straight from normal form;
//! - [`build`]: builders and accessors for Z6, Z9, typed lists, the Z22 envelope and its
//!   `Z883(Z6, Z1)` metadata map;
//! - [`metadata_format`]: how metadata values (times, memory) are written;
//! - [`error`]: typed Z5 errors (`Z5K2` an instance of `Z885(Z5xx)`);
//! - [`validate`](mod@validate): schema validation of normal, canonical and mixed forms with the
//!   original's Z5xx error trees, for built-in and user-defined types;
//! - [`depth`]: the nesting limit for values built in memory;
//! - [`signature`]: a function's signature (argument types and keys, return type).
//!
//! Every function here returns normal-form ZObjects unless its name says otherwise.

pub mod build;
pub mod canonical_text;
pub mod canonicalize;
pub mod depth;
pub mod error;
pub mod ident;
pub mod json;
pub mod metadata_format;
pub mod normalize;
pub mod signature;
pub mod validate;

pub use canonicalize::canonicalize;
pub use normalize::normalize;
pub use serde_json::{Map, Value};
pub use validate::{Form, validate, validate_key, validate_with_type};
