//! From a decoded request to what to run (spec §3.1 steps 2–4): the language, the executor
//! (guest family) registered for it, and the executor request. Pure; no guest is touched.

use zeval_zobject::build::{obj, z6, z9};
use zeval_zobject::error::{error_code, z5_untyped};
use zeval_zobject::{Form, Map, Value};

use crate::language::{Family, Variant, family_for};
use crate::wire::{ExecutorRequest, Request, first_implementation};

/// What to run: the guest family and the executor request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The executor registered for the request's language.
    pub family: Family,
    /// `{codeString, functionName, functionArguments}` for the runner.
    pub request: ExecutorRequest,
}

/// Plans `request` for `variant`, or returns the Z5 the original answers with.
pub fn plan(request: Request, variant: Variant) -> Result<Plan, Value> {
    let (language, executor) = match request {
        Request::FunctionCall { reentrant, zobject } => {
            let language = legacy_language(&zobject).map_err(|reason| {
                z5_untyped(
                    "Z558",
                    &format!("Unable to find programming language in function call. {reason}"),
                )
            })?;
            if let Err(error) = zeval_zobject::validate(&zobject, "Z7", Form::Normal) {
                let code = error_code(&error).unwrap_or("Z507").to_owned();
                let message = format!("Unable to validate function call. Parser errors: {error}");
                return Err(z5_untyped(&code, &message));
            }
            (language, legacy_executor_request(zobject, reentrant))
        }
        Request::Executor(executor) => {
            let Some(language) = executor.coding_language.clone() else {
                return Err(z5_untyped(
                    "Z558",
                    "Unable to find programming language in function call.",
                ));
            };
            if executor.code_string.is_none() {
                return Err(z5_untyped("Z507", "Request did not supply codeString."));
            }
            (language, executor)
        }
    };
    let family = family_for(&language, variant).ok_or_else(|| {
        z5_untyped(
            "Z558",
            &format!("No executor found for programming language {language}."),
        )
    })?;
    Ok(Plan {
        family,
        request: executor,
    })
}

/// `Z7K1.Z8K4.K1.Z14K3.Z16K1.Z61K1.Z6K1`, or the message JavaScript gives for the first
/// missing step ("Cannot read properties of undefined (reading 'K1')").
fn legacy_language(zobject: &Value) -> Result<String, String> {
    let path = ["Z7K1", "Z8K4", "K1", "Z14K3", "Z16K1", "Z61K1", "Z6K1"];
    let mut current = Some(zobject);
    for key in path {
        match current {
            Some(Value::Object(object)) => current = object.get(key),
            Some(Value::String(_)) => current = None,
            _ => {
                return Err(format!(
                    "Cannot read properties of undefined (reading '{key}')"
                ));
            }
        }
    }
    match current {
        Some(Value::String(language)) => Ok(language.clone()),
        _ => Err("The programming language is not a string.".to_owned()),
    }
}

/// The executor request of a whole Z7: code from the first implementation, function name
/// from `Z8K5`, and every other key as an argument.
fn legacy_executor_request(zobject: Value, reentrant: bool) -> ExecutorRequest {
    let function = zobject.get("Z7K1");
    let code_string = function
        .and_then(first_implementation)
        .and_then(|implementation| {
            implementation
                .get("Z14K3")?
                .get("Z16K2")?
                .get("Z6K1")?
                .as_str()
        })
        .map(str::to_owned);
    let function_name = function
        .and_then(|function| function.get("Z8K5")?.get("Z9K1")?.as_str())
        .map(str::to_owned);
    let signature =
        function.and_then(|function| zeval_compiler::Signature::from_function(function).ok());
    let function_arguments: Map<String, Value> = match zobject {
        Value::Object(object) => object
            .into_iter()
            .filter(|(key, _)| key != "Z1K1" && key != "Z7K1")
            .collect(),
        _ => Map::new(),
    };
    ExecutorRequest {
        reentrant,
        remaining_time: None,
        coding_language: None,
        code_string,
        function_name,
        function_arguments,
        signature,
        client: None,
    }
}

