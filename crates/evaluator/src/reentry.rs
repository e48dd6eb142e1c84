//! Reentrant calls: code running in a guest calls another function (`W.Call` in the Python
//! and JavaScript runners), and the caller of the evaluator answers.
//!
//! The runner hands the sandbox's `zeval.call` import (see `zeval_sandbox::host_call`) a
//! JSON request `{"function": "Z10000", "arguments": {"Z10000K1": <normal ZObject>}}`. This
//! module decodes it, as hostile input: at most [`zeval_sandbox::Limits::max_input_bytes`]
//! bytes (the sandbox refuses longer ones), parsed with the JSON depth limit, the function a
//! ZID, each argument a key of that function and an object or string. The caller's
//! [`NestedCalls`] runs it (the orchestrator, inside the same request) and the answer goes
//! back as `{"result": <normal ZObject>}` or `{"error": <Z5>, "message": "…", "index": n}`.
//!
//! When the evaluator serves another process's orchestrator (the evaluator API), the nested
//! calls go back to that orchestrator over HTTP ([`CallbackClient`]): the orchestrator names
//! a callback URL and a secret for the one call in [`CALLBACK_URL_HEADER`] and
//! [`CALLBACK_TOKEN_HEADER`], and answers each nested call inside the request that is
//! waiting for this evaluation.
//!
//! An error the guest does not catch becomes the call's error. The runner names it by its
//! `index` (`"nestedError": n` beside its message) and the evaluator puts back the Z5 it gave,
//! so a guest cannot pass off a Z5 of its own making as one from the orchestrator, and a typed
//! limit (the reentrant depth) reaches the top of a recursion typed.

use std::time::{Duration, Instant};

use zeval_zobject::build::{obj, string_value, z6, z9};
use zeval_zobject::error::error_code;
use zeval_zobject::json::{estimated_bytes, estimated_bytes_within};
use zeval_zobject::{Map, Value};

/// The request header naming the URL a remote evaluator posts the code's nested calls to.
pub const CALLBACK_URL_HEADER: &str = "x-zeval-callback-url";

/// The request header carrying the secret of that URL, which the evaluator sends back in the
/// same header with every nested call.
pub const CALLBACK_TOKEN_HEADER: &str = "x-zeval-callback-token";

/// The header of a nested call that says how many milliseconds the calling guest has left:
/// the orchestrator runs the nested call no longer than that (nor than its own call's
/// deadline). Without it, a remote evaluator's guest that was stopped at its own limit left
/// the orchestrator running what it had asked for until the request's deadline, holding the
/// request's work slot, and answering late.
pub const CALLBACK_REMAINING_MS_HEADER: &str = "x-zeval-remaining-ms";

/// The largest answer to a nested call read from a callback URL (as the orchestrator reads an
/// evaluator's answer), and so the largest the callback route writes.
pub const MAX_CALLBACK_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// Most characters of the one-line description of a nested error given to the guest.
const MAX_MESSAGE_CHARS: usize = 500;

/// Most errors of nested calls one guest call keeps for `NestedErrors::take`; later ones
/// are still answered, but an uncaught one is reported by its message only.
pub const MAX_REMEMBERED_ERRORS: usize = 1024;

/// Requests one guest call may send that cannot be read (not JSON, too large, no such
/// argument…); later requests are refused unread. Such a request never reaches the
/// orchestrator, so the nested-call limit never counted it: a guest could have the host
/// parse 8 MiB and refuse it, again and again, for its whole time.
pub const MAX_UNREADABLE_REQUESTS: usize = 16;

/// Bytes (of host memory, roughly) of the nested errors one guest call keeps, and gives the guest, whole: an
/// error larger than [`MAX_WHOLE_ERROR_BYTES`], or one past this total, is kept and answered
/// as its type and its one-line description ([`describe`]). A nested call's error can carry
/// a guest's whole message (megabytes, up to the output limit), and a call makes up to a
/// thousand nested calls: kept whole, a guest catching each could make its call hold
/// gigabytes.
pub const MAX_REMEMBERED_ERROR_BYTES: usize = 1 << 20;

/// Bytes (of host memory, roughly) of one nested error kept and answered whole; see
/// [`MAX_REMEMBERED_ERROR_BYTES`].
pub const MAX_WHOLE_ERROR_BYTES: usize = 64 << 10;

