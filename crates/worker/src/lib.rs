//! Worker processes for zeval's evaluator: a second wall around the wasm sandbox.
//!
//! Guests run in child processes of the server (its own binary, re-executed as
//! `zeval worker`), one call at a time per worker, each confined before it reads a byte of
//! user code. A wasmtime or Cranelift bug that lets a guest out of the sandbox then lands in
//! a process that holds no store, no tokens and no sockets, cannot open a file, create a
//! socket, start a process or regain privileges, and is killed on its first forbidden system
//! call.
//!
//! It owns:
//! - [`confine`]: what a worker gives up before it reads its first untrusted byte (a seccomp
//!   allowlist, landlock with no file-system or network access, `PR_SET_NO_NEW_PRIVS`, an
//!   unprivileged user, resource limits), and the report of what the kernel granted;
//! - [`protocol`]: the frames between parent and worker, decoded by the parent as hostile
//!   input;
//! - [`child`]: the worker's side (load, warm up, confine, serve);
//! - [`pool`]: the parent's side ([`WorkerPool`]: start, hand out, supervise, replace).

mod affinity;
pub mod child;
pub mod confine;
pub mod pool;
pub mod protocol;

pub use pool::{
    DEFAULT_LONE_CALL_SPIN, DEFAULT_RECYCLE_AFTER_CALLS, DEFAULT_RESERVE_CALL_TIME,
    DEFAULT_RETIRE_IDLE_AFTER, PoolStatus, RunError, WorkerPool, WorkerPoolConfig,
};
pub use protocol::{GuestSpec, WorkerSpec};

/// Why a worker could not be started or could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("worker protocol: {0}")]
    Frame(#[from] protocol::FrameError),
    #[error("worker protocol: {0}")]
    Protocol(String),
    #[error("worker setup: {0}")]
    Setup(String),
    #[error(transparent)]
    Sandbox(#[from] zeval_sandbox::SandboxError),
    #[error("confinement: {0}")]
    Confine(#[from] confine::ConfineError),
}
