//! An orchestration's answer: the Z22 as the engine built it (normal form) and the request's
//! `orchestration*` entries, joined when the answer leaves.
//!
//! Most answers leave as canonical JSON text. [`Answer::to_json`] writes that text straight
//! from the normal Z22 ([`zeval_zobject::canonical_text`]): no canonical tree, no metadata map
//! built and then compacted. For a request that only reports an error that was most of its
//! cost (20 µs of which the canonical tree took over half, 2026-12-03). [`Answer::into_value`]
//! builds the same answer as a tree for the callers that inspect it; a test over the whole
//! orchestrator suite holds the two to the same JSON.

use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, get_metadata, set_envelope_metadata, z6};
use zeval_zobject::canonical_text::write_canonical_envelope;
use zeval_zobject::depth::drop_iteratively;
use zeval_zobject::error::z5;

/// What an orchestration answers (see the module docs).
#[derive(Debug, Clone)]
pub struct Answer {
    z22: Z22,
    entries: Vec<(&'static str, String)>,
    form: Form,
}

/// An answer's Z22: built for this request, or one that is the same for every request that
/// gets it (such as "not a function call"), written from where it is kept without a copy.
#[derive(Debug, Clone)]
pub(crate) enum Z22 {
    Built(Value),
    Constant(&'static Value),
}

impl Z22 {
    /// The Z22 as a value of its own (a copy of a constant).
    pub(crate) fn into_owned(mut self) -> Value {
        match &mut self {
            Z22::Built(value) => std::mem::take(value),
            Z22::Constant(value) => (*value).clone(),
        }
    }
}

impl std::ops::Deref for Z22 {
    type Target = Value;
    fn deref(&self) -> &Value {
        match self {
            Z22::Built(value) => value,
            Z22::Constant(value) => value,
        }
    }
}

impl Drop for Z22 {
    fn drop(&mut self) {
        // The normal form of a long list nests two levels per element; dropping it must not
        // recurse on a small server-thread stack.
        if let Z22::Built(value) = self {
            drop_iteratively(std::mem::take(value));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// The caller asked for canonical form (it falls back to normal form when the Z22 does
    /// not canonicalize, as the original does).
    Canonical,
    /// The caller asked for normal form.
    Normal,
    /// `z22` is the answer as it leaves, with no entries to add (a timeout, or an answer
    /// that was built elsewhere).
    Final,
}

impl Answer {
    pub(crate) fn new(z22: Z22, entries: Vec<(&'static str, String)>, canonical: bool) -> Self {
        let form = if canonical {
            Form::Canonical
        } else {
            Form::Normal
        };
        Answer { z22, entries, form }
    }

    /// An answer that is already complete, such as one a result cache kept.
    pub fn from_value(z22: Value) -> Self {
        Answer {
            z22: Z22::Built(z22),
            entries: Vec::new(),
            form: Form::Final,
        }
    }

    /// The Z22's error (its `errors` metadata, or a bare Z5 metadata), if it failed. The
    /// entries this answer adds are never errors.
    pub fn error(&self) -> Option<&Value> {
        envelope_error(&self.z22)
    }

    /// A metadata value the evaluation set (`implementationType`, …), in the form it has now.
    /// The `orchestration*` entries are not among them.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        get_metadata(self.z22.get("Z22K2")?, key)
    }

    /// The answer as a tree: canonical unless normal form was asked for or canonicalization
    /// failed.
    pub fn into_value(mut self) -> Value {
        let z22 = self.take_z22();
        let entries = std::mem::take(&mut self.entries);
        let entries = entries.into_iter().map(|(key, text)| (key, z6(text)));
        match self.form {
            Form::Final => z22,
            Form::Normal => with_normal_entries(z22, entries),
            Form::Canonical => match canonical_result(z22) {
                Ok(mut canonical) => {
                    zeval_zobject::build::set_canonical_envelope_metadata(&mut canonical, entries);
                    canonical
                }
                Err(normal) => with_normal_entries(normal, entries),
            },
        }
    }

    /// The Z22's value in normal form, or its error when it failed: for callers that use only
    /// the result, such as a tester's call and its validator. Neither the `orchestration*`
    /// entries nor a canonical tree are built; `zeval bench library` spent about 40 µs of a
    /// check building, then dropping them (2026-12-05). `Err` also when the answer is not a
    /// Z22 at all.
    pub fn into_result(mut self) -> Result<Value, Value> {
        let z22 = self.take_z22();
        if let Some(error) = envelope_error(&z22) {
            let error = error.clone();
            drop_iteratively(z22);
            return Err(error);
        }
        let Value::Object(mut envelope) = z22 else {
            drop_iteratively(z22);
            return Err(z5(
                "Z500",
                [z6("the call's answer is not a Z22".to_owned())],
            ));
        };
        let value = envelope.remove("Z22K1").unwrap_or(Value::Null);
        drop_iteratively(Value::Object(envelope));
        match self.form {
            Form::Canonical | Form::Normal => Ok(value),
            // Built elsewhere (a timeout is already normal; a kept answer may be canonical).
            Form::Final => Ok(zeval_zobject::normalize(&value).unwrap_or(value)),
        }
    }

    /// The answer's JSON: the bytes `serde_json::to_vec(&self.into_value())` gives.
    pub fn to_json(&self) -> Vec<u8> {
        if let Some(text) = self.canonical_text() {
            return text;
        }
        serde_json::to_vec(&self.clone().into_value()).unwrap_or_default()
    }

    /// [`Self::to_json`], consuming the answer (no copy when it takes the tree path).
    pub fn into_json(self) -> Vec<u8> {
        if let Some(text) = self.canonical_text() {
            return text;
        }
        serde_json::to_vec(&self.into_value()).unwrap_or_default()
    }

    /// Whether [`Self::to_json`] writes this answer straight from its normal form (the rest
    /// are built as a tree and serialised).
    pub fn writes_directly(&self) -> bool {
        self.canonical_text().is_some()
    }

    fn take_z22(&mut self) -> Value {
        std::mem::replace(&mut self.z22, Z22::Built(Value::Null)).into_owned()
    }

    /// The canonical text written straight from the normal Z22, when that path covers it.
    fn canonical_text(&self) -> Option<Vec<u8>> {
        // Anything but strings and typed objects goes through the validating canonicalize
        // (which may fall back to normal form), as in `into_value`.
        if self.form != Form::Canonical || !looks_normal(&self.z22) {
            return None;
        }
        let mut out = Vec::with_capacity(2048);
        write_canonical_envelope(&self.z22, &self.entries, &mut out).then_some(out)
    }
}

fn with_normal_entries<'k>(
    mut z22: Value,
    entries: impl IntoIterator<Item = (&'k str, Value)>,
) -> Value {
    for (key, value) in entries {
        set_envelope_metadata(&mut z22, key, value);
    }
    z22
}

/// Canonicalizes the final Z22 before its orchestration metadata is added; the caller falls
/// back to normal form when that fails (spec §2.2).
///
/// A result made only of objects that have a `Z1K1` and well-formed keys, and strings, was
/// built from normalized input by this orchestrator, so it is compacted directly; anything
/// else (numbers, Booleans, arrays or type-less objects quoted in an error about malformed
/// input) goes through the full validating canonicalize, which then falls back to normal form
/// as the original does (the HTTP suite's "record with list and invalid sub-record" needs it).
/// `Err` gives back the normal form when canonicalization failed.
fn canonical_result(result: Value) -> Result<Value, Value> {
    if looks_normal(&result) {
        let canonical = zeval_zobject::canonicalize::canonicalize_normal(&result);
        drop_iteratively(result);
        return Ok(canonical);
    }
    match zeval_zobject::canonicalize(&result) {
        Ok(canonical) => {
            drop_iteratively(result);
            Ok(canonical)
        }
        Err(error) => {
            drop_iteratively(error);
            Err(result)
        }
    }
}

fn looks_normal(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                // One pass over the keys: a lookup would hash "Z1K1" for every object.
                let mut typed = false;
                for key in m.keys() {
                    if key == "Z1K1" {
                        typed = true;
                    } else if !zeval_zobject::ident::is_key(key) {
                        return false;
                    }
                }
                if !typed {
                    return false;
                }
                stack.extend(m.values());
            }
            Value::String(_) => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use zeval_zobject::build::{failure, void, z22};

    use super::*;

    fn normal(canonical: Value) -> Value {
        zeval_zobject::normalize(&canonical).unwrap()
    }

    #[test]
    fn into_result_gives_the_value_in_normal_form() {
        // A string that looks like a ZID must stay a string, not become a reference.
        let value = normal(json!({"Z1K1": "Z6", "Z6K1": "Z41"}));
        let entries = vec![("orchestrationDuration", "1 ms".to_owned())];
        for canonical in [true, false] {
            let answer = Answer::new(
                Z22::Built(z22(value.clone(), void())),
                entries.clone(),
                canonical,
            );
            assert_eq!(answer.into_result(), Ok(value.clone()));
        }
    }

    #[test]
    fn into_result_gives_the_error_of_either_metadata_form() {
        let error = normal(z5("Z507", [z6("too deep")]));
        let bare = Answer::new(Z22::Built(z22(void(), error.clone())), Vec::new(), true);
        assert_eq!(bare.into_result(), Err(error.clone()));
        let mapped = Answer::new(Z22::Built(failure(error.clone())), Vec::new(), true);
        assert_eq!(mapped.into_result(), Err(error));
    }

    #[test]
    fn into_result_normalizes_an_answer_built_elsewhere() {
        let kept = Answer::from_value(json!({"Z1K1": "Z22", "Z22K1": "text", "Z22K2": "Z24"}));
        assert_eq!(
            kept.into_result(),
            Ok(normal(json!({"Z1K1": "Z6", "Z6K1": "text"})))
        );
        let not_a_z22 = Answer::from_value(json!("text"));
        assert!(not_a_z22.into_result().is_err());
    }

    #[test]
    fn a_constant_z22_answers_as_its_copy_would() {
        static CONSTANT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
            z22(void(), normal(z5("Z539", [z6("not a function call")])))
        });
        let entries = vec![("orchestrationDuration", "1 ms".to_owned())];
        for canonical in [true, false] {
            let constant = Answer::new(Z22::Constant(&CONSTANT), entries.clone(), canonical);
            let built = Answer::new(Z22::Built(CONSTANT.clone()), entries.clone(), canonical);
            assert_eq!(constant.to_json(), built.to_json());
            assert_eq!(constant.error(), built.error());
            assert_eq!(constant.clone().into_value(), built.clone().into_value());
            assert_eq!(constant.into_result(), built.into_result());
        }
        // The constant itself is untouched by the answers taken from it.
        assert_eq!(
            *CONSTANT,
            z22(void(), normal(z5("Z539", [z6("not a function call")])))
        );
    }
}