/// One nested call a guest asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedCall {
    /// The called function's ZID.
    pub function: String,
    /// The arguments by full key (`Z10000K1`), in normal form.
    pub arguments: Vec<(String, Value)>,
}

/// What runs nested calls: the caller of [`crate::Evaluator::evaluate_with`]. Called on the
/// thread that called the evaluator, while the guest waits.
pub trait NestedCalls {
    /// Runs `call`; the result value in normal form, or the error (a normal Z5). The
    /// deadline is the calling guest's: an answer later than it is not read.
    fn call(&mut self, call: NestedCall, deadline: Instant) -> Result<Value, Value>;
}

/// Decodes a runner's request (see the module docs); a message for the guest when it is
/// not one.
pub fn decode_request(bytes: &[u8]) -> Result<NestedCall, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the request is not UTF-8".to_owned())?;
    // The guest wrote it: bounded like its answers, or 8 MiB of `[0,0,…]` would parse into
    // some 400 MiB of values in the host, and a guest can ask again and again.
    let mut request = match zeval_zobject::json::parse_untrusted(text) {
        Ok(Value::Object(request)) => request,
        Err(error @ zeval_zobject::json::JsonError::TooLarge { .. }) => {
            return Err(format!("the request is too large: {error}"));
        }
        _ => return Err("the request is not a JSON object".to_owned()),
    };
    let function = match request.remove("function") {
        Some(Value::String(zid)) if zeval_zobject::ident::is_zid(&zid) => zid,
        _ => return Err("the function must be given by its ZID, such as \"Z10000\"".to_owned()),
    };
    let arguments = match request.remove("arguments") {
        None => Map::new(),
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err("the arguments must be an object".to_owned()),
    };
    let mut decoded = Vec::with_capacity(arguments.len());
    for (key, value) in arguments {
        let own_key = zeval_zobject::ident::parse_key(&key)
            .is_some_and(|(owner, _)| owner == Some(function.as_str()));
        if !own_key {
            return Err(format!(
                "the argument {key} is not a key of {function} (such as {function}K1)"
            ));
        }
        if !matches!(value, Value::Object(_) | Value::String(_)) {
            return Err(format!("the argument {key} is not a ZObject"));
        }
        decoded.push((key, value));
    }
    Ok(NestedCall {
        function,
        arguments: decoded,
    })
}

/// The errors answered to one guest call, so that an uncaught one can be put back by index,
/// and their bytes as JSON.
#[derive(Debug, Default)]
pub(crate) struct NestedErrors(Vec<Value>, usize);

impl NestedErrors {
    /// The error the guest names by `index`, if this call gave it.
    pub(crate) fn take(&mut self, index: usize) -> Option<Value> {
        self.0.get_mut(index).map(std::mem::take)
    }
}

/// The sandbox's handler of `zeval.call` for one guest call: decodes, runs through `nested`,
/// encodes, and remembers the errors it answered.
pub(crate) struct Handler<'a> {
    nested: &'a mut dyn NestedCalls,
    pub(crate) errors: NestedErrors,
    /// CPU time the nested calls took on this thread (not the guest's).
    pub(crate) nested_cpu: Duration,
    /// The largest answer the guest may be given (its input limit).
    max_answer_bytes: usize,
    /// Requests that could not be read so far ([`MAX_UNREADABLE_REQUESTS`]).
    unreadable: usize,
    /// A refusal every later request of this guest call gets too ([`final_refusal`]): they
    /// are answered with it unread.
    refused_for_good: Option<Value>,
}

impl<'a> Handler<'a> {
    /// A handler whose answers are at most `max_answer_bytes` long (the guest's input
    /// limit): a longer result is answered as an error instead.
    pub(crate) fn new(nested: &'a mut dyn NestedCalls, max_answer_bytes: usize) -> Self {
        Handler {
            nested,
            errors: NestedErrors::default(),
            nested_cpu: Duration::ZERO,
            max_answer_bytes,
            unreadable: 0,
            refused_for_good: None,
        }
    }

