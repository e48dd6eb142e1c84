//! Where ZObjects come from.
//!
//! [`ObjectSource`] is the one interface the orchestrator fetches through. Sources are
//! layered catalogue → local (directory or SQLite) → wiki, with a cache per request and one
//! shared between requests.

use std::collections::HashMap;

use zeval_zobject::Value;

/// Why a fetch failed as a whole (as opposed to a ZID that simply does not exist, which is
/// left out of the answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The wiki (or another remote source) could not be reached or answered nonsense.
    #[error("fetching {zids} failed: {message}")]
    Fetch {
        /// The ZIDs asked for, joined by `|`.
        zids: String,
        /// What went wrong.
        message: String,
    },
    /// The local database failed.
    #[error("database error: {0}")]
    Database(String),
    /// An object is not valid for the operation.
    #[error("invalid object: {0}")]
    Invalid(String),
}

/// A source of persistent objects (canonical Z2s), looked up by ZID.
pub trait ObjectSource: Send + Sync {
    /// Fetches the canonical Z2 of each ZID. ZIDs that do not exist are left out of the map;
    /// an `Err` means the source itself failed.
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError>;
}
