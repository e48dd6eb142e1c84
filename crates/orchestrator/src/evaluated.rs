//! Running a code implementation through the evaluator registered for its language
//! (spec §2.7).

use zeval_zobject::Value;
use zeval_zobject::build::{obj, typed_list, z9};
use zeval_zobject::depth::drop_iteratively;

use crate::code::CodeCall;
use crate::engine::{Engine, Env, Fail, R};
use crate::node::Node;

impl Engine<'_> {
    /// Builds the evaluator request for `implementation` and runs it. An unusable evaluator
    /// is a [`Fail::Evaluator`], so the next implementation is tried. `value_only`: nothing
    /// of the answer's metadata but its error will be read ([`CodeCall::value_only`]).
    pub(crate) fn run_code(
        &self,
        function: &Node,
        implementation: &Node,
        args: &[(String, Node)],
        value_only: bool,
    ) -> R<Env> {
        let code = match implementation.get("Z14K3") {
            Some(c) => self.resolve(c, false, false)?,
            None => return Err(Fail::Evaluator("The implementation has no code.".into())),
        };
        let language_node = match code.get("Z16K1") {
            Some(l) if l.ref_zid().is_some() => self.resolve(l, true, false)?,
            Some(l) => l.clone(),
            None => Node::void(),
        };
        let language = language_node
            .get("Z61K1")
            .and_then(Node::string_value)
            .unwrap_or_default()
            .to_string();
        let source = match code.get("Z16K2") {
            Some(s) => self.resolve(s, false, false)?,
            None => Node::z6(""),
        };
        let source_text = source.string_value().unwrap_or_default().to_string();
        let function_name = function
            .get("Z8K5")
            .and_then(Node::ref_zid)
            .unwrap_or_default()
            .to_string();
        let Some(evaluator) = self.orchestrator.evaluators.get(&language) else {
            return Err(Fail::Evaluator(format!(
                "{} {language}",
                crate::code::NO_EVALUATOR_FOR
            )));
        };
        // The evaluator writes the arguments as JSON and reads its answer on this thread,
        // each recursing once per level, and a value may be as deep as the budget allows; so
        // do making the arguments' JSON, copying it into the function call, and dropping it
        // (also where a step fails). Deep in a recursion (whose own walks grow the stack in
        // segments) less than that may be left: all of it then runs on a segment with room
        // for it. Without, a JavaScript call at the bottom of a recursion 19,000 deep, with a
        // list of 5,000 items, aborted the server on a stack overflow; and so did the copy
        // for an evaluator that reads the function call (a remote one, C, Rust).
        let answer = crate::budget::with_room_for_deep_json(|| -> R<_> {
            let arguments = args
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.to_json()?)))
                .collect::<R<Vec<(String, Value)>>>()?;
            let zobject = if evaluator.reads_function_call(&language) {
                let resolved_code = code
                    .with("Z16K1", language_node)
                    .with("Z16K2", source)
                    .to_json()?;
                function_call(function, implementation, resolved_code, &arguments)?
            } else {
                Value::Null
            };
            let call = CodeCall {
                language,
                function_name,
                code: source_text,
                arguments,
                zobject,
                remaining_time: self.remaining(),
                value_only,
                client: crate::budget::with_reentry(|counters| counters.client.borrow().clone())
                    .flatten(),
            };
            // The code may call other functions meanwhile, inside this request.
            let mut nested = crate::reentry::EngineCaller { engine: self };
            Ok(evaluator.evaluate_reentrant(&call, &mut nested))
        })?;
        let mut z22 = answer.map_err(|e| Fail::Evaluator(e.0))?;
        let taken = taken_in(&mut z22);
        drop_iteratively(z22);
        taken
    }
}

/// The value and the metadata of an evaluator's answer `z22`: the value read into nodes, the
/// metadata taken out of it.
fn taken_in(z22: &mut Value) -> R<Env> {
    let nothing = |v: &Value| zeval_zobject::build::ref_zid(v) == Some("Z23");
    // What code returns is request data like any other: bounded before it is taken in.
    crate::budget::check_received(z22)?;
    let value = match z22.get("Z22K1") {
        Some(v) if !nothing(v) => Node::from_json(v, &None),
        _ => Node::void(),
    };
    crate::budget::step()?;
    // Taken, not copied: the evaluator's metadata map is most of its answer.
    let meta = match z22.as_object_mut().and_then(|m| m.remove("Z22K2")) {
        Some(m) if !nothing(&m) && !zeval_zobject::build::is_void(&m) => Some(m),
        _ => None,
    };
    Ok(Env { value, meta })
}

/// [`CodeCall::zobject`]: a normal Z7 of `function` with only `implementation` (its code
/// resolved) in `Z8K4`, and the arguments.
fn function_call(
    function: &Node,
    implementation: &Node,
    resolved_code: Value,
    arguments: &[(String, Value)],
) -> R<Value> {
    let mut z14 = implementation.to_json()?;
    z14["Z14K3"] = resolved_code;
    let mut z8 = function.to_json()?;
    let item_type = z8["Z8K4"]["Z1K1"]["Z881K1"].clone();
    z8["Z8K4"] = typed_list(
        if item_type.is_null() {
            z9("Z14")
        } else {
            item_type
        },
        [z14],
    );
    let mut zobject = obj([("Z1K1", z9("Z7")), ("Z7K1", z8)]);
    // A second copy of the arguments (`CodeCall` carries both): charged like the first.
    let mut copy = crate::budget::Materialisation::new();
    for (k, v) in arguments {
        copy.bytes(crate::budget::json_bytes(v))?;
        zobject[k.as_str()] = v.clone();
    }
    Ok(zobject)
}
