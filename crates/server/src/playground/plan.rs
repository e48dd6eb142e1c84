//! `POST /v1/plan`: the server decides how a call would run, so that a browser can run it.
//!
//! The body is a call's (`{zobject, doValidate}`). The answer is either
//! - `{"where": "browser", …}`: the call reaches exactly one code implementation of the
//!   called function first, in a language the browser can run (JavaScript or Python), and
//!   the answer holds what the server's own evaluator would be handed for it: the
//!   implementation's ZID, its language, and the evaluator request (`request`, the executor
//!   form of the evaluator API, built by the same [`crate::evaluators`] code as a real call),
//!   plus the guest module to run it in and the limits of a call;
//! - or `{"where": "server", "reason": …}`: a composition, a built-in, a compiled language,
//!   code that calls other functions (`W.Call`), an argument that needs code to run first, or
//!   an error. The browser then makes the call.
//!
//! The decision is the real orchestrator's: the call is orchestrated with the same object
//! sources (catalogue, store, wiki when configured), limits, implementation order (the
//! ranking, see [`OrderOnly`]) and access policy as a call, but
//! its code evaluator ([`Recorder`]) records the first code call instead of running it and
//! ends the orchestration there. A composition or built-in chosen for the called function
//! ends it too (the [`Planner`] policy refuses everything once it has decided), so planning
//! never runs user code and does little work. Planning is a work route: it goes through the
//! same admission (body size, work slots) as calls, and the same access rules
//! (`access.calls`, [`crate::narrow::ApprovedOnly`]).
//!
//! What the browser computes is never sent back: nothing here stores or caches results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zeval_orchestrator::{
    CallOptions, CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry, ImplementationInfo,
    ImplementationPolicy, ImplementationSelector, Orchestrator, OrchestratorConfig,
};
use zeval_store::{ObjectSource, StoreError, WikiSource};
use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, ref_zid};

use super::guests::Guests;
use crate::access::count_rejection;
use crate::problem::ApiError;
use crate::{AppState, Repository, narrow};

/// The message of the error the recorder answers the orchestrator with; it never reaches a
/// caller.
const PLANNED: &str = "zeval planned this call for a browser and did not run it";

/// What planning decided.
#[derive(Debug, Clone)]
enum Decision {
    /// Nothing decided yet.
    Open,
    /// The called function's implementation `zid` (code) was chosen; its code call is next.
    AwaitingCode { implementation: Option<String> },
    /// The browser can run this code call of implementation `implementation`.
    Browser {
        implementation: Option<String>,
        call: Box<CodeCall>,
    },
    /// The call must run on the server, for this reason.
    Server(String),
}

/// The access policy of planning: the request's own policy first (what the call would be
/// allowed), then the record of which implementation of the called function was chosen.
struct Planner {
    function: String,
    inner: Option<Arc<dyn ImplementationPolicy>>,
    decision: Mutex<Decision>,
}

impl Planner {
    fn decide(&self, decision: Decision) {
        *self.decision.lock().unwrap_or_else(|e| e.into_inner()) = decision;
    }

    fn decision(&self) -> Decision {
        self.decision
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ImplementationPolicy for Planner {
    /// The request's own rule: a plan hands the browser only code the call could run here
    /// (until 2026-12-06 the default, "allowed", stood in, so an anonymous plan of an inline
    /// function with another signature got approved code that `/evaluate` refused with 403).
    fn allows_signature(&self, function_zid: &str, signature: &Value) -> Result<(), String> {
        match &self.inner {
            Some(inner) => inner.allows_signature(function_zid, signature),
            None => Ok(()),
        }
    }

    fn allows_signature_as_read(
        &self,
        function_zid: &str,
        signature: &Value,
    ) -> Result<(), String> {
        match &self.inner {
            Some(inner) => inner.allows_signature_as_read(function_zid, signature),
            None => Ok(()),
        }
    }

    fn allows_as_read(&self, zid: &str, read: &Value) -> Result<(), String> {
        match &self.inner {
            Some(inner) => inner.allows_as_read(zid, read),
            None => Ok(()),
        }
    }

    fn checks_reads(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.checks_reads())
    }

    fn could_not_check(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.could_not_check())
    }

    fn objects_read(&self) -> Vec<String> {
        self.inner
            .as_ref()
            .map(|inner| inner.objects_read())
            .unwrap_or_default()
    }

