//! Schema validation of normal, canonical and mixed ZObjects (spec §1.2–1.3, §4.3).
//!
//! The schemas of the built-in types are written in Rust (`normal`, `canonical`,
//! `mixed`) with the same structure as the original's JSON Schemas, and run by a small
//! evaluator (`engine`) that reproduces Ajv's choice of errors, so that the same objects
//! are valid and the same Z5xx codes come out (`report`): a Z502 root, a Z526 per key,
//! Z509 for sibling errors, leaf codes Z511/Z513/Z521/Z523/Z524/Z525/Z532/Z533/Z535/Z536/
//! Z537/Z549/Z553.
//!
//! Schema names: a built-in type ZID (`Z1`…`Z99`, each a literal or a resolver — Z9, Z18,
//! Z7 — where the original allows one), `Zn_literal` (the literal only), `LIST`, `GENERIC`,
//! and the helpers the schemas use (`RESOLVER`, `Z6_ZnKn`, `LIST_OF_Zn` / `LIST_of_Zn`, …).

mod canonical;
mod dsl;
mod engine;
mod mixed;
mod normal;
mod patterns;
mod report;
mod user_defined;

use std::sync::OnceLock;

use crate::Value;
use crate::build::z6;
use crate::error::z5;

use engine::{Evaluator, Node, Registry};

pub use report::{key_reference, list_of_errors, not_wellformed};
pub use user_defined::validate_with_type;

/// Which form a value must be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Everything explicit: `{Z1K1: Z6, Z6K1: …}`, `{Z1K1: Z9, Z9K1: …}`, linked lists.
    Normal,
    /// Compact: bare strings and references, benjamin arrays.
    Canonical,
}

impl std::str::FromStr for Form {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(Form::Normal),
            "canonical" => Ok(Form::Canonical),
            other => Err(format!(
                "unknown form {other:?} (expected normal or canonical)"
            )),
        }
    }
}

fn registry(form: Form) -> &'static Registry {
    static NORMAL: OnceLock<Registry> = OnceLock::new();
    static CANONICAL: OnceLock<Registry> = OnceLock::new();
    match form {
        Form::Normal => NORMAL.get_or_init(normal::registry),
        Form::Canonical => CANONICAL.get_or_init(canonical::registry),
    }
}

fn mixed_registry() -> &'static Registry {
    static MIXED: OnceLock<Registry> = OnceLock::new();
    MIXED.get_or_init(mixed::registry)
}

/// Whether `schema` names a schema of `form` (see the module docs for the names).
pub fn has_schema(schema: &str, form: Form) -> bool {
    registry(form).contains_key(schema)
}

/// Validates `value` against the schema `schema` (a built-in type ZID such as `"Z2"`, or
/// another schema name) in `form`.
///
/// Returns the Z5 (normal form, a Z502 tree) when the value is invalid, and a Z543 "type
/// not found" error when there is no such schema (user-defined types are validated with
/// [`validate_with_type`]). Values nested deeper than [`crate::depth::MAX_DEPTH`] are
/// rejected with a Z502 before validation.
pub fn validate(value: &Value, schema: &str, form: Form) -> Result<(), Value> {
    let registry = registry(form);
    let Some(node) = registry.get(schema) else {
        return Err(z5("Z543", [z6(schema)]));
    };
    run(registry, node, value)
}

/// Validations of several parts of one value, in one form, that share what they learn: each
/// `(schema, object)` pair is checked once across all of them.
///
/// The orchestrator's static validation checks every typed object of a request against its
/// type's schema, and each schema already checks the object's typed parts, which are then
/// checked again on their own: separate [`validate`] calls repeat the work once per level
/// of nesting (most of `function call for Z808 with reference to Z908`, whose argument nests
/// types some ten levels deep). A session keeps the pairs by address, which is why it
/// borrows every value it checks for as long as it lives: none of them can move or be freed
/// meanwhile, so an address names one object. Its memory is that of one [`validate`] of the
/// root (at most one entry per schema node and object).
///
/// Valid parts, the common case, cost nothing more; a part that fails is validated again on
/// its own to say why, so its error is exactly [`validate`]'s.
pub struct Session<'v> {
    registry: &'static Registry,
    checking: Evaluator,
    /// Whether the root is deeper than [`crate::depth::MAX_DEPTH`]: then every part goes
    /// through [`validate`], which rejects the too deep ones as it always did.
    root_too_deep: bool,
    values: std::marker::PhantomData<&'v Value>,
}

