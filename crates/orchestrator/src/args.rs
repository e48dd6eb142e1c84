//! Retrieving arguments (call-by-need with memoization) and checking their types
//! (spec §2.4 step 5, Z506/Z517/Z518).

use zeval_zobject::Value;
use zeval_zobject::build::z6;
use zeval_zobject::error::z5;

use crate::engine::{Engine, Fail, R};
use crate::frame::{ArgState, Scope};
use crate::node::{Node, STACK_RED_ZONE, STACK_SEGMENT, call_node, key};
use crate::types::compare_types;

/// A value's type as a type-mismatch error reports it: its `Z1K1` as written in normal form.
/// That is a reference for most values, but the bare string `"Z6"`/`"Z9"` for a string or a
/// reference, which the original puts in the error as it is, so that it reads as the string
/// `{"Z1K1": "Z6", "Z6K1": "Z6"}` (the original's Z506 for a string where a Boolean is
/// declared has `Z506K2` and `Z518K1` so).
fn reported_type(actual: &Node) -> R<Value> {
    match actual {
        Node::Str(bare) => Ok(z6(bare.to_string())),
        other => other.quoted_json(),
    }
}

impl Engine<'_> {
    /// Looks `name` up from `scope` outwards. An unevaluated argument is evaluated (unless
    /// `lazy`), type-checked and deep-evaluated, and the outcome is memoized in the frame
    /// where the lookup started.
    pub(crate) fn retrieve_argument(&self, scope: &Scope, name: &str, lazy: bool) -> R<Node> {
        let not_found = || {
            Err(Fail::Error(z5(
                "Z525",
                [z6(format!("No argument called {name} in scope."))],
            )))
        };
        let Some(frame) = scope else {
            return not_found();
        };
        let Some(state) = frame.lookup(name) else {
            return not_found();
        };
        match state {
            ArgState::Evaluated(v) => Ok(v),
            ArgState::Unevaluated { expr, .. } if lazy => Ok(expr),
            ArgState::Unevaluated { expr, declared } => {
                let _link = self.enter_argument()?;
                let started = std::time::Instant::now();
                let evaluated = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.process_argument(&expr, &declared)
                });
                // The caller's expression's time, not the reader's (the ranking's figures).
                frame.note_argument_time(started.elapsed());
                // A failure is not kept: every link of a chain of arguments handed on would
                // keep its own copy of the error (40,000 links of an error quoting 64 KiB are
                // 2.6 GB no budget counted), and an argument that failed is seldom read again
                // (the read that failed ends the work that read it). Read again, it is
                // evaluated again, within the budget. The frame notes that one of its
                // arguments failed, for the ranking.
                match evaluated {
                    Ok(v) => {
                        frame.set(name, ArgState::Evaluated(v.clone()));
                        Ok(v)
                    }
                    Err(fail) => {
                        if matches!(fail, Fail::Error(_)) {
                            frame.note_failed_argument();
                        }
                        Err(fail)
                    }
                }
            }
        }
    }

    /// Evaluates an argument expression: resolves it (dereferencing even built-in objects),
    /// runs its type's validator when validating, checks the declared type, then evaluates
    /// it deeply.
    pub(crate) fn process_argument(&self, expr: &Node, declared: &Node) -> R<Node> {
        let value = self.resolve(expr, true, true)?;
        self.check_type(&value, declared, "Z506")?;
        self.deep_evaluate(&value)
    }

    /// The type check of an argument (`code` Z506) or a top-level result (Z517): the
    /// value's own validator when validating (a failure is a Z518), then `compareTypes`.
    pub(crate) fn check_type(&self, value: &Node, declared: &Node, code: &str) -> R<()> {
        let Some(actual) = value.type_node().cloned() else {
            return Ok(());
        };
        let resolved_actual = match self.resolve_type_for_check(&actual) {
            Ok(t) => t,
            Err(Fail::Error(_)) => actual.clone(),
            Err(other) => return Err(other),
        };
        if self.do_validate()
            && let Err(inner) = self.run_type_validator(value, &actual, &resolved_actual)?
        {
            let z518 = z5(
                "Z518",
                [reported_type(&actual)?, value.quoted_json()?, inner],
            );
            if code == "Z506" {
                return Err(Fail::Error(z518));
            }
            return Err(Fail::Error(z5(
                code,
                [
                    declared.quoted_json()?,
                    reported_type(&actual)?,
                    value.quoted_json()?,
                    z518,
                ],
            )));
        }
        let resolved_declared = match self.resolve_type_for_check(declared) {
            Ok(t) => t,
            Err(Fail::Error(_)) => declared.clone(),
            Err(other) => return Err(other),
        };
        if compare_types(&resolved_actual, &resolved_declared)? {
            return Ok(());
        }
        let z518 = z5("Z518", [reported_type(&actual)?]);
        Err(Fail::Error(z5(
            code,
            [
                declared.quoted_json()?,
                reported_type(&actual)?,
                value.quoted_json()?,
                z518,
            ],
        )))
    }

    /// A type as compared: references to user-defined types become their Z4.
    fn resolve_type_for_check(&self, ty: &Node) -> R<Node> {
        match ty.ref_zid() {
            Some(zid) if !zeval_zobject::ident::is_built_in_type(zid) => {
                self.resolve(ty, false, false)
            }
            _ => Ok(ty.clone()),
        }
    }

    /// Runs the validator of a value's type when its type is a Z4 literal whose validator is
    /// not Z831. `Ok(Err(z5))` is a failed validation.
    fn run_type_validator(&self, value: &Node, _written: &Node, ty: &Node) -> R<Result<(), Value>> {
        if !ty.is_type("Z4") {
            return Ok(Ok(()));
        }
        let Some(validator) = ty.get("Z4K3") else {
            return Ok(Ok(()));
        };
        if validator.ref_zid() == Some("Z831")
            || validator.get("Z8K5").and_then(Node::ref_zid) == Some("Z831")
        {
            return Ok(Ok(()));
        }
        let function = match self.resolve(validator, false, false) {
            Ok(f) if f.is_type("Z8") => f,
            Ok(_) => return Ok(Ok(())),
            Err(Fail::Error(e)) => return Ok(Err(e)),
            Err(other) => return Err(other),
        };
        let declarations = self.declarations(&function)?;
        let mut args = Vec::new();
        let inputs = [value.clone(), ty.clone()];
        for ((name, _), input) in declarations.iter().zip(inputs) {
            args.push((name.as_str(), input));
        }
        let mut call = call_node("Z801", args);
        call = call.with("Z7K1", validator.clone());
        let _ = key;
        match self.with_validation(false, || self.execute(&call, false, true)) {
            Ok(env) => match env.error() {
                Some(e) => Ok(Err(e.clone())),
                None => Ok(Ok(())),
            },
            Err(Fail::Error(e)) => Ok(Err(e)),
            Err(other) => Err(other),
        }
    }
}