    fn allows(
        &self,
        function_zid: &str,
        implementation: &ImplementationInfo,
    ) -> Result<(), String> {
        let mut decision = self.decision.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*decision, Decision::Browser { .. } | Decision::Server(_)) {
            // Decided: stop the orchestration at the next implementation.
            return Err(PLANNED.to_owned());
        }
        if let Some(inner) = &self.inner {
            inner.allows(function_zid, implementation)?;
        }
        if function_zid == self.function && matches!(*decision, Decision::AwaitingCode { .. }) {
            // The function again before its own code ran: an argument calls it, and the
            // next code call of this function would be that one, not the planned one.
            *decision = Decision::Server(format!(
                "an argument of the call calls {function_zid} itself first"
            ));
            return Err(PLANNED.to_owned());
        }
        if function_zid == self.function && matches!(*decision, Decision::Open) {
            *decision = match implementation.kind {
                "Evaluated" => Decision::AwaitingCode {
                    implementation: implementation.zid.clone(),
                },
                kind => Decision::Server(format!(
                    "{} of {function_zid} is {}: it runs on the server",
                    implementation
                        .zid
                        .as_deref()
                        .unwrap_or("the implementation"),
                    match kind {
                        "BuiltIn" => "built in",
                        "Composition" => "a composition",
                        other => other,
                    }
                )),
            };
            if matches!(*decision, Decision::Server(_)) {
                return Err(PLANNED.to_owned());
            }
        }
        Ok(())
    }
}

/// The code evaluator of planning: records the first code call and answers with an error,
/// which ends the orchestration.
struct Recorder {
    planner: Arc<Planner>,
    /// The most bytes of JSON code may be given ([`fits_a_guest`]).
    max_input_bytes: usize,
}

/// Whether `call`'s code, its function's name and its arguments as JSON take at most `max`
/// bytes: what a guest is given (the runner's input), and the evaluator refuses more. A plan copies them several
/// times over (the call recorded, the executor request, its text, the plan, its answer),
/// outside the request's budget, and a request of 100 KiB can stand for megabytes of
/// arguments (one string shared 1,024 times): until 2026-12-06 a plan of 9.4 MB of
/// arguments answered 22 MB, written on the runtime's thread
/// (`playground::a_plan_does_not_copy_arguments_code_may_not_be_given`).
fn fits_a_guest(call: &CodeCall, max: usize) -> bool {
    let Some(mut left) = max.checked_sub(call.code.len() + call.function_name.len()) else {
        return false;
    };
    for (_, value) in &call.arguments {
        match zeval_zobject::json::to_vec_within(value, left) {
            Some(text) => left -= text.len(),
            None => return false,
        }
    }
    true
}

impl CodeEvaluator for Recorder {
    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure> {
        let decision = self.planner.decision();
        let next = match decision {
            Decision::AwaitingCode { implementation }
                if call.function_name == self.planner.function =>
            {
                if !fits_a_guest(call, self.max_input_bytes) {
                    Decision::Server(format!(
                        "the arguments of {} take more than the {} bytes code may be given",
                        implementation.as_deref().unwrap_or("the implementation"),
                        self.max_input_bytes
                    ))
                } else if calls_functions(&call.code) {
                    Decision::Server(format!(
                        "{} calls other functions (W.Call), which only the server can answer",
                        implementation.as_deref().unwrap_or("the implementation")
                    ))
                } else if browser_family(&call.language).is_some() {
                    Decision::Browser {
                        implementation,
                        call: Box::new(call.clone()),
                    }
                } else {
                    Decision::Server(format!(
                        "{} is in {}, which runs only on the server",
                        implementation.as_deref().unwrap_or("the implementation"),
                        call.language
                    ))
                }
            }
            Decision::Open | Decision::AwaitingCode { .. } => Decision::Server(format!(
                "the call runs code of {} before its own implementation (an argument or the \
                 function itself is computed by code)",
                call.function_name
            )),
            decided => decided,
        };
        self.planner.decide(next);
        Ok(zeval_zobject::build::failure(
            zeval_zobject::error::z5_untyped("Z507", PLANNED),
        ))
    }
}

/// Whether `code` may call other functions through `W.Call` (reentrant calls, which go
/// back to the server's orchestrator): a browser's guest has no host to call. A mention in
/// a comment also counts, which only costs running that call on the server; code that
/// reaches `W.Call` without naming it gets "no host" in the browser, an error it shows.
fn calls_functions(code: &str) -> bool {
    code.contains("W.Call") || code.contains("W[")
}

