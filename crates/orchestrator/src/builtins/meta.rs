//! Builtins that reach outside the value: metadata (Z920), envelopes (Z923), fetching
//! (Z928), schema validation (Z931) and language lookup (Z960).

use zeval_zobject::build::z6;
use zeval_zobject::error::z5;

use crate::engine::{Engine, Env, Fail, R, error};
use crate::node::{Node, call_node, key};
use crate::resolver::DerefError;

/// Z920: a void result carrying one metadata entry, of at most
/// [`crate::budget::MAX_METADATA_VALUE_BYTES`] and [`crate::budget::MAX_METADATA_VALUE_DEPTH`]
/// levels.
pub(super) fn trigger_metadata(name: &Node, value: &Node) -> R<Env> {
    use crate::budget::{MAX_METADATA_VALUE_BYTES, MAX_METADATA_VALUE_DEPTH};
    let name = name.string_value().unwrap_or_default();
    let Some(json) = value.to_metadata_json()? else {
        return crate::budget::exceeded(
            "metadata size",
            format!(
                "A metadata value takes more than {} KiB or {MAX_METADATA_VALUE_DEPTH} levels \
                 (orchestrator bounds `MAX_METADATA_VALUE_BYTES`, `MAX_METADATA_VALUE_DEPTH`).",
                MAX_METADATA_VALUE_BYTES / 1024
            ),
        );
    };
    let meta = crate::metadata::set(None, name, json);
    Ok(Env {
        value: Node::void(),
        meta: Some(meta),
    })
}

/// Z923: orchestrates the quoted call and returns `(value, metadata)` as a pair.
///
/// The call's JSON may be as deep as the budget allows, and this may run deep in a
/// recursion, with only the engine's red zone of stack left: the nested request, which
/// walks that JSON, runs with room for its depth, and the JSON is dropped without
/// recursing. A quote 9,000 levels deep handed down a recursion 1,000 deep overflowed the
/// stack (`limits::json_a_built_in_makes_of_a_deep_value_is_dropped_within_the_stack`).
pub(super) fn envelope(engine: &Engine<'_>, quoted: &Node) -> R<Node> {
    let call = quoted.get("Z99K1").cloned().unwrap_or_else(Node::void);
    let call = call.to_json()?;
    let levels = zeval_zobject::depth::of(&call);
    let z22 = crate::budget::with_room_for_json_levels(levels, || engine.orchestrate_nested(&call));
    zeval_zobject::depth::drop_iteratively(call);
    let z22 = z22?;
    let value = Node::from_json(&z22["Z22K1"], &None);
    let meta = Node::from_json(&z22["Z22K2"], &None);
    zeval_zobject::depth::drop_iteratively(z22);
    let ty = call_node(
        "Z882",
        vec![("Z882K1", Node::z9("Z1")), ("Z882K2", Node::z9("Z1"))],
    );
    Ok(Node::object(
        vec![(key("Z1K1"), ty), (key("K1"), value), (key("K2"), meta)],
        None,
    ))
}

/// Z928: the persistent object behind a quoted reference.
pub(super) fn fetch(engine: &Engine<'_>, quoted: &Node) -> R<Env> {
    let inner = quoted.get("Z99K1").cloned().unwrap_or_else(Node::void);
    let zid = inner
        .ref_zid()
        .or_else(|| inner.as_str())
        .unwrap_or_default()
        .to_string();
    if zeval_catalogue::is_preloaded(&zid) {
        // The original answers a built-in with its whole definition file, labels included.
        if let Some(full) = engine.full_definition(&zid) {
            return Ok(Env::ok(full));
        }
    }
    match engine.resolver.lookup(&zid) {
        Ok(z2) => Ok(Env::ok(z2)),
        Err(DerefError::Missing(e)) => Err(Fail::Error(e)),
        Err(DerefError::Timeout) => Err(Fail::Timeout),
        Err(DerefError::Fetch(message)) => error(
            "Z500",
            [z6(format!(
                "Error thrown by dereference(): FetchError: {message}"
            ))],
        ),
    }
}

/// Z931: validates a quoted object against a quoted type with the schema validator.
pub(super) fn validate_against_schema(
    engine: &Engine<'_>,
    quoted_object: &Node,
    quoted_type: &Node,
) -> R<Node> {
    let object = quoted_object
        .get("Z99K1")
        .cloned()
        .unwrap_or_else(Node::void);
    let ty = quoted_type.get("Z99K1").cloned().unwrap_or_else(Node::void);
    let ty = match ty.ref_zid() {
        Some(zid) if !zeval_zobject::ident::is_built_in_type(zid) => {
            engine.resolve(&ty, false, false)?
        }
        _ => ty,
    };
    // The object's JSON (and a type's) may be as deep as the budget allows, and this may
    // run deep in a recursion: checked with room for that depth, and dropped without
    // recursing (see `envelope`).
    let object_json = object.to_json()?;
    let type_json = match ty.ref_zid() {
        Some(zid) => Err(zid),
        None => Ok(ty.to_json()?),
    };
    let levels = zeval_zobject::depth::of(&object_json)
        .max(type_json.as_ref().map_or(0, zeval_zobject::depth::of));
    let result = crate::budget::with_room_for_json_levels(levels, || match &type_json {
        Ok(type_json) => crate::validation::check_user_type(&object_json, type_json),
        Err(zid) => crate::validation::check_schema(&object_json, zid),
    });
    zeval_zobject::depth::drop_iteratively(object_json);
    if let Ok(type_json) = type_json {
        zeval_zobject::depth::drop_iteratively(type_json);
    }
    match result {
        Ok(()) => Ok(object),
        Err(e) => Err(Fail::Error(e)),
    }
}

/// Z960: the natural language with this code, or (as the original does) the Z525 error as
/// the value.
pub(super) fn language(engine: &Engine<'_>, code: &Node) -> R<Node> {
    let code = code.string_value().unwrap_or_default();
    match zeval_catalogue::language_zid(code) {
        Some(zid) => engine.resolve(&Node::z9(zid), true, true),
        None => Ok(Node::from_json(
            &z5("Z525", [z6(format!("Invalid language code: {code}"))]),
            &None,
        )),
    }
}
