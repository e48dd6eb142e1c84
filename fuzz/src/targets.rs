//! The fuzz targets: each takes untrusted bytes and returns `Err` when an oracle other than
//! "does not panic" fails (a panic is caught by the driver).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use zeval_evaluator::wire::{self, Encoding, Request};
use zeval_orchestrator::{CallOptions, EvaluatorRegistry, Orchestrator, OrchestratorConfig};
use zeval_store::catalogue::CatalogueSource;
use zeval_zobject::depth::drop_iteratively;
use zeval_zobject::{Form, Value};

/// The deadline each orchestrator call gets (the `orchestrator` target).
pub const ORCHESTRATOR_TIMEOUT: Duration = Duration::from_secs(2);

/// How far past [`ORCHESTRATOR_TIMEOUT`] a call may answer before it counts as over budget
/// (debug builds on a loaded two-core machine are slow to notice a deadline).
pub const ORCHESTRATOR_GRACE: Duration = Duration::from_secs(5);

/// The targets, by the name the command line uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// ZObject JSON parsing, then normalize, canonicalize and validate.
    Zobject,
    /// The evaluator's wire decoder with each content type (JSON, Avro 0.0.x).
    Wire,
    /// The parser of a guest runner's stdout.
    GuestOutput,
    /// The orchestrator API's body → Z7 path (`zobject`, `doValidate`, normalize).
    HttpBody,
    /// The orchestrator on small random well-formed calls of built-in functions.
    Orchestrator,
    /// What the server reads from a worker process (which runs untrusted code): frames and
    /// responses (`zeval_worker::protocol`).
    WorkerResponse,
    /// What a compiled implementation (C, Rust) writes on stdout: the calling convention's
    /// record, read back for every kind of result (`zeval_compiler::decode_result`).
    CompiledAnswer,
}

impl Target {
    /// Every target, in the order the smoke test runs them.
    pub const ALL: [Target; 7] = [
        Target::Zobject,
        Target::Wire,
        Target::GuestOutput,
        Target::HttpBody,
        Target::Orchestrator,
        Target::WorkerResponse,
        Target::CompiledAnswer,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Zobject => "zobject",
            Target::Wire => "wire",
            Target::GuestOutput => "guest-output",
            Target::HttpBody => "http-body",
            Target::Orchestrator => "orchestrator",
            Target::WorkerResponse => "worker-response",
            Target::CompiledAnswer => "compiled-answer",
        }
    }

    /// Runs the target on one input.
    pub fn run(self, data: &[u8]) -> Result<(), String> {
        match self {
            Target::Zobject => zobject(data),
            Target::Wire => wire_decode(data),
            Target::GuestOutput => guest_output(data),
            Target::HttpBody => http_body(data),
            Target::Orchestrator => orchestrator(data),
            Target::WorkerResponse => worker_response(data),
            Target::CompiledAnswer => compiled_answer(data),
        }
    }
}

/// Target 1: parse, then every transformation and validation a stored or called object meets.
pub fn zobject(data: &[u8]) -> Result<(), String> {
    let Ok(value) = zeval_zobject::json::parse_slice(data) else {
        return Ok(());
    };
    let normal = zeval_zobject::normalize(&value);
    let canonical = zeval_zobject::canonicalize(&value);
    let _ = zeval_zobject::validate::validate_mixed(&value);
    for schema in ["Z1", "Z2", "Z7", "Z8", "Z22"] {
        let _ = zeval_zobject::validate(&value, schema, Form::Canonical);
    }
    if let Ok(normal) = &normal {
        for schema in ["Z1", "Z7", "Z22"] {
            let _ = zeval_zobject::validate(normal, schema, Form::Normal);
        }
        let _ = zeval_zobject::canonicalize(normal);
        let _ = zeval_zobject::canonicalize::canonicalize_normal(normal);
    }
    if let Ok(canonical) = &canonical {
        let _ = zeval_zobject::normalize(canonical);
    }
    for v in [normal, canonical]
        .into_iter()
        .flat_map(|r| [r.ok(), None])
        .flatten()
    {
        drop_iteratively(v);
    }
    drop_iteratively(value);
    Ok(())
}

/// Target 2: the evaluator's request decoder, as the evaluator API calls it, with each
/// content type a client may send; a decoded request is encoded again in every encoding.
pub fn wire_decode(data: &[u8]) -> Result<(), String> {
    for content_type in [
        Some("application/json"),
        Some("application/octet-stream"),
        Some("avro/binary"),
        None,
    ] {
        let _ = wire::decode(data, content_type);
        if let Ok((request, remaining)) = wire::decode_with_remaining_time(data, content_type) {
            for encoding in [Encoding::Json, Encoding::Avro002, Encoding::Avro004] {
                let _ = wire::encode_with_remaining_time(&request, encoding, remaining);
            }
            if let Request::FunctionCall { zobject, reentrant } = &request {
                let _ = wire::executor_form(zobject, *reentrant);
            }
        }
    }
    let _ = wire::avro::decode(data);
    let _ = wire::json::decode_with_remaining_time(data);
    Ok(())
}