/// The most characters of a message an executor's error keeps: 16,384 (at most 64 KiB).
/// The rest is cut, marked "…". A guest's exception message is as long as its output limit
/// allows (8 MiB by default), and the error is copied as it travels: into the answer's
/// metadata, once per composition that hands it on, into the result cache and the HTTP
/// answer. A Python traceback of a deep recursion is a few KiB (CPython folds repeated lines).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 16 * 1024;

/// The executor's error shape: a Z5 with only `Z5K2` (spec §1.8), its message cut at
/// [`MAX_ERROR_MESSAGE_CHARS`].
pub(crate) fn executor_error(message: &str) -> Value {
    let message = crate::evaluator::quote_at_most(message, MAX_ERROR_MESSAGE_CHARS);
    obj([("Z1K1", z9("Z5")), ("Z5K2", z6(&*message))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite_request(file: &str) -> Value {
        let path = format!(
            "{}/../../../shared/wikifunctions/evaluator/data/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        zeval_zobject::json::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn message(z5: &Value) -> &str {
        z5["Z5K2"]["Z6K1"].as_str().unwrap()
    }

    fn call(file: &str) -> Request {
        Request::FunctionCall {
            reentrant: false,
            zobject: suite_request(file),
        }
    }

    #[test]
    fn a_full_call_is_planned() {
        let plan = plan(call("python3_add_Z7.json"), Variant::Omnibus).unwrap();
        assert_eq!(plan.family, Family::Python);
        assert_eq!(plan.request.function_name.as_deref(), Some("Z1000"));
        assert!(plan.request.code_string.unwrap().starts_with("def Z1000"));
        let keys: Vec<_> = plan.request.function_arguments.keys().cloned().collect();
        assert_eq!(keys, ["Z1000K1", "Z1000K2"]);
    }

    #[test]
    fn the_suites_error_cases() {
        let cases = [
            ("python3_no_Z8.json", "Unable to find programming language"),
            (
                "javascript_no_Z8.json",
                "Unable to find programming language",
            ),
            ("python3_no_Z14.json", "Unable to find programming language"),
            (
                "no_implementation_throw.json",
                "Unable to find programming language",
            ),
            (
                "python_unsupported_version_throw.json",
                "No executor found for programming language",
            ),
            (
                "unsupported_language_java_throw.json",
                "No executor found for programming language",
            ),
        ];
        for (file, phrase) in cases {
            let error = plan(call(file), Variant::Omnibus).unwrap_err();
            assert!(
                message(&error).contains(phrase),
                "{file}: {}",
                message(&error)
            );
        }
    }

    #[test]
    fn a_degenerate_function_fails_validation() {
        let error = plan(call("degenerate_Z8.json"), Variant::Omnibus).unwrap_err();
        assert!(
            message(&error).starts_with("Unable to validate function call."),
            "{error}"
        );
    }

    #[test]
    fn single_language_variants_refuse_the_other_language() {
        let error = plan(call("javascript_add_Z7.json"), Variant::Python3All).unwrap_err();
        assert_eq!(
            message(&error),
            "No executor found for programming language javascript."
        );
        assert!(plan(call("javascript_add_Z7.json"), Variant::JavascriptAll).is_ok());
    }

    #[test]
    fn executor_form_needs_language_and_code() {
        let mut request = ExecutorRequest {
            code_string: Some("x".into()),
            ..Default::default()
        };
        let error = plan(Request::Executor(request.clone()), Variant::Omnibus).unwrap_err();
        assert!(message(&error).starts_with("Unable to find programming language"));
        request.coding_language = Some("Z600".into());
        request.code_string = None;
        let error = plan(Request::Executor(request), Variant::Omnibus).unwrap_err();
        assert_eq!(message(&error), "Request did not supply codeString.");
    }
}
