//! The orchestrator suite (`orchestrator/README.md`): each case runs in process against the
//! real orchestrator, with the suite's own mocks of the wiki and the evaluator (the only
//! things outside the project), fresh for every case.
//!
//! The evaluator mock is called in process ([`run`]), or over HTTP with Avro 0.0.4 through
//! the orchestrator's remote evaluator path ([`run_through_remote_evaluator`], the mock
//! then served by [`MockEvaluatorService`]), so that the wire is covered too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zeval_orchestrator::{
    CallOptions, CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry,
    FirstImplementationSelector, ImplementationSelector, Orchestrator, OrchestratorConfig,
    SecondImplementationSelector,
};
use zeval_store::{ObjectSource, StoreError};
use zeval_zobject::Value;
use zeval_zobject::build::{get_metadata, is_void, map_entries, string_value};

use crate::manifest::{read_json, resolve_file_ref};
use crate::mock_evaluator_service::MockEvaluatorService;
use crate::{ConformanceError, Report};

/// The eight metadata keys every result must carry unless a case says otherwise.
const STANDARD_METADATA: [&str; 8] = [
    "orchestrationMemoryUsage",
    "orchestrationCpuUsage",
    "orchestrationStartTime",
    "orchestrationEndTime",
    "orchestrationDuration",
    "orchestrationHostname",
    "implementationId",
    "implementationType",
];

/// One runnable case, with its files read.
pub struct Case {
    /// The case's `index`, its id.
    pub index: u64,
    /// The case's name.
    pub name: String,
    /// The function call.
    pub input: Value,
    /// Static validation on or off.
    pub do_validate: bool,
    selector: Option<String>,
    expected_value: Option<Value>,
    expected_error: Option<Value>,
    error_check: String,
    missing_metadata: Vec<String>,
    extra_metadata: Vec<String>,
}

/// The suite's mocks and cases, loaded once.
pub struct Suite {
    dir: PathBuf,
    /// The runnable cases (skipped ones left out).
    pub cases: Vec<Case>,
    presets: Arc<HashMap<String, Value>>,
    /// The evaluate URL of a remote evaluator to send code calls to, instead of calling the
    /// mock evaluator in process.
    remote_evaluator: Option<String>,
    /// What the mock wiki has read, shared by every orchestrator of the suite.
    wiki_texts: Arc<WikiTexts>,
}

impl Suite {
    /// Loads the suite in `dir` (`cases_override` replaces `cases.json`).
    pub fn load(dir: &Path, cases_override: Option<&Path>) -> Result<Suite, ConformanceError> {
        let cases_path = cases_override.map_or_else(|| dir.join("cases.json"), Path::to_path_buf);
        let manifest = read_json(&cases_path)?;
        let format = |m: &str| ConformanceError::Format {
            path: cases_path.clone(),
            message: m.into(),
        };
        let mut cases = Vec::new();
        for raw in manifest.as_array().ok_or_else(|| format("not an array"))? {
            if raw.get("skip").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let field = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
            let strings = |k: &str| -> Vec<String> {
                field(k)
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let optional = |k: &str| -> Result<Option<Value>, ConformanceError> {
                match field(k) {
                    Value::Null => Ok(None),
                    v => resolve_file_ref(&v, dir).map(Some),
                }
            };
            cases.push(Case {
                index: field("index")
                    .as_u64()
                    .ok_or_else(|| format("a case has no index"))?,
                name: field("name").as_str().unwrap_or_default().to_string(),
                input: resolve_file_ref(&field("input"), dir)?,
                do_validate: field("do_validate").as_bool().unwrap_or(true),
                selector: field("implementation_selector").as_str().map(String::from),
                expected_value: optional("expected_value")?,
                expected_error: optional("expected_error")?,
                error_check: field("error_check").as_str().unwrap_or("none").to_string(),
                missing_metadata: strings("missing_metadata"),
                extra_metadata: strings("extra_metadata"),
            });
        }
        let mock = read_json(&dir.join("evaluator-mock.json"))?;
        let presets = mock
            .get("presets")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Suite {
            dir: dir.to_path_buf(),
            cases,
            presets: Arc::new(presets),
            remote_evaluator: None,
            wiki_texts: Arc::default(),
        })
    }

    /// The same suite, its code calls sent to the evaluator service at `url` (Avro 0.0.4
    /// over HTTP, through the server's remote evaluator adapter) instead of the in-process
    /// mock.
    pub fn through_remote_evaluator(mut self, url: String) -> Suite {
        self.remote_evaluator = Some(url);
        self
    }

    /// The suite's evaluator presets, keyed by function name.
    pub fn presets(&self) -> Arc<HashMap<String, Value>> {
        self.presets.clone()
    }