/// Target 6: a worker's answer as the parent reads it: a frame off the socket (bounded by
/// the call's output limits), then the response decoder. Oracle: a decoded answer never
/// carries more output than the frame that brought it, and re-encodes to a frame that
/// decodes again.
pub fn worker_response(data: &[u8]) -> Result<(), String> {
    use zeval_worker::protocol::{Response, max_response_frame, read_frame};
    let limits = zeval_sandbox::Limits {
        max_output_bytes: 4096,
        ..zeval_sandbox::Limits::default()
    };
    let Ok(frame) = read_frame(&mut &data[..], max_response_frame(&limits)) else {
        // The same bytes as a bare payload, so mutations reach the decoder.
        let _ = Response::decode(data);
        return Ok(());
    };
    if frame.len() + 4 > data.len() {
        return Err(format!(
            "a frame of {} bytes from {} bytes of input",
            frame.len(),
            data.len()
        ));
    }
    let Ok(response) = Response::decode(&frame) else {
        return Ok(());
    };
    if let Response::Ran(output) = &response
        && output.stdout.len() + output.stderr.len() > frame.len()
    {
        return Err("decoded more output than the frame holds".to_owned());
    }
    let again = read_frame(&mut &response.to_frame()[..], usize::MAX)
        .map_err(|e| format!("a decoded response does not frame again: {e}"))?;
    Response::decode(&again)
        .map(drop)
        .map_err(|e| format!("a decoded response does not decode again: {e}"))
}

/// Target 3: the guest runner's stdout; the answer must be a Z22 in every case.
pub fn guest_output(data: &[u8]) -> Result<(), String> {
    let z22 = zeval_evaluator::parse_runner_output(data);
    let answer_type = z22.get("Z1K1").cloned();
    drop_iteratively(z22);
    if answer_type != Some(json!("Z22"))
        && answer_type != Some(json!({"Z1K1": "Z9", "Z9K1": "Z22"}))
    {
        return Err(format!(
            "guest output parser answered a non-Z22 (Z1K1 {answer_type:?})"
        ));
    }
    Ok(())
}

/// Target 4: the orchestrator API's body handling up to the call it would orchestrate
/// (`crates/server/src/orchestrator_api.rs`, `evaluate`), then normalization of the call and
/// static validation, as `doValidate` asks.
pub fn http_body(data: &[u8]) -> Result<(), String> {
    let Ok(request) = zeval_zobject::json::parse_slice(data) else {
        return Ok(());
    };
    let mut request = match request {
        Value::Object(m) => m,
        _ => Default::default(),
    };
    let do_validate = request
        .get("doValidate")
        .is_some_and(|v| v == &Value::Bool(true));
    let zobject = request.remove("zobject").unwrap_or(Value::Null);
    if let Ok(normal) = zeval_zobject::normalize(&zobject) {
        if do_validate {
            let _ = zeval_zobject::validate(&normal, "Z7", Form::Normal);
        }
        drop_iteratively(normal);
    }
    drop_iteratively(zobject);
    drop_iteratively(Value::Object(request));
    Ok(())
}

/// Target 5: a random well-formed call of a built-in function, built from `data`, run by the
/// orchestrator against the built-in catalogue with no evaluators. The oracle: the answer is
/// a Z22 and comes within [`ORCHESTRATOR_TIMEOUT`] plus [`ORCHESTRATOR_GRACE`].
pub fn orchestrator(data: &[u8]) -> Result<(), String> {
    let call = random_call(data);
    let options = CallOptions {
        do_validate: data.first().is_some_and(|b| b & 1 == 1),
        return_normal: data.get(1).is_some_and(|b| b & 1 == 1),
        timeout: Some(ORCHESTRATOR_TIMEOUT),
        ..CallOptions::default()
    };
    let started = Instant::now();
    let z22 = catalogue_orchestrator().orchestrate(&call, &options);
    let took = started.elapsed();
    let answer_type = z22.get("Z1K1").cloned();
    drop_iteratively(z22);
    if answer_type != Some(json!("Z22"))
        && answer_type != Some(json!({"Z1K1": "Z9", "Z9K1": "Z22"}))
    {
        return Err(format!(
            "orchestrator answered a non-Z22 (Z1K1 {answer_type:?}) to {call}"
        ));
    }
    if took > ORCHESTRATOR_TIMEOUT + ORCHESTRATOR_GRACE {
        return Err(format!(
            "orchestrator took {took:?} (deadline {ORCHESTRATOR_TIMEOUT:?}) on {call}"
        ));
    }
    Ok(())
}