/// The guest family that runs `language` in a browser: JavaScript and Python only.
pub(super) fn browser_family(language: &str) -> Option<zeval_evaluator::Family> {
    use zeval_evaluator::Family;
    match zeval_evaluator::language::family_for(language, zeval_evaluator::Variant::Omnibus)? {
        family @ (Family::JavaScript | Family::Python) => Some(family),
        _ => None,
    }
}

/// The server's implementation order (the ranking), asked as a call asks it; but planning
/// runs nothing, so it teaches the ranking nothing (no `observe`) nor takes a call's turn to
/// explore (`order_without_exploring`), and a browser does not fall through to another
/// implementation when one answers an error.
struct OrderOnly(Arc<dyn ImplementationSelector>);

impl ImplementationSelector for OrderOnly {
    fn order(&self, function_zid: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        // No deadline: as far off as the orchestrator's own longest.
        let far = std::time::Instant::now() + Duration::from_secs(3600);
        self.0
            .order_without_exploring(function_zid, implementations, far)
    }

    fn order_within(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: std::time::Instant,
    ) -> Vec<usize> {
        self.0
            .order_without_exploring(function_zid, implementations, deadline)
    }
}

/// The wiki as plans read it: its objects kept for [`PLAN_WIKI_MAX_AGE`], at most
/// [`PLAN_WIKI_OBJECTS`] of them and [`PLAN_WIKI_BYTES`] in all (the calls' own cache is
/// not shared with plans, which read the store's latest revisions).
pub(crate) type PlanWiki = zeval_store::SharedCache<WikiSource>;

/// How long a plan uses a wiki object before asking the wiki again.
pub(crate) const PLAN_WIKI_MAX_AGE: Duration = Duration::from_secs(60);

/// The most wiki objects kept for plans.
pub(crate) const PLAN_WIKI_OBJECTS: usize = 1_000;

/// The most bytes of wiki objects kept for plans (as `zeval_store::estimated_bytes` counts).
pub(crate) const PLAN_WIKI_BYTES: usize = 32 * 1024 * 1024;

/// A [`PlanWiki`] for the wiki at `url`.
pub(crate) fn plan_wiki(url: &str) -> PlanWiki {
    zeval_store::SharedCache::new(WikiSource::new(url.to_owned()), PLAN_WIKI_OBJECTS)
        .with_max_age(PLAN_WIKI_MAX_AGE)
        .with_max_bytes(PLAN_WIKI_BYTES)
}

/// The objects a call reads, as the server's orchestrator reads them, without its cache:
/// the repository (catalogue, then store; always the latest revision), then the wiki.
struct RepositorySource(Arc<dyn Repository>);

impl ObjectSource for RepositorySource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        for zid in zids {
            match self.0.get(zid) {
                Ok(Some(z2)) => {
                    found.insert(zid.clone(), z2);
                }
                Ok(None) => {}
                Err(e) => return Err(StoreError::Invalid(e.to_string())),
            }
        }
        Ok(found)
    }
}

/// Plans `zobject` with the server's configuration and `policy`.
fn plan_call(
    state: &AppState,
    zobject: &Value,
    do_validate: bool,
    policy: Option<Arc<dyn ImplementationPolicy>>,
    guests: &Guests,
    wiki: Option<&Arc<PlanWiki>>,
) -> Value {
    let Some(function) = narrow::called_function(zobject)
        .map(str::to_owned)
        .or_else(|| {
            zobject
                .get("Z7K1")
                .and_then(|f| f.get("Z8K5"))
                .and_then(ref_zid)
                .map(str::to_owned)
        })
    else {
        return server("the call does not name its function (Z7K1)");
    };
    let planner = Arc::new(Planner {
        function: function.clone(),
        inner: policy,
        decision: Mutex::new(Decision::Open),
    });
    let evaluator = zeval_evaluator::EvaluatorConfig::new(guests.dir());
    let recorder: Arc<dyn CodeEvaluator> = Arc::new(Recorder {
        planner: planner.clone(),
        max_input_bytes: evaluator.limits.max_input_bytes,
    });
    let mut registry = EvaluatorRegistry::new();
    registry.register(crate::evaluators::language_strings(), recorder);
    let mut layers = zeval_store::Layered::new().with(RepositorySource(state.repository.clone()));
    if let Some(wiki) = wiki {
        layers = layers.with_shared(wiki.clone());
    }
    let config = &state.config;
    let orchestrator = Orchestrator::new(
        Arc::new(layers),
        registry,
        OrchestratorConfig {
            timeout: Duration::from_millis(config.limits.call_timeout_ms),
            budget: config.limits.budget(),
            instance_name: config.instance_name(),
            ..OrchestratorConfig::default()
        },
    );
    let options = CallOptions {
        do_validate,
        policy: Some(planner.clone()),
        selector: Some(Arc::new(OrderOnly(state.ranking.clone()))),
        ..CallOptions::default()
    };
    let z22 = orchestrator.orchestrate(zobject, &options);
    match planner.decision() {
        Decision::Browser {
            implementation,
            call,
        } => browser(&function, implementation, &call, guests, &evaluator),
        Decision::Server(reason) => server(&reason),
        Decision::Open | Decision::AwaitingCode { .. } => {
            // The orchestration ended before any implementation of the function ran: an
            // error (bad call, refused by the access rules, time) or a value that needs none.
            match envelope_error(&z22) {
                Some(error) if error.get("Z5K1") == Some(&Value::String("Z559".into())) => {
                    json!({"where": "refused", "error": error})
                }
                _ => server("the call ends before any implementation runs"),
            }
        }
    }
}