    /// A fresh orchestrator with the suite's mocks, as the original builds per case.
    pub fn orchestrator(&self) -> Orchestrator {
        let wiki = Arc::new(MockWiki {
            dir: self.dir.clone(),
            texts: self.wiki_texts.clone(),
        });
        let evaluators = match &self.remote_evaluator {
            None => {
                let mut evaluators = EvaluatorRegistry::new();
                evaluators.register(
                    EvaluatorRegistry::DEFAULT_LANGUAGES,
                    Arc::new(MockEvaluator {
                        presets: self.presets.clone(),
                    }),
                );
                evaluators
            }
            Some(url) => remote_evaluators(url),
        };
        Orchestrator::new(wiki, evaluators, OrchestratorConfig::default())
    }

    /// The options a case runs with.
    pub fn options(&self, case: &Case, do_validate: bool) -> CallOptions {
        let selector: Option<Arc<dyn ImplementationSelector>> = match case.selector.as_deref() {
            Some("SecondImplementationSelector") => Some(Arc::new(SecondImplementationSelector)),
            // The original's random selector throws with two or more implementations and every
            // case using it has one, so list order is what it does.
            Some(_) => Some(Arc::new(FirstImplementationSelector)),
            None => None,
        };
        CallOptions {
            do_validate,
            return_normal: false,
            selector,
            timeout: None,
            policy: None,
            value_only: false,
            client: None,
        }
    }

    /// Runs one case and checks the README's pass rules.
    pub fn run_case(&self, case: &Case) -> Result<(), String> {
        let orchestrator = self.orchestrator();
        let result = orchestrator.orchestrate(&case.input, &self.options(case, case.do_validate));
        check(case, &result)
    }
}

/// The evaluators `zeval serve` sets up when every language runs at `url` in Avro 0.0.4.
fn remote_evaluators(url: &str) -> EvaluatorRegistry {
    let mut config = zeval_server::Config::default();
    config.evaluators.insert(
        "*".to_owned(),
        zeval_server::config::EvaluatorEndpoint::Remote {
            url: url.to_owned(),
            format: zeval_server::config::WireFormat::Avro,
        },
    );
    let metrics = Arc::new(zeval_server::Metrics::default());
    zeval_server::evaluators::registry(&config, &metrics, None)
        .expect("remote evaluators need no guests")
}

/// Runs the suite in `suite_dir`, calling the evaluator mock in process.
pub fn run(suite_dir: &Path, cases_override: Option<&Path>) -> Result<Report, ConformanceError> {
    run_suite(Suite::load(suite_dir, cases_override)?)
}

/// Runs the suite in `suite_dir` with its code calls sent over HTTP in Avro 0.0.4 to the
/// evaluator mock served on a loopback port ([`MockEvaluatorService`]). Returns the report
/// and how many requests reached the service.
pub fn run_through_remote_evaluator(
    suite_dir: &Path,
    cases_override: Option<&Path>,
) -> Result<(Report, usize), ConformanceError> {
    let suite = Suite::load(suite_dir, cases_override)?;
    let service =
        MockEvaluatorService::start(suite.presets()).map_err(|source| ConformanceError::Io {
            path: suite_dir.join("evaluator-mock.json"),
            source,
        })?;
    let report = run_suite(suite.through_remote_evaluator(service.url()))?;
    Ok((report, service.requests()))
}

fn run_suite(suite: Suite) -> Result<Report, ConformanceError> {
    let mut report = Report::new("orchestrator");
    for case in &suite.cases {
        let outcome = suite.run_case(case);
        report.push(
            "cases.json",
            case.index.to_string(),
            case.name.clone(),
            outcome,
        );
    }
    Ok(report)
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn check(case: &Case, result: &Value) -> Result<(), String> {
    let value = result.get("Z22K1").ok_or("the result has no Z22K1")?;
    match &case.expected_value {
        None if !is_void(value) => {
            return Err(format!("Z22K1 should be void, got {}", compact(value)));
        }
        Some(expected) if expected != value => {
            return Err(format!(
                "Z22K1 differs: expected {}, got {}",
                compact(expected),
                compact(value)
            ));
        }
        _ => {}
    }
    let meta = result.get("Z22K2").ok_or("the result has no Z22K2")?;
    let is_map = meta
        .get("Z1K1")
        .and_then(|t| t.get("Z7K1"))
        .and_then(zeval_zobject::build::ref_zid)
        == Some("Z883");
    if !is_map {
        return Err(format!("Z22K2 is not a Z883 map: {}", compact(meta)));
    }
    let error = get_metadata(meta, "errors")
        .cloned()
        .unwrap_or_else(|| Value::from("Z24"));
    match case.error_check.as_str() {
        "equals" => {
            let expected = case.expected_error.clone().unwrap_or(Value::Null);
            if expected != error {
                return Err(format!(
                    "error differs: expected {}, got {}",
                    compact(&expected),
                    compact(&error)
                ));
            }
        }
        "void" if !is_void(&error) => {
            return Err(format!("error should be void, got {}", compact(&error)));
        }
        _ => {}
    }
    let keys: Vec<String> = map_entries(meta)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, _)| string_value(k).map(String::from))
        .collect();
    for key in STANDARD_METADATA {
        let present = keys.iter().any(|k| k == key);
        let should_be_missing = case.missing_metadata.iter().any(|k| k == key);
        if present == should_be_missing {
            let state = if present { "present" } else { "absent" };
            return Err(format!(
                "metadata {key} is {state}; error {}",
                compact(&error)
            ));
        }
    }
    for key in &case.extra_metadata {
        if !keys.contains(key) {
            return Err(format!("metadata {key} is absent"));
        }
    }
    Ok(())
}

