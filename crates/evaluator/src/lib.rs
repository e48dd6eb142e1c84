//! TODO(owner): this crate is being written.
