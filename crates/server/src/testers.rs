//! Running testers: every tester (Z20) of a function against every implementation, as a
//! pass/fail matrix.
//!
//! A tester's `Z20K2` is the call and `Z20K3` the result validator: a call whose first
//! argument is left out and filled with the call's result (spec §1.5 Z20). Each cell runs the
//! tester's call narrowed to one implementation ([`crate::narrow::with_implementations`]),
//! then the validator; it passes when the validator returns true (Z41). A failing cell keeps
//! its Z5: the call's error, the validator's error, or Z512 "Test failed" with the result.
//!
//! Limits ([`TestBounds`]; `POST /v1/test` takes them from `[limits]`, the CLI runs
//! unbounded): a request naming an implementation or tester twice is refused (the function's
//! own lists are used without their repeats); at most `limits.max_test_cells` (default 200)
//! cells, else refused before any runs; and one deadline for the whole run,
//! `limits.test_timeout_ms` (default 60 s): a cell not started by then, or whose validator
//! would start after it, is reported as not run. A cell started before the deadline runs
//! under the call time budget, so the run ends at most one call budget after its deadline.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use zeval_zobject::Value;
use zeval_zobject::build::{ref_zid, z6};
use zeval_zobject::error::{quote, quote_briefly, z5};

use crate::narrow::{implementations, stored_value, testers, with_implementations};
use crate::{CallEngine, Repository, RepositoryError};

/// What to test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The function's ZID.
    pub function: String,
    /// Only these implementations (default: all of the function's `Z8K4`).
    #[serde(default)]
    pub implementations: Option<Vec<String>>,
    /// Only these testers (default: all of the function's `Z8K3`).
    #[serde(default)]
    pub testers: Option<Vec<String>>,
}

/// One tester against one implementation.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The implementation's ZID.
    pub implementation: String,
    /// The tester's ZID.
    pub tester: String,
    /// Whether the validator said true.
    pub passed: bool,
    /// Time for the call and the validator, in milliseconds.
    pub duration_ms: f64,
    /// Time for the call alone (what the ranking measures), in milliseconds.
    pub call_ms: f64,
    /// Why it failed (canonical Z5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Whether it was left out because the run's deadline had passed (then it has not
    /// passed either).
    pub not_run: bool,
    /// Whether its call stopped at the implementation's own time limit (the original's plain
    /// Z558) before the call's deadline ([`TestBounds::call_timeout`]): the implementation's
    /// doing, unlike a Z558 of the request's deadline or of the server's load.
    #[serde(skip)]
    pub own_time_limit: bool,
    /// Whether the tester's call (`Z20K2`) calls the function itself, and so ran this
    /// implementation alone. A call of anything else (a wrapper, another function) runs
    /// whichever implementation the ranking picks, or none: its outcome is not this
    /// implementation's, and is not recorded for it.
    #[serde(skip)]
    pub narrowed: bool,
    /// Whether the load, or the caller's other requests, stopped something its call's or its
    /// validator's answer depends on ([`crate::ResultOf::stopped_by_load`]): not the
    /// implementation's doing, and not recorded (unless it stopped at its own time limit).
    #[serde(skip)]
    pub stopped_by_load: bool,
}

/// The whole matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// The function tested.
    pub function: String,
    /// Its implementations (columns).
    pub implementations: Vec<String>,
    /// Its testers (rows).
    pub testers: Vec<String>,
    /// One per tester × implementation, row by row.
    pub cells: Vec<Cell>,
    /// Cells that passed.
    pub passed: usize,
    /// Cells not run because the deadline passed.
    pub not_run: usize,
    /// All cells.
    pub total: usize,
    /// The function's ranking once these results count (the testers route and
    /// `zeval test` fill it in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<crate::ranking::Explanation>,
    /// The revision of each implementation and tester when the run started (0: not
    /// stored): a result is recorded for a revision only when it is still the current one
    /// after the run, since a revision saved during the run may or may not be what ran.
    #[serde(skip)]
    pub revisions_at_start: std::collections::HashMap<String, u64>,
}

/// The bounds of one test run.
#[derive(Debug, Clone, Default)]
pub struct TestBounds {
    /// The most cells a run may ask for (`None`: no limit).
    pub max_cells: Option<usize>,
    /// When cells stop being started (`None`: never).
    pub deadline: Option<Instant>,
    /// The deadline of each cell's call (`None`: not known, and no timeout is taken for the
    /// implementation's own; see [`Cell::own_time_limit`]).
    pub call_timeout: Option<std::time::Duration>,
    /// Who asked for the run ([`crate::limits::ClientKey`]): its cells' calls count against
    /// that client's limits while they run (`limits.max_reentrant_calls_per_client`), as
    /// the client's calls do.
    pub client: Option<std::sync::Arc<str>>,
}