/// The mock wiki: `wiki/<ZID>.json`, then `../definitions/<ZID>.json`; any other ZID makes
/// the whole fetch fail, and Z1010101 (registered with an error) makes the answer empty.
///
/// An object's file is read once per suite and its text kept ([`WikiTexts`]), as the
/// original's mock served its bodies from memory: a file read on every fetch was 7 % of a
/// case's time in `zeval bench orchestrator` (path lookups, `statx`, `open`, `read`), a
/// cost of the harness and not of the orchestrator. Every fetch still parses the text, as
/// a wiki's answer must be.
struct MockWiki {
    dir: PathBuf,
    texts: Arc<WikiTexts>,
}

/// The text of each object the mock wiki was asked for, by ZID (`None`: no file has it).
type WikiTexts = Mutex<HashMap<String, Option<Arc<str>>>>;

impl MockWiki {
    fn text(&self, zid: &str) -> Result<Option<Arc<str>>, StoreError> {
        let texts = || self.texts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(text) = texts().get(zid) {
            return Ok(text.clone());
        }
        let candidates = [
            self.dir.join("wiki").join(format!("{zid}.json")),
            self.dir.join("../definitions").join(format!("{zid}.json")),
        ];
        let text = match candidates.iter().find(|p| p.is_file()) {
            Some(path) => Some(Arc::from(
                std::fs::read_to_string(path).map_err(|e| StoreError::Database(e.to_string()))?,
            )),
            None => None,
        };
        texts().insert(zid.to_owned(), text.clone());
        Ok(text)
    }
}

impl ObjectSource for MockWiki {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut out = HashMap::new();
        for zid in zids {
            if zid == "Z1010101" {
                return Ok(HashMap::new());
            }
            match self.text(zid)? {
                Some(text) => {
                    let value = zeval_zobject::json::parse(&text)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    out.insert(zid.clone(), value);
                }
                None => {
                    let joined = zids.join("|");
                    return Err(StoreError::Fetch {
                        zids: joined.clone(),
                        message: format!(
                            "request to http://thewiki/?action=wikilambda_fetch&format=json&zids={joined} failed, reason: No persistent zobject available for {zid}."
                        ),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The mock evaluator: presets keyed by function name; unknown names fail at the network
/// level.
struct MockEvaluator {
    presets: Arc<HashMap<String, Value>>,
}

impl CodeEvaluator for MockEvaluator {
    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure> {
        let argument = |key: &str| {
            call.arguments
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let reply =
            preset_reply(&self.presets, &call.function_name, argument).map_err(|reason| {
                EvaluatorFailure(format!(
                    "request to http://theevaluator/ failed, reason: {reason}"
                ))
            })?;
        if !(200..300).contains(&reply.status) {
            return Err(EvaluatorFailure(format!(
                "Function evaluation failed with status {}: {}",
                reply.status,
                compact(&reply.body)
            )));
        }
        Ok(reply.body)
    }
}

/// What the mock evaluator answers: an HTTP status and a JSON body.
pub(crate) struct PresetReply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// The mock's answer to a call of `function_name` whose arguments `argument` gives by full
/// key, or the reason the request fails at the network level (no preset for the name).
pub(crate) fn preset_reply(
    presets: &HashMap<String, Value>,
    function_name: &str,
    argument: impl Fn(&str) -> Option<Value>,
) -> Result<PresetReply, String> {
    let Some(preset) = presets.get(function_name) else {
        return Err(format!(
            "The evaluator for ZID {function_name} was never set!"
        ));
    };
    let status = preset
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    let body = match preset.get("reply_body") {
        Some(Value::Null) | None => computed_reply(function_name, argument),
        Some(body) => body.clone(),
    };
    Ok(PresetReply { status, body })
}

/// The two presets whose reply the suite computes from the request.
fn computed_reply(name: &str, argument: impl Fn(&str) -> Option<Value>) -> Value {
    let argument = |key: &str| argument(key).unwrap_or(Value::Null);
    let text = match name {
        "Z40002" => {
            let n: i64 = string_value(&argument("Z40002K1"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (n + 1).to_string()
        }
        "Z10143" => compact(&argument("Z10143K1")),
        _ => String::new(),
    };
    zeval_zobject::build::success(zeval_zobject::build::z6(text))
}

impl Suite {
    /// The canonical Z22 a case produces (for inspecting failures).
    pub fn result(&self, case: &Case) -> Value {
        self.orchestrator()
            .orchestrate(&case.input, &self.options(case, case.do_validate))
    }
}