fn catalogue_orchestrator() -> &'static Orchestrator {
    static ORCHESTRATOR: OnceLock<Orchestrator> = OnceLock::new();
    ORCHESTRATOR.get_or_init(|| {
        Orchestrator::new(
            Arc::new(CatalogueSource),
            EvaluatorRegistry::new(),
            OrchestratorConfig {
                timeout: ORCHESTRATOR_TIMEOUT,
                ..OrchestratorConfig::default()
            },
        )
    })
}

/// A built-in function's ZID and its `(argument key, declared type)` pairs.
type Signature = (String, Vec<(String, Value)>);

/// The built-in functions with their declared argument types, from the catalogue.
fn built_in_functions() -> &'static [Signature] {
    static FUNCTIONS: OnceLock<Vec<Signature>> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let mut functions: Vec<_> = zeval_catalogue::zids()
            .filter_map(|zid| {
                let function = zeval_catalogue::get(zid)?.get("Z2K2")?;
                if function.get("Z1K1")? != "Z8" {
                    return None;
                }
                // A canonical typed list: the item type first.
                let declarations = function.get("Z8K1")?.as_array()?.get(1..)?;
                let args = declarations
                    .iter()
                    .filter_map(|d| {
                        Some((
                            d.get("Z17K2")?.as_str()?.to_owned(),
                            d.get("Z17K1")?.clone(),
                        ))
                    })
                    .collect();
                Some((zid.to_owned(), args))
            })
            .collect();
        functions.sort_by(|a, b| a.0.cmp(&b.0));
        functions
    })
}

/// Reads choices from the fuzz input; zeros once it runs out.
struct Choices<'a> {
    data: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        let wide = u16::from_le_bytes([self.byte(), self.byte()]);
        wide as usize % bound
    }
}

/// A call `Z7(function, args…)` of a built-in function, its arguments chosen by their
/// declared types (sometimes deliberately of another type: ill-typed calls are well-formed
/// too, and must answer a Z22 with an error).
pub fn random_call(data: &[u8]) -> Value {
    let mut choices = Choices { data, at: 2 };
    call_value(&mut choices, 0)
}

const MAX_CALL_NESTING: usize = 3;

fn call_value(c: &mut Choices<'_>, nesting: usize) -> Value {
    let functions = built_in_functions();
    let (zid, args) = &functions[c.below(functions.len())];
    let mut call = serde_json::Map::new();
    call.insert("Z1K1".into(), json!("Z7"));
    call.insert("Z7K1".into(), json!(zid));
    for (key, arg_type) in args {
        // Sometimes leave an argument out: the orchestrator must say so, not panic.
        if c.below(32) == 0 {
            continue;
        }
        let value = if c.below(5) == 0 {
            any_value(c, nesting)
        } else {
            typed_value(c, arg_type, nesting)
        };
        call.insert(key.clone(), value);
    }
    Value::Object(call)
}

fn random_string(c: &mut Choices<'_>) -> String {
    const PIECES: &[&str] = &[
        "a", "b", "Z", "0", "1", "9", "-", " ", ",", "é", "日", "🙂", "\u{0}", "\u{301}", "Z6",
        "K1", "true", ".",
    ];
    let len = c.below(12);
    (0..len).map(|_| PIECES[c.below(PIECES.len())]).collect()
}

fn random_zid(c: &mut Choices<'_>) -> String {
    match c.below(4) {
        0 => format!("Z{}", c.below(30)),
        1 => format!("Z8{:02}", c.below(100)),
        2 => format!("Z{}", 10_000 + c.below(100_000)),
        _ => zeval_zobject::ident::BUILT_IN_TYPES
            [c.below(zeval_zobject::ident::BUILT_IN_TYPES.len())]
        .to_owned(),
    }
}

fn digits(c: &mut Choices<'_>) -> String {
    let n = match c.below(4) {
        0 => c.below(10) as u64,
        1 => c.below(1_000_000) as u64,
        2 => u64::MAX - c.below(3) as u64,
        _ => u64::from(c.byte()),
    };
    if c.below(8) == 0 {
        format!("{n}{n}{n}")
    } else {
        n.to_string()
    }
}