impl<'v> Session<'v> {
    /// A session over `root` and its parts, in `form`.
    pub fn new(root: &'v Value, form: Form) -> Self {
        let registry = registry(form);
        Session {
            registry,
            checking: Evaluator::with_spare(registry, false, engine::Spare::Session),
            root_too_deep: crate::depth::exceeds(root, crate::depth::MAX_DEPTH),
            values: std::marker::PhantomData,
        }
    }

    /// [`validate`] of `value`, a part of the session's root (its depth was checked there),
    /// against `schema`.
    pub fn validate(&mut self, value: &'v Value, schema: &str) -> Result<(), Value> {
        let Some(node) = self.registry.get(schema) else {
            return Err(z5("Z543", [z6(schema)]));
        };
        if !self.root_too_deep && self.checking.check(node, value).is_ok() {
            return Ok(());
        }
        run(self.registry, node, value)
    }
}

/// Validates a value against the MIXED schema (what `normalize` accepts).
pub fn validate_mixed(value: &Value) -> Result<(), Value> {
    let registry = mixed_registry();
    run(registry, &registry["Z1"], value)
}

/// Validates `value` as the value of key `key` of an object of built-in type `parent_type`,
/// against that type's sub-schema for the key (the original's `subValidator(key)`).
///
/// The orchestrator uses this when it replaces the value of key `k` of an object `o` (spec
/// §2.3, `resolveInternals`): the new value must still fit `o`'s normal-form schema at `k`.
/// The sub-schema is the property schema of `<parent_type>_literal` for `key`, or the first
/// pattern property that matches `key`. Returns `Err` with the Z502 tree when the value does
/// not fit, and `Err(Z525(key))` when the type has no sub-schema for the key (the original
/// also answers Z525 then). `Z1K1` is not special-cased here; callers skip it.
pub fn validate_key(parent_type: &str, key: &str, value: &Value, form: Form) -> Result<(), Value> {
    let registry = registry(form);
    let literal = format!("{parent_type}_literal");
    let sub_schema = match registry.get(literal.as_str()) {
        Some(Node::Inline(keywords)) => keywords
            .properties
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, node)| node)
            .or_else(|| {
                keywords
                    .pattern_properties
                    .iter()
                    .find(|(p, _)| p.is_match(key))
                    .map(|(_, n)| n)
            }),
        _ => None,
    };
    match sub_schema {
        Some(node) => run(registry, node, value),
        None => Err(z5("Z525", [z6(key)])),
    }
}

fn run(registry: &'static Registry, node: &Node, value: &Value) -> Result<(), Value> {
    if crate::depth::exceeds(value, crate::depth::MAX_DEPTH) {
        return Err(crate::depth::too_deep_error());
    }
    // Valid data, the common case, is checked without recording errors; invalid data is
    // checked again to say why (the same keywords run in the same order, so the errors are
    // the ones a single recording pass would give).
    let mut checking = Evaluator::new(registry, false);
    if checking.check(node, value).is_ok() {
        return Ok(());
    }
    // The first pass decided: invalid. The second only says why, and may run out of checks
    // first (then even its outcome is not to be trusted).
    let mut recording = checking.recording();
    let outcome = recording.check(node, value);
    if recording.gave_up() {
        return Err(not_wellformed(z5(
            "Z500",
            [z6(
                "the value does not match its schema (too many checks to say where)",
            )],
        )));
    }
    match outcome {
        Ok(()) => Err(unexplained()),
        Err(errors) => Err(report::root_error(&errors).unwrap_or_else(unexplained)),
    }
}

/// When no schema error maps to a code (e.g. only `enum` or `oneOf` failed), the original
/// has no Z5 to give; zeval still needs one, so it reports a Z502 around a generic Z500.
fn unexplained() -> Value {
    not_wellformed(z5("Z500", [z6("the value does not match its schema")]))
}

#[cfg(test)]
mod tests;
