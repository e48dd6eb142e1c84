//! The built-in implementations Z901–Z999 and the type validators Z201–Z299 (spec §2.6).
//!
//! Each builtin receives its arguments already evaluated (except If's branches), sorted by
//! argument name, and returns an envelope. Objects a builtin builds live in the empty scope;
//! argument values keep theirs.

mod data;
mod lists;
mod meta;
mod validators;

use zeval_zobject::build::z6;

use crate::engine::{Engine, Env, Fail, R, error, z507};
use crate::node::Node;

/// Parameters a builtin takes unevaluated (only If's branches).
pub(crate) fn lazy_parameters(id: &str) -> &'static [&'static str] {
    match id {
        "Z902" => &["Z802K2", "Z802K3"],
        _ => &[],
    }
}

/// Whether the builtin's result is evaluated after it returns (only If).
pub(crate) fn lazy_return(id: &str) -> bool {
    id == "Z902"
}

/// Runs builtin `id` on `args` (sorted by argument name).
pub(crate) fn run(engine: &Engine<'_>, id: &str, function: &Node, args: Vec<Node>) -> R<Env> {
    engine.note_builtin(id);
    let arg = |i: usize| -> R<&Node> {
        args.get(i)
            .ok_or_else(|| Fail::Crash(format!("builtin {id} is missing argument {}", i + 1)))
    };
    let value = match id {
        "Z901" => arg(0)?.clone(),
        "Z999" => arg(0)?.get("Z99K1").cloned().unwrap_or_else(Node::void),
        "Z902" => {
            let condition = arg(0)?;
            if condition.get("Z40K1").and_then(Node::ref_zid) == Some("Z41") {
                arg(1)?.clone()
            } else {
                arg(2)?.clone()
            }
        }
        "Z903" => data::value_by_key(arg(0)?, arg(1)?)?,
        "Z904" => data::values_by_keys(arg(0)?, arg(1)?)?,
        "Z905" => data::reify(arg(0)?)?,
        "Z908" => data::abstract_value(arg(0)?)?,
        "Z910" => lists::prepend(arg(0)?, arg(1)?),
        "Z911" => lists::head(arg(0)?)?,
        "Z912" => lists::tail(arg(0)?)?,
        "Z913" => Node::boolean(arg(0)?.get("K1").is_none()),
        "Z920" => return meta::trigger_metadata(arg(0)?, arg(1)?),
        "Z921" => arg(0)?.get("K1").cloned().unwrap_or_else(Node::void),
        "Z922" => arg(0)?.get("K2").cloned().unwrap_or_else(Node::void),
        "Z923" => meta::envelope(engine, arg(0)?)?,
        "Z928" => return meta::fetch(engine, arg(0)?),
        "Z931" => meta::validate_against_schema(engine, arg(0)?, arg(1)?)?,
        "Z944" => Node::boolean(
            arg(0)?.get("Z40K1").and_then(Node::ref_zid)
                == arg(1)?.get("Z40K1").and_then(Node::ref_zid),
        ),
        "Z960" => meta::language(engine, arg(0)?)?,
        "Z966" => Node::boolean(arg(0)?.string_value() == arg(1)?.string_value()),
        "Z968" => lists::code_points(arg(0)?)?,
        "Z981" => crate::types::list_type_z4(&itself(function, &args, "Z881"), arg(0)?.clone()),
        "Z982" => crate::types::pair_type_z4(
            &itself(function, &args, "Z882"),
            arg(0)?.clone(),
            arg(1)?.clone(),
        ),
        "Z983" => {
            let key_type = arg(0)?;
            let identity = crate::types::identity(key_type);
            if !matches!(identity.ref_zid(), Some("Z6" | "Z39")) {
                return error("Z516", [z6("Z883K1"), key_type.quoted_json()?]);
            }
            crate::types::map_type_z4(
                &itself(function, &args, "Z883"),
                key_type.clone(),
                arg(1)?.clone(),
            )
        }
        "Z986" => lists::code_points_to_string(arg(0)?)?,
        "Z988" => Node::boolean(code_point(arg(0)?) == code_point(arg(1)?)),
        "Z989" => lists::list_equality(engine, arg(0)?, arg(1)?, arg(2)?)?,
        other => match validators::run(engine, other, &args)? {
            Some(value) => value,
            None => {
                return Err(Fail::Crash(format!(
                    "TypeError: builtin {other} does not exist"
                )));
            }
        },
    };
    Ok(Env::ok(value))
}

/// The call `Z88x(args…)` a generic type function returns as its type's identity.
fn itself(function: &Node, args: &[Node], zid: &str) -> Node {
    let names: Vec<String> = (1..=args.len()).map(|i| format!("{zid}K{i}")).collect();
    let _ = function;
    crate::node::call_node(
        zid,
        names
            .iter()
            .map(String::as_str)
            .zip(args.iter().cloned())
            .collect(),
    )
}

fn code_point(node: &Node) -> Option<&str> {
    node.get("Z86K1").and_then(Node::string_value)
}

/// A Z507 for builtins that reject their input.
pub(crate) fn reject<T>(message: String) -> R<T> {
    z507(message)
}

/// The finding of built-in validator `id` on `subject` (static validation).
pub(crate) fn check_validator(
    engine: &Engine<'_>,
    id: &str,
    subject: &Node,
) -> R<Option<zeval_zobject::Value>> {
    validators::check(engine, id, subject)
}
