//! The orchestrator suite (`orchestrator/README.md`): each case runs in process against the
//! real orchestrator, with the suite's own mocks of the wiki and the evaluator (the only
//! things outside the project), fresh for every case.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeval_orchestrator::{
    CallOptions, CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry,
    FirstImplementationSelector, ImplementationSelector, Orchestrator, OrchestratorConfig,
    SecondImplementationSelector,
};
use zeval_store::{ObjectSource, StoreError};
use zeval_zobject::Value;
use zeval_zobject::build::{get_metadata, is_void, map_entries, string_value};

use crate::manifest::{read_json, resolve_file_ref};
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
        })
    }

    /// A fresh orchestrator with the suite's mocks, as the original builds per case.
    pub fn orchestrator(&self) -> Orchestrator {
        let wiki = Arc::new(MockWiki {
            dir: self.dir.clone(),
        });
        let mut evaluators = EvaluatorRegistry::new();
        evaluators.register(
            EvaluatorRegistry::DEFAULT_LANGUAGES,
            Arc::new(MockEvaluator {
                presets: self.presets.clone(),
            }),
        );
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
        }
    }

    /// Runs one case and checks the README's pass rules.
    pub fn run_case(&self, case: &Case) -> Result<(), String> {
        let orchestrator = self.orchestrator();
        let result = orchestrator.orchestrate(&case.input, &self.options(case, case.do_validate));
        check(case, &result)
    }
}

/// Runs the suite in `suite_dir`.
pub fn run(suite_dir: &Path, cases_override: Option<&Path>) -> Result<Report, ConformanceError> {
    let suite = Suite::load(suite_dir, cases_override)?;
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
struct MockWiki {
    dir: PathBuf,
}

impl ObjectSource for MockWiki {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut out = HashMap::new();
        for zid in zids {
            if zid == "Z1010101" {
                return Ok(HashMap::new());
            }
            let candidates = [
                self.dir.join("wiki").join(format!("{zid}.json")),
                self.dir.join("../definitions").join(format!("{zid}.json")),
            ];
            match candidates.iter().find(|p| p.is_file()) {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| StoreError::Database(e.to_string()))?;
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
        let name = &call.function_name;
        let Some(preset) = self.presets.get(name) else {
            return Err(EvaluatorFailure(format!(
                "request to http://theevaluator/ failed, reason: The evaluator for ZID {name} was never set!"
            )));
        };
        let status = preset.get("status").and_then(Value::as_u64).unwrap_or(200);
        let body = match preset.get("reply_body") {
            Some(Value::Null) | None => computed_reply(name, call),
            Some(body) => body.clone(),
        };
        if !(200..300).contains(&status) {
            return Err(EvaluatorFailure(format!(
                "Function evaluation failed with status {status}: {}",
                compact(&body)
            )));
        }
        Ok(body)
    }
}

/// The two presets whose reply the suite computes from the request.
fn computed_reply(name: &str, call: &CodeCall) -> Value {
    let argument = |k: &str| {
        call.arguments
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null)
    };
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