fn server(reason: &str) -> Value {
    json!({"where": "server", "reason": reason})
}

/// The browser's plan of `call`, to run within the limits of `evaluator`'s guests.
fn browser(
    function: &str,
    implementation: Option<String>,
    call: &CodeCall,
    guests: &Guests,
    evaluator: &zeval_evaluator::EvaluatorConfig,
) -> Value {
    let limits = &evaluator.limits;
    let Some(family) = browser_family(&call.language) else {
        return server("the language runs only on the server");
    };
    let Some(guest) = guests.describe(family) else {
        return server(&format!(
            "this server has no {family} guest module to send to browsers"
        ));
    };
    let request = crate::evaluators::executor_request(call);
    let body = zeval_evaluator::wire::json::encode_executor(&request);
    // As deep as a call's arguments may be (serde_json alone stops at 128 levels, and a list
    // of 200 texts is some 400 in normal form).
    let request: Value = zeval_zobject::json::parse_slice(&body).unwrap_or(Value::Null);
    let wall = limits.wall_time.min(call.remaining_time);
    json!({
        "where": "browser",
        "function": function,
        "implementation": implementation,
        "language": call.language,
        "guest": guest,
        "request": request,
        "limits": {
            "wallTimeMs": u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            "maxOutputBytes": limits.max_output_bytes,
            "memoryBytes": limits.memory_bytes,
        },
    })
}

/// `POST /v1/plan`.
pub(super) async fn handle(
    State((state, guests, wiki)): State<(AppState, Arc<Guests>, Option<Arc<PlanWiki>>)>,
    headers: HeaderMap,
    checked: Option<axum::Extension<crate::access::TokenChecked>>,
    body: Body,
) -> Result<Response, ApiError> {
    let (who, request) =
        crate::orchestrator_api::read_call(&state, &headers, checked.as_deref(), body).await?;
    let Value::Object(mut request) = request else {
        return Err(ApiError::BadRequest(
            "the body must be an object {\"zobject\": …, \"doValidate\": …}, as a call's".into(),
        ));
    };
    let do_validate = request
        .get("doValidate")
        .is_some_and(|v| v == &Value::Bool(true));
    let zobject = request.remove("zobject").unwrap_or(Value::Null);
    let policy = crate::orchestrator_api::call_policy(&state, who.as_ref())?;
    let planned = tokio::task::spawn_blocking(move || {
        let plan = plan_call(
            &state,
            &zobject,
            do_validate,
            policy,
            &guests,
            wiki.as_ref(),
        );
        zeval_zobject::depth::drop_iteratively(zobject);
        // Written here, off the runtime's threads: a plan holds the call's arguments, up to
        // what code may be given (8 MiB).
        let written = if plan["where"] == "refused" {
            Err(plan["error"].clone())
        } else {
            Ok(serde_json::to_vec(&plan).unwrap_or_default())
        };
        zeval_zobject::depth::drop_iteratively(plan);
        (written, state)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("planning failed: {e}")))?;
    match planned {
        (Err(error), state) => {
            count_rejection(&state, "not_approved");
            Err(ApiError::Forbidden(error))
        }
        (Ok(body), _) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()),
    }
}
