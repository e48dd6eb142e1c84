//! What [`confine`](super::confine) obtained from the kernel, in a form the worker can send to
//! its parent and the parent can log or show on a status page.

use serde::{Deserialize, Serialize};

/// What one confinement step achieved. The detail is written for an operator: it says what
/// is enforced, or precisely why something is not, on this machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum Feature {
    /// Enforced as intended.
    On(String),
    /// Enforced in part; the detail says which part is missing and why.
    Partial(String),
    /// Not enforced at all; the detail says why.
    Unavailable(String),
}

impl Feature {
    /// Whether the step is enforced as intended.
    pub fn is_on(&self) -> bool {
        matches!(self, Feature::On(_))
    }

    /// The human-readable detail, whatever the state.
    pub fn detail(&self) -> &str {
        match self {
            Feature::On(detail) | Feature::Partial(detail) | Feature::Unavailable(detail) => detail,
        }
    }
}

/// What a worker gave up before reading its first untrusted request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfinementReport {
    /// The system-call allowlist (always `On` when [`confine`](super::confine) returns `Ok`).
    pub seccomp: Feature,
    /// The landlock ruleset that denies every file-system and network access.
    pub landlock: Feature,
    /// Whether `PR_SET_NO_NEW_PRIVS` was read back as set (before the filter forbids `prctl`).
    pub no_new_privs: bool,
    /// The unprivileged user the worker runs as.
    pub user: Feature,
    /// Resource limits (core dumps, file size, processes, nice) and non-dumpability.
    pub rlimits: Feature,
    /// A memory limit through a cgroup, as far as the worker can see one.
    pub memory_cgroup: Feature,
    /// Whether the confining thread (the one that runs guests) can bring a guest call it
    /// lowered to nice 19 and `SCHED_IDLE` back to `SCHED_OTHER` and its nice value at
    /// confinement: it kept `CAP_SYS_NICE`, or `RLIMIT_NICE` reaches that nice value. When
    /// false the worker must not lower long calls: the thread would stay lowered for every
    /// later call. Reports from before this field existed read as true.
    #[serde(default = "restorable_by_default")]
    pub priority_restorable: bool,
}

/// The value of [`ConfinementReport::priority_restorable`] when a report does not say.
fn restorable_by_default() -> bool {
    true
}