    /// The answer to one request, as the runner reads it.
    ///
    /// A request is read (up to the guest's output limit, 8 MiB, parsed into at most
    /// `MAX_UNTRUSTED_TOKENS` values) only when it could still be run: not after the
    /// guest's deadline, nor once a refusal that every later request would get too has been
    /// answered. Until 2026-12-06 a guest past its nested-call limit could send request after
    /// request of 8 MiB, each parsed on the host's thread, outside the guest's CPU time, and
    /// only then refused.
    pub(crate) fn answer(&mut self, request: &[u8], deadline: Instant) -> Vec<u8> {
        if let Some(refusal) = &self.refused_for_good {
            return self.error_answer(refusal.clone());
        }
        if Instant::now() >= deadline {
            return self.error_answer(request_error(
                "W.Call: the calling code's time is up; no more calls are run",
            ));
        }
        let cpu_started = crate::system::thread_cpu_time();
        let outcome = if self.unreadable >= MAX_UNREADABLE_REQUESTS {
            Err(request_error(&format!(
                "W.Call: this call sent {MAX_UNREADABLE_REQUESTS} requests that could not be read; no more are answered"
            )))
        } else {
            match decode_request(request) {
                Ok(call) => self.nested.call(call, deadline),
                Err(message) => {
                    self.unreadable += 1;
                    Err(request_error(&format!("W.Call: {message}")))
                }
            }
        };
        if let Err(z5) = &outcome
            && final_refusal(z5)
        {
            self.refused_for_good = Some(z5.clone());
        }
        self.nested_cpu += crate::system::thread_cpu_time().saturating_sub(cpu_started);
        let value = match outcome {
            Ok(value) => value,
            Err(z5) => return self.error_answer(z5),
        };
        // Written out only up to the bound: a result of up to the request's budget (256 MiB)
        // was written whole, and only then found too long.
        match zeval_zobject::json::to_vec_within(&obj([("result", value)]), self.max_answer_bytes) {
            Some(answer) => answer,
            None => {
                let message = format!(
                    "W.Call: the result is more than the {} bytes a call may be given",
                    self.max_answer_bytes
                );
                self.error_answer(request_error(&message))
            }
        }
    }

    /// The answer for an error, which is remembered for [`NestedErrors::take`]; whole only
    /// within [`MAX_WHOLE_ERROR_BYTES`] and [`MAX_REMEMBERED_ERROR_BYTES`] (and the guest's
    /// input limit), else as its type and description.
    fn error_answer(&mut self, z5: Value) -> Vec<u8> {
        let index = self.errors.0.len();
        let message = describe(&z5);
        let most = MAX_WHOLE_ERROR_BYTES.min(self.max_answer_bytes / 2);
        let bytes = estimated_bytes_within(&z5, most).unwrap_or(usize::MAX);
        let whole =
            bytes <= most && self.errors.1.saturating_add(bytes) <= MAX_REMEMBERED_ERROR_BYTES;
        let (z5, bytes) = if whole {
            (z5, bytes)
        } else {
            let code = error_code(&z5).unwrap_or("Z507").to_owned();
            // The description starts with the code, which the short form has already.
            let text = message
                .strip_prefix(error_code(&z5).unwrap_or("Z5"))
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(&message);
            let short = obj([("Z1K1", z9("Z5")), ("Z5K1", z9(&code)), ("Z5K2", z6(text))]);
            let bytes = estimated_bytes(&short);
            (short, bytes)
        };
        let mut answer = obj([("message", Value::String(message))]);
        if index < MAX_REMEMBERED_ERRORS {
            self.errors.0.push(z5.clone());
            self.errors.1 = self.errors.1.saturating_add(bytes);
            answer["index"] = Value::from(index);
        }
        answer["error"] = z5;
        serde_json::to_vec(&answer).unwrap_or_default()
    }
}

impl zeval_sandbox::HostCalls for Handler<'_> {
    fn call(&mut self, request: &[u8], deadline: Instant) -> Vec<u8> {
        self.answer(request, deadline)
    }
}

/// Whether every later request of the same guest call would get `z5` too: the request's
/// nested calls are used up, wherever in the request that happened (their count only rises).
/// Not "reentrant depth": a nested call that was allowed can fail with it further down, and
/// a shallower call after it may still run (found in review).
fn final_refusal(z5: &Value) -> bool {
    error_code(z5) == Some("Z590")
        && z5
            .get("Z5K2")
            .and_then(|details| details.get("Z590K1"))
            .and_then(string_value)
            == Some("nested calls")
}

