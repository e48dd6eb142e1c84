//! What one request read and whether its answer may be remembered: the input of a result
//! cache (the server's `[cache]`), which keys an answer by the call and by the revision of
//! every object the evaluation read, so that a write of any of them misses the cache.
//!
//! Recording costs next to nothing: the resolver already keeps each ZID it dereferenced in
//! its per-request map, so the dependency set is that map's keys (plus the few objects read
//! past it) collected once at the end of the request, one string per distinct object, never
//! per node.

/// Built-in implementations whose answer may differ between two runs with the same input
/// (a clock, randomness, the outside world). An answer that ran one of them is never cached.
///
/// None of zeval's built-ins is such today: each is a pure function of its arguments and of
/// the objects it reads (which the dependency set covers). A new one (say, "current time")
/// must be listed here; [`crate::Orchestrator::with_nondeterministic_builtins`] replaces the
/// list for one orchestrator.
pub const NONDETERMINISTIC_BUILTINS: &[&str] = &[];

/// How a request ended, for how long its answer may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A value, no error.
    Success,
    /// An error answer: a Z5 from the function, the code, the evaluator or a limit.
    Error,
    /// The request's deadline passed (Z558).
    Timeout,
}

/// What [`crate::Orchestrator::orchestrate_traced`] reports beside the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The ZIDs of every persistent object the evaluation read (dereferenced, fetched for
    /// Z828, or found missing), built-ins and the catalogue's objects included; sorted, each
    /// once.
    pub dependencies: Vec<String>,
    /// How the request ended.
    pub outcome: Outcome,
    /// The first nondeterministic built-in that ran (see [`NONDETERMINISTIC_BUILTINS`]),
    /// which makes the answer uncacheable.
    pub nondeterministic: Option<String>,
    /// The answer depends on the server's load or on the caller's other requests, not only
    /// on the call and the objects read: a call from code refused because the client had too
    /// many in progress ([`crate::ReentryLimits::max_per_client`]); code that timed out
    /// (Z558: no executor free, cut to the reserve's time, or its own wall time, which other
    /// calls stretch); a request past its deadline; a store or evaluator that failed. Also
    /// when code caught such a failure of a call it made and answered a value. Such an answer
    /// is never cached: kept, one client's load would answer everyone else's calls.
    pub depends_on_load: bool,
    /// Of those, the ones where the load surely stopped something (every one but a plain
    /// Z558, the code's own wall time, and a deadline passed): a test run does not record
    /// such a cell, where the code's own timeout is its failure.
    pub stopped_by_load: bool,
}

impl Trace {
    /// Whether the answer may be cached at all (for how long is the caller's choice, by
    /// [`Trace::outcome`]).
    pub fn cacheable(&self) -> bool {
        self.nondeterministic.is_none() && !self.depends_on_load
    }
}