/// A value of the declared type, when the type is one this generator knows.
fn typed_value(c: &mut Choices<'_>, arg_type: &Value, nesting: usize) -> Value {
    if nesting < MAX_CALL_NESTING && c.below(6) == 0 {
        return call_value(c, nesting + 1);
    }
    match arg_type {
        Value::String(t) => match t.as_str() {
            "Z6" => json!(random_string(c)),
            "Z40" => json!({"Z1K1": "Z40", "Z40K1": if c.below(2) == 0 { "Z41" } else { "Z42" }}),
            "Z9" => json!({"Z1K1": "Z9", "Z9K1": random_zid(c)}),
            "Z4" => json!(random_zid(c)),
            "Z1" => any_value(c, nesting),
            "Z13518" | "Z16683" | "Z20838" => {
                let sign = if t == "Z16683" && c.below(2) == 0 {
                    "-"
                } else {
                    ""
                };
                json!({"Z1K1": t, format!("{t}K1"): format!("{sign}{}", digits(c))})
            }
            _ => any_value(c, nesting),
        },
        Value::Object(expr) if expr.get("Z7K1") == Some(&json!("Z881")) => {
            let item_type = expr.get("Z881K1").cloned().unwrap_or(json!("Z1"));
            let len = c.below(5);
            let mut list = vec![item_type.clone()];
            for _ in 0..len {
                list.push(typed_value(c, &item_type, nesting));
            }
            Value::Array(list)
        }
        _ => any_value(c, nesting),
    }
}

/// A small value of any shape a well-formed call may carry.
fn any_value(c: &mut Choices<'_>, nesting: usize) -> Value {
    match c.below(9) {
        0 => json!(random_string(c)),
        1 => json!(random_zid(c)),
        2 => json!({"Z1K1": "Z40", "Z40K1": "Z41"}),
        3 => json!(["Z6", random_string(c), random_string(c)]),
        4 => json!(["Z1"]),
        5 => json!({"Z1K1": "Z13518", "Z13518K1": digits(c)}),
        6 => json!({"Z1K1": "Z6", "Z6K1": random_string(c)}),
        7 if nesting < MAX_CALL_NESTING => call_value(c, nesting + 1),
        _ => json!({"Z1K1": "Z18", "Z18K1": format!("{}K{}", random_zid(c), c.below(4))}),
    }
}

/// Target 7: a compiled implementation's stdout, read as each kind of result. A value it
/// yields must be of the declared kind (a Z6 for strings, a Z40 for Booleans, an object or a
/// string for JSON), and nothing decoded may be larger than the input.
pub fn compiled_answer(data: &[u8]) -> Result<(), String> {
    use zeval_compiler::{Answer, Kind, Signature, decode_result};
    for kind in [Kind::String, Kind::Boolean, Kind::Json] {
        let signature = Signature {
            parameters: Vec::new(),
            result: kind,
        };
        let Ok(answer) = decode_result(&signature, data) else {
            continue;
        };
        match (&answer, kind) {
            (Answer::Failure(message), _) if message.len() > data.len() => {
                return Err("a failure message longer than the output".to_owned());
            }
            (Answer::Failure(_), _) => {}
            (Answer::Value(value), Kind::String)
                if zeval_zobject::build::ref_zid(&value["Z1K1"]) != Some("Z6") =>
            {
                return Err(format!("a string result that is not a Z6: {value}"));
            }
            (Answer::Value(value), Kind::Boolean)
                if zeval_zobject::build::ref_zid(&value["Z1K1"]) != Some("Z40") =>
            {
                return Err(format!("a Boolean result that is not a Z40: {value}"));
            }
            (Answer::Value(value), Kind::Json) if !(value.is_object() || value.is_string()) => {
                return Err(format!(
                    "a JSON result that is neither object nor string: {value}"
                ));
            }
            (Answer::Value(value), _) => drop_iteratively(value.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_calls_name_built_in_functions() {
        assert!(
            built_in_functions().len() > 50,
            "the catalogue's functions were not found"
        );
        let call = random_call(&[0, 0, 7, 1, 3, 9, 200, 41]);
        let zid = call["Z7K1"].as_str().unwrap();
        assert!(
            zeval_catalogue::get(zid).is_some(),
            "{zid} is not in the catalogue"
        );
    }

    /// Random calls must mostly be well-formed: a generator whose calls all fail validation
    /// would only ever test the error path.
    #[test]
    fn many_random_calls_succeed() {
        let mut rng = crate::rng::Rng::new(3);
        let mut successes = 0;
        for _ in 0..200 {
            let data: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
            let z22 =
                catalogue_orchestrator().orchestrate(&random_call(&data), &CallOptions::default());
            let error = zeval_zobject::build::envelope_error(&z22);
            if error.is_none_or(zeval_zobject::build::is_void) {
                successes += 1;
            }
        }
        assert!(
            successes >= 40,
            "only {successes} of 200 random calls succeeded"
        );
    }

    #[test]
    fn the_guest_output_oracle_sees_z22s() {
        guest_output(br#"{"result": {"Z1K1": "Z6", "Z6K1": "x"}}"#).unwrap();
        guest_output(b"not json").unwrap();
    }
}