/// The Z5 for a nested call that could not be made or answered (a request the runner
/// should not have sent, a result too large to give the guest): the Z507 "Error in
/// evaluation" of the original's executors, with the reason.
fn request_error(message: &str) -> Value {
    obj([
        ("Z1K1", z9("Z5")),
        ("Z5K1", z9("Z507")),
        ("Z5K2", z6(message)),
    ])
}

/// Nested calls answered by an orchestrator over HTTP: each is posted to the callback URL as
/// `{"function", "arguments"}` with the secret in [`CALLBACK_TOKEN_HEADER`], and the answer is
/// `{"result": …}` or `{"error": <Z5>}`. Each post gives up at the calling guest's deadline;
/// a failure to reach the orchestrator is the nested call's error (a Z507).
pub struct CallbackClient {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl CallbackClient {
    /// A client of `url` (an `http://` or `https://` URL) with `token`; `None` for any other
    /// URL.
    pub fn new(url: &str, token: &str) -> Option<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return None;
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The URL is the caller's; a redirect would take the guest's request to any host
            // the answer names, and its answer back to the guest.
            .max_redirects(0)
            // Nor through a proxy named in the environment (see `client::RemoteEvaluator`):
            // the request carries the call's token.
            .proxy(None)
            .build();
        // No lookup (and no thread for one) when the URL names an address.
        let agent = zeval_resolver::agent(agent);
        Some(CallbackClient {
            url: url.to_owned(),
            token: token.to_owned(),
            agent,
        })
    }