/// Why a test run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// The function does not exist or is not a Z8.
    #[error("{0}")]
    NotAFunction(String),
    /// A named implementation or tester is not the function's.
    #[error("{0}")]
    NotOfFunction(String),
    /// An implementation or tester is named twice.
    #[error("{0}")]
    Duplicate(String),
    /// The run asks for more cells than allowed.
    #[error(
        "{cells} cells (testers × implementations) is more than the limit of {limit} per run; ask for fewer testers or implementations"
    )]
    TooManyCells {
        /// Cells asked for.
        cells: usize,
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Runs the matrix without bounds; `progress(done, total)` is called after each cell.
pub fn run(
    repository: &dyn Repository,
    engine: &dyn CallEngine,
    request: &TestRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<Matrix, TestError> {
    run_within(
        repository,
        engine,
        request,
        &TestBounds::default(),
        progress,
    )
}

/// Runs the matrix within `bounds`; `progress(done, total)` is called after each cell.
pub fn run_within(
    repository: &dyn Repository,
    engine: &dyn CallEngine,
    request: &TestRequest,
    bounds: &TestBounds,
    progress: &dyn Fn(usize, usize),
) -> Result<Matrix, TestError> {
    let z8 = stored_function(repository, &request.function)?;
    run_function(repository, engine, request, &z8, bounds, progress)
}

/// The stored function (its Z8) that `function` names.
pub fn stored_function(repository: &dyn Repository, function: &str) -> Result<Value, TestError> {
    stored_value(repository, function)?
        .filter(|v| zeval_zobject::build::type_zid(v) == Some("Z8"))
        .ok_or_else(|| TestError::NotAFunction(format!("{function} is not a stored function (Z8)")))
}

/// [`run_within`] with the function already read ([`stored_function`]).
pub fn run_function(
    repository: &dyn Repository,
    engine: &dyn CallEngine,
    request: &TestRequest,
    z8: &Value,
    bounds: &TestBounds,
    progress: &dyn Fn(usize, usize),
) -> Result<Matrix, TestError> {
    let function = &request.function;
    let all_implementations = zids(&implementations(z8));
    let all_testers = zids(&testers(z8));
    let chosen_implementations = choose(
        &all_implementations,
        request.implementations.as_deref(),
        "implementation",
        function,
    )?;
    let chosen_testers = choose(&all_testers, request.testers.as_deref(), "tester", function)?;
    let total = chosen_implementations.len() * chosen_testers.len();
    if let Some(limit) = bounds.max_cells
        && total > limit
    {
        return Err(TestError::TooManyCells {
            cells: total,
            limit,
        });
    }
    // No cell, nothing to read: with no tester (or no implementation) chosen, the other
    // list could be some 11,000 ZIDs (its object's 100 KiB is the only bound), each read
    // below (a revision, and each tester's object), on an anonymous route. With cells,
    // both lists together are at most `max_cells` + 1.
    let (run_implementations, run_testers): (&[String], &[String]) = if total == 0 {
        (&[], &[])
    } else {
        (&chosen_implementations, &chosen_testers)
    };
    let revisions_at_start = run_implementations
        .iter()
        .chain(run_testers)
        .map(|zid| {
            let revision = repository.current_revision(zid).ok().flatten();
            (zid.clone(), revision.unwrap_or(0))
        })
        .collect();
    let out_of_time = || bounds.deadline.is_some_and(|d| Instant::now() >= d);
    let mut cells = Vec::with_capacity(total);
    let mut error_bytes_left = MAX_MATRIX_ERROR_BYTES;
    for tester in run_testers {
        let z20 = if out_of_time() {
            None
        } else {
            stored_value(repository, tester)?
        };
        for implementation in run_implementations {
            let started = Instant::now();
            let mut timing = CellTiming {
                out_of_time: &out_of_time,
                call_timeout: bounds.call_timeout,
                client: bounds.client.as_ref(),
                stopped_by_load: false,
                call_ms: 0.0,
                narrowed: false,
                own_time_limit: false,
            };
            let outcome = if out_of_time() {
                Err(CellFailure::NotRun)
            } else {
                match &z20 {
                    Some(z20) => run_cell(
                        repository,
                        engine,
                        function,
                        z8,
                        implementation,
                        z20,
                        &mut timing,
                    ),
                    None => Err(CellFailure::Failed(z5("Z504", [z6(tester.clone())]))),
                }
            };
            let (not_run, error) = match outcome {
                Ok(()) => (false, None),
                Err(CellFailure::Failed(e)) => (false, Some(e)),
                Err(CellFailure::NotRun) => (true, Some(not_run_error())),
            };
            let error = error
                .map(|e| zeval_zobject::canonicalize(&e).unwrap_or(e))
                .map(|e| shown_within(e, &mut error_bytes_left));
            cells.push(Cell {
                implementation: implementation.clone(),
                tester: tester.clone(),
                passed: error.is_none(),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                call_ms: timing.call_ms,
                error,
                not_run,
                own_time_limit: timing.own_time_limit,
                narrowed: timing.narrowed,
                stopped_by_load: timing.stopped_by_load,
            });
            progress(cells.len(), total);
        }
    }
    let passed = cells.iter().filter(|c| c.passed).count();
    let not_run = cells.iter().filter(|c| c.not_run).count();
    Ok(Matrix {
        function: function.clone(),
        implementations: chosen_implementations,
        testers: chosen_testers,
        cells,
        passed,
        not_run,
        total,
        ranking: None,
        revisions_at_start,
    })
}

/// A cell's clock: when to stop, and how long its call took (in milliseconds).
struct CellTiming<'a> {
    out_of_time: &'a dyn Fn() -> bool,
    /// [`TestBounds::call_timeout`].
    call_timeout: Option<std::time::Duration>,
    /// [`TestBounds::client`].
    client: Option<&'a std::sync::Arc<str>>,
    /// See [`Cell::stopped_by_load`].
    stopped_by_load: bool,
    call_ms: f64,
    /// See [`Cell::narrowed`].
    narrowed: bool,
    /// See [`Cell::own_time_limit`]: of the function's call, not the validator's.
    own_time_limit: bool,
}

/// Why a cell did not pass.
enum CellFailure {
    /// It ran and failed with this Z5.
    Failed(Value),
    /// The deadline passed before it (or its validator) could start.
    NotRun,
}

impl From<Value> for CellFailure {
    fn from(z5: Value) -> Self {
        CellFailure::Failed(z5)
    }
}

fn not_run_error() -> Value {
    message("not run: the test run's time budget ran out before this cell")
}

/// The ZIDs of a list, each once (a function's list may repeat one).
fn zids(items: &[Value]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .filter_map(|v| ref_zid(v).map(str::to_owned))
        .filter(|zid| seen.insert(zid.clone()))
        .collect()
}

fn choose(
    all: &[String],
    wanted: Option<&[String]>,
    what: &str,
    function: &str,
) -> Result<Vec<String>, TestError> {
    let Some(wanted) = wanted else {
        return Ok(all.to_vec());
    };
    // A set: a function's list can hold some ten thousand ZIDs (its object's size is the
    // only bound), and a request as many; looked up in the list, that made ~10^8
    // comparisons a request, open to anonymous callers under `calls = "open"`.
    let of_the_function: std::collections::HashSet<&String> = all.iter().collect();
    let mut seen = std::collections::HashSet::new();
    for zid in wanted {
        if !seen.insert(zid) {
            return Err(TestError::Duplicate(format!(
                "{zid} is listed twice in the {what}s to test"
            )));
        }
        if !of_the_function.contains(zid) {
            return Err(TestError::NotOfFunction(format!(
                "{zid} is not a {what} of {function}"
            )));
        }
    }
    Ok(wanted.to_vec())
}

/// One cell: `Ok` when the validator returns true, else the Z5 (normal or canonical), or
/// not run when `out_of_time` says so before the validator.
fn run_cell(
    repository: &dyn Repository,
    engine: &dyn CallEngine,
    function: &str,
    z8: &Value,
    implementation: &str,
    z20: &Value,
    timing: &mut CellTiming<'_>,
) -> Result<(), CellFailure> {
    let out_of_time = timing.out_of_time;
    let call = z20
        .get("Z20K2")
        .ok_or_else(|| message("the tester has no call (Z20K2)"))?;
    let validator = z20
        .get("Z20K3")
        .ok_or_else(|| message("the tester has no result validator (Z20K3)"))?;
    timing.narrowed = ref_zid(call.get("Z7K1").unwrap_or(&Value::Null)) == Some(function);
    let call = if timing.narrowed {
        with_implementations(call, z8, &[Value::String(implementation.into())])
    } else {
        call.clone()
    };
    let started = Instant::now();
    let answered = engine.result_of(call, false, timing.client);
    timing.stopped_by_load |= answered.stopped_by_load;
    let answer = answered.result;
    timing.call_ms = started.elapsed().as_secs_f64() * 1000.0;
    // The call's deadline is counted from after `started`: a call cut by it took at least
    // the whole timeout.
    timing.own_time_limit = answer
        .as_ref()
        .err()
        .is_some_and(zeval_zobject::error::is_plain_timeout)
        && timing
            .call_timeout
            .is_some_and(|timeout| timing.call_ms < timeout.as_secs_f64() * 1000.0);
    let result = answer?;
    let validator_function = validator
        .get("Z7K1")
        .and_then(ref_zid)
        .ok_or_else(|| message("the result validator (Z20K3) does not call a function by ZID"))?;
    if out_of_time() {
        return Err(CellFailure::NotRun);
    }
    let validator_z8 = stored_value(repository, validator_function)
        .map_err(|e| message(&e.to_string()))?
        .ok_or_else(|| z5("Z504", [z6(validator_function)]))?;
    let first_key = crate::narrow::list(validator_z8.get("Z8K1"))
        .first()
        .and_then(|arg| arg.get("Z17K2"))
        .and_then(zeval_zobject::build::string_value)
        .map(str::to_owned)
        .ok_or_else(|| message(&format!("{validator_function} takes no argument")))?;
    // The result goes in normal form (`result_of` gives it so), so a string that looks like a
    // ZID stays a string.
    let mut validation = validator.clone();
    if let Value::Object(m) = &mut validation {
        m.insert(first_key, result.clone());
    }
    let checked = engine.result_of(validation, false, timing.client);
    timing.stopped_by_load |= checked.stopped_by_load;
    let verdict = checked.result?;
    if is_true(&verdict) {
        Ok(())
    } else {
        // The result may be as large as an answer (64 MiB of text), and a run has up to
        // `max_test_cells` cells: quoted whole, a function answering 4 MB to a hundred
        // testers made a matrix of 400 MB, twice over as JSON.
        Err(z5("Z512", [quote(validator.clone()), quote_briefly(result)]).into())
    }
}

/// The most bytes the errors of one test run's cells take in all (as estimated before they
/// are written: [`zeval_zobject::json::estimated_bytes_within`]): 8 MiB. An error can be
/// large (metadata a call sets itself is 1 MiB, a result a validator refused is quoted up to
/// 64 KiB) and a run has up to `limits.max_test_cells` (200) cells; past this bound a cell's
/// error is shown as its type only.
pub const MAX_MATRIX_ERROR_BYTES: usize = 8 * 1024 * 1024;

/// `error` when it fits in what is `left` of [`MAX_MATRIX_ERROR_BYTES`] (taken from it), else
/// a Z500 that names its type.
fn shown_within(error: Value, left: &mut usize) -> Value {
    match zeval_zobject::json::estimated_bytes_within(&error, *left) {
        Some(bytes) => {
            *left -= bytes;
            error
        }
        None => {
            let code = zeval_zobject::error::error_code(&error).unwrap_or("Z500");
            let summary = message(&format!(
                "A {code} error, not shown: this run's errors passed {} MiB.",
                MAX_MATRIX_ERROR_BYTES >> 20
            ));
            zeval_zobject::canonicalize(&summary).unwrap_or(summary)
        }
    }
}

fn is_true(v: &Value) -> bool {
    ref_zid(v) == Some("Z41") || v.get("Z40K1").and_then(ref_zid) == Some("Z41")
}

fn message(text: &str) -> Value {
    z5("Z500", [z6(text)])
}

/// `POST /v1/test`.
pub(crate) mod http {
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};

    use super::{TestBounds, TestError, TestRequest};
    use crate::AppState;
    use crate::access::caller_async;
    use crate::config::CallPolicy;
    use crate::limits::read_body;
    use crate::problem::ApiError;

    pub(crate) async fn run(
        State(state): State<AppState>,
        headers: HeaderMap,
        checked: Option<axum::Extension<crate::access::TokenChecked>>,
        client: Option<axum::Extension<crate::limits::ClientKey>>,
        body: Body,
    ) -> Result<Response, ApiError> {
        let who = caller_async(state.repository.clone(), &headers, checked.as_deref()).await?;
        // Testers run arbitrary implementations, so only "open" lets anonymous users run them.
        if who.is_none() && state.config.access.calls != CallPolicy::Open {
            crate::access::count_rejection(&state, "unauthenticated");
            return Err(ApiError::Unauthorized(
                "running testers needs `Authorization: Bearer <token>`".into(),
            ));
        }
        let bytes = read_body(&headers, body, state.config.limits.orchestrator_body_bytes).await?;
        let request: TestRequest = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected {{function, implementations?, testers?}}: {e}"
            ))
        })?;
        let limits = &state.config.limits;
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(limits.test_timeout_ms);
        let call_timeout = std::time::Duration::from_millis(limits.call_timeout_ms);
        // A cell started before the run's deadline runs for its call's time: the run ends by
        // then, and so does every wait of the store it makes for its cells (the revisions,
        // testers and validators it reads), not only its cells' calls'.
        let run_ends = deadline + call_timeout;
        let bounds = TestBounds {
            max_cells: Some(limits.max_test_cells),
            deadline: Some(deadline),
            call_timeout: Some(call_timeout),
            client: client.map(|axum::Extension(crate::limits::ClientKey(client))| client),
        };
        let repository = state.repository.clone();
        let engine = state.engine.clone();
        let metrics = state.metrics.clone();
        let ranking = state.ranking.clone();
        let matrix = crate::blocking::run(move || {
            let (z8, mut matrix) = zeval_store::call_deadline::within(run_ends, || {
                let z8 = super::stored_function(repository.as_ref(), &request.function)?;
                let matrix = super::run_function(
                    repository.as_ref(),
                    engine.as_ref(),
                    &request,
                    &z8,
                    &bounds,
                    &|_, _| {},
                )?;
                Ok::<_, TestError>((z8, matrix))
            })?;
            // After the run, whatever its cells took: what it learnt is recorded whole (a
            // read cut here would record, or rank by, revision 0).
            ranking.record_matrix(&matrix);
            // The function as this run read it: reading it again for the explanation cost
            // two more store reads per request. Built-in functions are not ranked.
            // Its reads end by their own deadline, the run's having passed perhaps: past it,
            // figures not read leave list order (`Ranking::figures`).
            let explained_by = std::time::Instant::now() + crate::ranking::http::EXPLAIN_TIME;
            matrix.ranking = zeval_catalogue::get(&matrix.function).is_none().then(|| {
                zeval_store::call_deadline::within(explained_by, || {
                    ranking.explain_function(&matrix.function, &z8)
                })
            });
            // Written here, in the blocking work (the thread's other tasks moved away): a
            // matrix is megabytes at most
            // (`MAX_MATRIX_ERROR_BYTES`), and writing it held an async thread, and every
            // connection on it, meanwhile.
            let outcomes: Vec<&'static str> = matrix
                .cells
                .iter()
                .map(|cell| match (cell.passed, cell.not_run) {
                    (true, _) => "pass",
                    (false, true) => "not_run",
                    (false, false) => "fail",
                })
                .collect();
            Ok((outcomes, serde_json::to_vec(&matrix)))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the test run failed: {e}")))?
        .map_err(|e| match e {
            TestError::NotAFunction(m) => ApiError::NotFound(m),
            TestError::NotOfFunction(m) | TestError::Duplicate(m) => ApiError::BadRequest(m),
            e @ TestError::TooManyCells { .. } => ApiError::BadRequest(e.to_string()),
            TestError::Repository(e) => e.into(),
        })?;
        let (outcomes, text) = matrix;
        let text =
            text.map_err(|e| ApiError::Internal(format!("the matrix could not be written: {e}")))?;
        for outcome in outcomes {
            metrics.inc("zeval_tester_runs_total", &[("outcome", outcome)]);
        }
        Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            text,
        )
            .into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_errors_are_shown_within_their_bound() {
        let large = || z5("Z500", [z6("e".repeat(1024 * 1024))]);
        let mut left = MAX_MATRIX_ERROR_BYTES;
        let shown: Vec<Value> = (0..10).map(|_| shown_within(large(), &mut left)).collect();
        let whole = shown.iter().filter(|e| **e == large()).count();
        assert_eq!(
            whole, 7,
            "7 errors of 1 MiB and their overhead fit in 8 MiB"
        );
        let summary = &shown[9];
        assert_eq!(summary["Z5K1"], "Z500");
        assert!(
            summary.to_string().contains("A Z500 error, not shown"),
            "{summary}"
        );
        // A small error still fits where a large one did not.
        let small = z5("Z512", [z6("x")]);
        assert_eq!(shown_within(small.clone(), &mut left), small);
    }
}
