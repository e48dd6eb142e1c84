//! Typed Z5 errors (spec §1.8), built in normal form.
//!
//! A typed error is `{Z1K1: Z5, Z5K1: Z5xx, Z5K2: <instance of Z885(Z5xx)>}`, whose keys
//! are the error type's positional arguments `Z5xxK1`, `Z5xxK2`, …

use crate::Value;
use crate::build::{call, obj, z6, z9};

/// A typed Z5 of error type `code` (e.g. `"Z507"`) with positional arguments, which must be
/// normal-form ZObjects.
pub fn z5(code: &str, args: impl IntoIterator<Item = Value>) -> Value {
    let mut value = obj([("Z1K1", call("Z885", [("Z885K1", z9(code))]))]);
    if let Value::Object(m) = &mut value {
        for (i, arg) in args.into_iter().enumerate() {
            m.insert(format!("{code}K{}", i + 1), arg);
        }
    }
    obj([("Z1K1", z9("Z5")), ("Z5K1", z9(code)), ("Z5K2", value)])
}

/// A typed Z5 whose arguments are all strings.
pub fn z5_str(code: &str, args: &[&str]) -> Value {
    z5(code, args.iter().map(|s| z6(*s)))
}

/// The legacy untyped shape `{Z1K1: Z5, Z5K1: code, Z5K2: Z6 message}`, which the original
/// uses for timeouts and evaluator dispatch errors.
pub fn z5_untyped(code: &str, message: &str) -> Value {
    obj([
        ("Z1K1", z9("Z5")),
        ("Z5K1", z9(code)),
        ("Z5K2", z6(message)),
    ])
}

/// The `Z5K2` of the original's Z558 for a call that used all its time: the evaluator's for
/// a run that reached its wall-time limit, the orchestrator's for a request past its
/// deadline. Calls stopped by the server's load (no executor free, or cut short while it was
/// saturated) say so after this text, so that a reader can tell the implementation's own
/// limit from the load's ([`is_plain_timeout`]).
pub const TIMED_OUT: &str = "Function call timed out";

/// The `Z5K2` of the evaluator's Z507 for a call it had no process to run: the load's (or
/// the machine's), not the call's ([`is_no_executor`]).
pub const NO_EXECUTOR: &str = "The executor failed: no process was available to run the call.";

/// Whether `z5` is a Z507 whose message is exactly [`NO_EXECUTOR`] (in either form of `Z5K2`).
pub fn is_no_executor(z5: &Value) -> bool {
    is_error_saying(z5, "Z507", NO_EXECUTOR)
}

/// Whether `z5` is a Z558 whose message is exactly [`TIMED_OUT`] (in either form of `Z5K2`).
pub fn is_plain_timeout(z5: &Value) -> bool {
    is_error_saying(z5, "Z558", TIMED_OUT)
}

/// Whether `z5` is an error of type `code` whose message is exactly `message` (in either form
/// of `Z5K2`).
fn is_error_saying(z5: &Value, code: &str, message: &str) -> bool {
    error_code(z5) == Some(code)
        && z5.get("Z5K2").is_some_and(|said| {
            crate::build::string_value(said) == Some(message)
                || said.get("Z6K1").and_then(Value::as_str) == Some(message)
        })
}

/// A Z99 quote of `value`, whose content is never evaluated.
pub fn quote(value: Value) -> Value {
    obj([("Z1K1", z9("Z99")), ("Z99K1", value)])
}

/// The most bytes of JSON a value [`quote_briefly`] quotes whole: 64 KiB, as the
/// orchestrator quotes values in its errors.
pub const MAX_QUOTED_BYTES: usize = 64 * 1024;

/// The most characters of a value's JSON text [`quote_briefly`] quotes instead of a larger
/// value.
pub const QUOTED_TEXT_CHARS: usize = 200;

/// The most levels a value [`quote_briefly`] quotes whole nests: 100, as the orchestrator's
/// errors. An error is copied and dropped wherever it goes, recursively, and a value 10,000
/// levels deep (as deep as a request may be) dropped on what is left of a stack deep in a
/// recursion overflows it.
pub const MAX_QUOTED_DEPTH: usize = 100;

/// A Z99 quote of `value` when its JSON takes at most [`MAX_QUOTED_BYTES`] and nests at most
/// [`MAX_QUOTED_DEPTH`] levels, else of a string of the first [`QUOTED_TEXT_CHARS`]
/// characters of that JSON, marked "…": what an error keeps of a value that may be as large
/// as an answer. A value not quoted whole is dropped without recursing.
pub fn quote_briefly(value: Value) -> Value {
    if fits_a_quote(&value) {
        return quote(value);
    }
    let brief = quote_the_start(&value);
    crate::depth::drop_iteratively(value);
    brief
}

/// [`quote_briefly`] of a value the caller keeps: only what is quoted is copied.
pub fn quote_briefly_ref(value: &Value) -> Value {
    if fits_a_quote(value) {
        quote(value.clone())
    } else {
        quote_the_start(value)
    }
}

fn fits_a_quote(value: &Value) -> bool {
    // Depth first: writing the JSON recurses once per level.
    !crate::depth::exceeds(value, MAX_QUOTED_DEPTH)
        && crate::json::to_vec_within(value, MAX_QUOTED_BYTES).is_some()
}

fn quote_the_start(value: &Value) -> Value {
    // A character takes at most four bytes.
    let start = crate::json::text_prefix(value, (QUOTED_TEXT_CHARS + 1) * 4);
    let text: String = start.chars().take(QUOTED_TEXT_CHARS).collect();
    quote(crate::build::z6(format!("{text}…")))
}

/// The error type code (`Z5K1`) of a Z5, in either form.
pub fn error_code(z5: &Value) -> Option<&str> {
    crate::build::ref_zid(z5.get("Z5K1")?)
}

/// The original's `wrapMessageInEvaluationError`: a normal Z507 whose `Z507K1` quotes the
/// call as given (not normalized) and whose `Z507K2` quotes a Z500 with the bare message
/// string as `Z500K1`.
pub fn wrap_in_evaluation_error(call: Value, message: &str) -> Value {
    let inner = z5("Z500", [Value::from(message)]);
    z5("Z507", [quote(call), quote(inner)])
}