    fn post(&self, call: &NestedCall, deadline: Instant) -> Result<Value, Value> {
        let failed = |reason: String| request_error(&format!("W.Call: {reason}"));
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| failed("no time left to call the orchestrator".to_owned()))?;
        let arguments: Map<String, Value> = call.arguments.iter().cloned().collect();
        let body = serde_json::to_vec(&obj([
            ("function", Value::String(call.function.clone())),
            ("arguments", Value::Object(arguments)),
        ]))
        .unwrap_or_default();
        let mut response = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Content-Type", "application/json")
            .header(CALLBACK_TOKEN_HEADER, &self.token)
            .header(CALLBACK_REMAINING_MS_HEADER, left.as_millis().to_string())
            .send(&body[..])
            .map_err(|error| failed(format!("the orchestrator could not be reached: {error}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_CALLBACK_ANSWER_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|error| failed(format!("reading the orchestrator's answer: {error}")))?;
        if status != 200 {
            let quoted: String = text.chars().take(200).collect();
            return Err(failed(format!(
                "the orchestrator answered {status}: {quoted}"
            )));
        }
        // Bounded like any answer a guest is given from outside: 16 MiB of `[0,0,…]`
        // (16 KiB gzipped) would make some 800 MiB of values here.
        match zeval_zobject::json::parse_within_tokens(&text, crate::client::MAX_ANSWER_VALUES) {
            Ok(Value::Object(mut answer)) => {
                match (answer.remove("result"), answer.remove("error")) {
                    (Some(result), None) => Ok(result),
                    (None, Some(error)) => Err(error),
                    _ => Err(failed("the orchestrator's answer has no result".to_owned())),
                }
            }
            _ => Err(failed("the orchestrator's answer is not JSON".to_owned())),
        }
    }
}

impl NestedCalls for CallbackClient {
    fn call(&mut self, call: NestedCall, deadline: Instant) -> Result<Value, Value> {
        self.post(&call, deadline)
    }
}

/// A one-line description of a Z5 for the guest's exception: its type and the strings it
/// carries, e.g. `Z590: reentrant depth: …`.
pub fn describe(z5: &Value) -> String {
    let code = error_code(z5).unwrap_or("Z5");
    let mut strings = Vec::new();
    let mut stack = vec![z5.get("Z5K2").unwrap_or(&Value::Null)];
    let mut visited = 0;
    while let Some(value) = stack.pop() {
        visited += 1;
        if visited > 1000 {
            break;
        }
        if let Some(text) = string_value(value) {
            strings.push(text);
            continue;
        }
        if let Value::Object(map) = value {
            // Keys in reverse, so that the stack pops them in order.
            for (key, inner) in map.iter().rev() {
                if key != "Z1K1" {
                    stack.push(inner);
                }
            }
        }
    }
    let mut message = code.to_owned();
    for text in strings {
        if message.len() > MAX_MESSAGE_CHARS * 4 {
            break;
        }
        message.push_str(": ");
        // A text can be megabytes; what is cut below is never copied.
        let head = text
            .char_indices()
            .nth(MAX_MESSAGE_CHARS)
            .map_or(text, |(end, _)| &text[..end]);
        message.push_str(head);
    }
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A deadline the tests never reach.
    fn later() -> Instant {
        Instant::now() + std::time::Duration::from_secs(600)
    }

    #[test]
    fn requests_are_checked() {
        let ok = decode_request(
            br#"{"function": "Z10000", "arguments": {"Z10000K1": {"Z1K1": "Z6", "Z6K1": "a"}}}"#,
        )
        .unwrap();
        assert_eq!(ok.function, "Z10000");
        assert_eq!(ok.arguments.len(), 1);
        for bad in [
            &b"\xff"[..],
            b"[]",
            br#"{"function": "ls -l"}"#,
            br#"{"function": "Z1", "arguments": []}"#,
            br#"{"function": "Z1", "arguments": {"Z2K1": "x"}}"#,
            br#"{"function": "Z1", "arguments": {"Z1K1": 5}}"#,
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert!(decode_request(deep.as_bytes()).is_err());
        let many = format!(
            r#"{{"function": "Z10000", "arguments": {{"Z10000K1": [{}0]}}}}"#,
            "0,".repeat(zeval_zobject::json::MAX_UNTRUSTED_TOKENS)
        );
        let refused = decode_request(many.as_bytes()).map(|_| ()).unwrap_err();
        assert!(refused.contains("too large"), "{refused}");
    }

    /// A guest that catches 150 errors of 1 MiB each (a thousand of up to 8 MiB can come)
    /// makes its call keep about 1 MiB of them (150 MiB before), and is given each as its
    /// type and description; small errors stay whole, typed.
    #[test]
    fn nested_errors_are_kept_within_a_bounded_number_of_bytes() {
        struct Huge(usize);
        impl NestedCalls for Huge {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                self.0 += 1;
                let text = if self.0.is_multiple_of(2) {
                    "x".repeat(1 << 20)
                } else {
                    "y".repeat(1_000)
                };
                Err(zeval_zobject::error::z5_str("Z500", &[text.as_str()]))
            }
        }
        let mut nested = Huge(0);
        let mut handler = Handler::new(&mut nested, 8 << 20);
        let mut largest_answer = 0;
        for _ in 0..300 {
            let answer = handler.answer(br#"{"function": "Z10000"}"#, later());
            largest_answer = largest_answer.max(answer.len());
        }
        let kept: usize = handler.errors.0.iter().map(estimated_bytes).sum();
        assert!(kept <= 2 * MAX_REMEMBERED_ERROR_BYTES, "{kept} bytes kept");
        assert!(
            largest_answer < 4 << 10,
            "an answer of {largest_answer} bytes"
        );
        let first = handler.errors.take(0).unwrap();
        let described = describe(&first);
        assert!(described.starts_with("Z500: yyy"), "{described}");
        assert_eq!(described.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(
            serde_json::to_string(&first)
                .unwrap()
                .contains(&"y".repeat(1_000))
        );
        let huge = handler.errors.take(1).unwrap();
        assert_eq!(huge["Z5K1"], json!({"Z1K1": "Z9", "Z9K1": "Z500"}));
        assert!(
            describe(&huge).starts_with("Z500: xxx"),
            "{}",
            describe(&huge)
        );
        assert!(serde_json::to_vec(&huge).unwrap().len() < 4 << 10);
    }

    /// After [`MAX_UNREADABLE_REQUESTS`] requests that could not be read, no request is
    /// read or run: the nested-call limit never saw them.
    #[test]
    fn unreadable_requests_are_bounded() {
        struct Counting(usize);
        impl NestedCalls for Counting {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                self.0 += 1;
                Ok(z6("ok"))
            }
        }
        let mut nested = Counting(0);
        let mut handler = Handler::new(&mut nested, 1 << 20);
        let good = br#"{"function": "Z10000", "arguments": {}}"#;
        let first: serde_json::Value =
            serde_json::from_slice(&handler.answer(good, later())).unwrap();
        assert_eq!(first["result"]["Z6K1"], "ok");
        for _ in 0..MAX_UNREADABLE_REQUESTS {
            let refused = handler.answer(b"[not json", later());
            assert!(String::from_utf8_lossy(&refused).contains("W.Call"));
        }
        let answer = handler.answer(good, later());
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains("no more are answered"), "{answer}");
        drop(handler);
        assert_eq!(nested.0, 1);
    }

    /// Once the request's nested calls are used up, every later request of the guest call
    /// gets the same refusal unread; and none is read after the guest's deadline. Each was
    /// parsed (8 MiB at most) and only then refused. A depth refusal is not final.
    #[test]
    fn requests_that_would_be_refused_are_not_read() {
        struct Limited(usize);
        impl NestedCalls for Limited {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                self.0 += 1;
                match self.0 {
                    1 => Ok(z6("ok")),
                    _ => Err(zeval_zobject::error::z5_str(
                        "Z590",
                        &["nested calls", "Code made more than 1 calls"],
                    )),
                }
            }
        }
        let good = br#"{"function": "Z10000", "arguments": {}}"#;
        let mut nested = Limited(0);
        let mut handler = Handler::new(&mut nested, 1 << 20);
        assert!(String::from_utf8_lossy(&handler.answer(good, later())).contains("ok"));
        let refused = String::from_utf8_lossy(&handler.answer(good, later())).into_owned();
        assert!(refused.contains("nested calls"), "{refused}");
        // Unread: a request that could not be read gets the same refusal.
        for _ in 0..3 {
            let again =
                String::from_utf8_lossy(&handler.answer(b"[not json", later())).into_owned();
            assert!(again.contains("nested calls"), "{again}");
            assert!(!again.contains("could not"), "{again}");
        }
        drop(handler);
        assert_eq!(nested.0, 2);
        // Past the deadline nothing is read or run.
        let mut nested = Limited(0);
        let mut handler = Handler::new(&mut nested, 1 << 20);
        let late = String::from_utf8_lossy(&handler.answer(good, Instant::now())).into_owned();
        assert!(late.contains("time is up"), "{late}");
        drop(handler);
        assert_eq!(nested.0, 0);
        // A depth refusal from further down leaves later, shallower calls their turn.
        struct DeepThenFine(usize);
        impl NestedCalls for DeepThenFine {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                self.0 += 1;
                match self.0 {
                    1 => Err(zeval_zobject::error::z5_str(
                        "Z590",
                        &["reentrant depth", "too deep"],
                    )),
                    _ => Ok(z6("shallow")),
                }
            }
        }
        let mut nested = DeepThenFine(0);
        let mut handler = Handler::new(&mut nested, 1 << 20);
        handler.answer(good, later());
        let answer = String::from_utf8_lossy(&handler.answer(good, later())).into_owned();
        assert!(answer.contains("shallow"), "{answer}");
    }

