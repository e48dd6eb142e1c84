//! Static validation of the request (spec §2.5) and the one place this crate calls the
//! schema validator of `zeval_zobject`.

use zeval_zobject::Value;
use zeval_zobject::depth::drop_iteratively;
use zeval_zobject::ident::is_built_in_type;
use zeval_zobject::validate::{Session, list_of_errors};
use zeval_zobject::{Form, validate, validate_with_type};

use crate::engine::{Engine, Fail, R};
use crate::node::{Node, STACK_RED_ZONE, STACK_SEGMENT};

/// Validates a normal value against the schema of built-in type `zid`.
pub(crate) fn check_schema(value: &Value, zid: &str) -> Result<(), Value> {
    validate(value, zid, Form::Normal)
}

/// Validates a normal value against a user-defined type (a normal Z4).
pub(crate) fn check_user_type(value: &Value, z4: &Value) -> Result<(), Value> {
    validate_with_type(value, z4, Form::Normal)
}

impl Engine<'_> {
    /// The static validation of a request: `Ok(None)` when valid, else the one error or a
    /// Z509 of several.
    pub(crate) fn static_validation(&self, call: &Node) -> R<Option<Value>> {
        let mut errors = Vec::new();
        self.validate_copy(call, &mut errors)?;
        Ok(match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(list_of_errors(errors)),
        })
    }

    /// Validates `node` and its parts on one copy of it, in one session: one copy for every
    /// check (it used to be one copy per typed object, each checked from scratch; see
    /// `Session`).
    fn validate_copy(&self, node: &Node, errors: &mut Vec<Value>) -> R<()> {
        let json = node.to_passing_json()?;
        let mut session = Session::new(&json, Form::Normal);
        let outcome = self.validate_node(node, &json, &mut session, errors);
        drop(session);
        drop_iteratively(json);
        outcome
    }

    /// Validates `node`, whose JSON is `json` (a part of the session's root), and its parts.
    fn validate_node<'v>(
        &self,
        node: &Node,
        json: &'v Value,
        session: &mut Session<'v>,
        errors: &mut Vec<Value>,
    ) -> R<()> {
        let Some(obj) = node.as_obj() else {
            return Ok(());
        };
        crate::budget::step()?;
        let Some(ty) = node.type_node() else {
            return Ok(());
        };
        if ty.as_str().is_some() {
            return Ok(());
        }
        if let Some(zid) = ty.ref_zid() {
            self.validate_typed(node, json, zid, session, errors)?;
        }
        let is_call = node.is_type("Z7");
        // The JSON has the node's keys in the node's order; a lookup is the fallback.
        let fields = json.as_object();
        let mut in_order = fields.into_iter().flatten();
        for (k, child) in &obj.entries {
            let next = in_order.next();
            if is_call && !matches!(&**k, "Z1K1" | "Z7K1") {
                continue;
            }
            let child_json = match next {
                Some((key, value)) if key.as_str() == &**k => Some(value),
                _ => fields.and_then(|fields| fields.get(&**k)),
            };
            stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match child_json {
                Some(child_json) => self.validate_node(child, child_json, session, errors),
                None => self.validate_copy(child, errors),
            })?;
        }
        Ok(())
    }

    fn validate_typed<'v>(
        &self,
        node: &Node,
        json: &'v Value,
        zid: &str,
        session: &mut Session<'v>,
        errors: &mut Vec<Value>,
    ) -> R<()> {
        if !is_built_in_type(zid) {
            // The original cannot build a schema for a user-defined type here and throws.
            return Err(Fail::Crash(format!(
                "TypeError: Cannot read properties of undefined (reading 'validate') for {zid}"
            )));
        }
        if let Err(e) = session.validate(json, zid) {
            errors.push(e);
            return Ok(());
        }
        let Some(validator) = zeval_catalogue::get(zid)
            .and_then(|z2| z2["Z2K2"].get("Z4K3"))
            .and_then(Value::as_str)
            .and_then(zeval_catalogue::builtin_implementation)
        else {
            return Ok(());
        };
        if let Some(finding) = crate::builtins::check_validator(self, validator, node)? {
            match zeval_zobject::error::error_code(&finding) {
                Some("Z509") => errors.extend(
                    zeval_zobject::build::list_items(&finding["Z5K2"]["Z509K1"])
                        .unwrap_or_default()
                        .into_iter()
                        .cloned(),
                ),
                _ => errors.push(finding),
            }
        }
        Ok(())
    }
}