    #[test]
    fn errors_are_described_and_remembered() {
        struct Failing;
        impl NestedCalls for Failing {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                Err(zeval_zobject::error::z5_str(
                    "Z590",
                    &["reentrant depth", "too deep"],
                ))
            }
        }
        let mut nested = Failing;
        let mut handler = Handler::new(&mut nested, 1024);
        let answer = handler.answer(br#"{"function": "Z10000"}"#, later());
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["message"], "Z590: reentrant depth: too deep");
        assert_eq!(answer["index"], 0);
        assert_eq!(
            answer["error"]["Z5K1"],
            json!({"Z1K1": "Z9", "Z9K1": "Z590"})
        );
        assert!(handler.errors.take(0).is_some());
        assert!(handler.errors.take(1).is_none());
        struct Huge;
        impl NestedCalls for Huge {
            fn call(&mut self, _: NestedCall, _: Instant) -> Result<Value, Value> {
                Ok(z6("x".repeat(2000)))
            }
        }
        let mut huge = Huge;
        let mut bounded = Handler::new(&mut huge, 1024);
        let answer = bounded.answer(br#"{"function": "Z10000"}"#, later());
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("more than the 1024 bytes"),
            "{answer}"
        );
        let refused = bounded.answer(b"nonsense", later());
        let refused: serde_json::Value = serde_json::from_slice(&refused).unwrap();
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .starts_with("Z507: W.Call: ")
        );
    }
}
