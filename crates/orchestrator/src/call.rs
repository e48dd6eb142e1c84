//! `execute`: binding a call's arguments, choosing an implementation and running it
//! (spec §2.4).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use zeval_zobject::Value;
use zeval_zobject::build::z6;
use zeval_zobject::ident::{is_built_in_type, local_key};

use crate::code::{ImplementationInfo, ImplementationPolicy, RunOutcome};
use crate::engine::{Engine, Env, Fail, R, arg_name, z507};
use crate::frame::{ArgState, Frame};
use crate::node::{EntriesByKey, Node, Obj, STACK_RED_ZONE, STACK_SEGMENT};

/// One bound argument: its declared name, the expression given for it and its declared type.
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) expr: Node,
    pub(crate) declared: Node,
}

/// What an implementation is.
#[derive(Clone)]
pub(crate) enum Kind {
    BuiltIn(String),
    Composition,
    Evaluated,
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::BuiltIn(_) => "BuiltIn",
            Kind::Composition => "Composition",
            Kind::Evaluated => "Evaluated",
        }
    }
}

/// One implementation of the function being called.
pub(crate) struct Implementation {
    pub(crate) node: Node,
    pub(crate) zid: Option<String>,
    pub(crate) kind: Kind,
}

/// What executing a call gave.
pub(crate) enum Step {
    /// The call's result.
    Done(Env),
    /// A call in tail position: its result is what resolving `node` gives (a composition's
    /// body, the branch If chose), deeply evaluated when `deep` (If's result is). The caller
    /// resolves it in its own loop, so a recursion through tail calls takes no stack and
    /// no call level per step.
    Continue { node: Node, deep: bool },
}

/// The arguments an implementation runs with.
enum Arguments<'a> {
    /// A code implementation's, evaluated ([`Engine::code_arguments`]).
    Evaluated(&'a [(String, Node)]),
    /// A frame the others read theirs from as they need them ([`Engine::bound_frame`]).
    Read(Rc<Frame>),
}

impl Engine<'_> {
    /// Executes a function call. `top` adds implementation metadata and checks the return
    /// type; `internals` is the original's `resolveInternals`.
    pub(crate) fn execute(&self, call: &Node, top: bool, internals: bool) -> R<Env> {
        let step = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.execute_level(call, top, internals, false)
        })?;
        match step {
            Step::Done(env) => Ok(env),
            Step::Continue { node, deep } => {
                let value = self.resolve(&node, false, true)?;
                let value = if deep {
                    self.deep_evaluate(&value)?
                } else {
                    value
                };
                Ok(Env::ok(value))
            }
        }
    }

    /// Executes a call whose result the caller resolves further with `resolve(_, false,
    /// true)`, as a composition's body and If's branch are: a composition or If below the
    /// top answers [`Step::Continue`] instead of resolving in a nested level.
    pub(crate) fn execute_step(&self, call: &Node) -> R<Step> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.execute_level(call, false, true, true)
        })
    }

    fn execute_level(&self, call: &Node, top: bool, internals: bool, tail: bool) -> R<Step> {
        let _level = self.enter()?;
        if !internals
            && call.is_call_to("Z881")
            && let Some(item) = call.get("Z881K1")
        {
            return Ok(Step::Done(Env::ok(crate::types::list_type_z4(
                call,
                item.clone(),
            ))));
        }
        // Only a stored function's implementations are ranked, and only their runs teach the
        // ranking: a function given inline (or computed) names any implementations it likes,
        // under any Z8K5, as many times as it likes, so one anonymous request could record
        // thousands of failures (or fast runs) for another function's implementation, and
        // fill the ranking's memory with orders of lists it made up.
        let called_by_reference = call.get("Z7K1").and_then(Node::ref_zid).map(str::to_owned);
        let ranked = called_by_reference.is_some();
        let function = self.function_of(call)?;
        let bindings = self.bind_arguments(call, &function)?;
        let implementations = self.implementations(&function)?;
        let implementations = match implementations {
            Ok(list) => list,
            Err(not_an_implementation) if top => {
                let declared = function
                    .get("Z8K2")
                    .cloned()
                    .unwrap_or_else(|| Node::z9("Z1"));
                return match self.check_type(&not_an_implementation, &declared, "Z517") {
                    Ok(()) => Ok(Step::Done(Env::ok(not_an_implementation))),
                    Err(Fail::Error(e)) => Ok(Step::Done(Env {
                        value: Node::void(),
                        meta: Some(crate::metadata::set(None, "errors", e)),
                    })),
                    Err(other) => Err(other),
                };
            }
            Err(not_an_implementation) => return Ok(Step::Done(Env::ok(not_an_implementation))),
        };
        let function_zid = function
            .get("Z8K5")
            .and_then(Node::ref_zid)
            .unwrap_or_default()
            .to_string();
        // A function given inline is still the function its `Z8K5` names, for what depends
        // on that: `[cache] uncacheable` names functions, and an inline call of one was kept
        // in the result cache for 30 days.
        if !function_zid.is_empty() && called_by_reference.as_deref() != Some(&function_zid) {
            self.resolver.record(&function_zid);
        }
        if implementations.is_empty() {
            return z507(format!(
                "Could not find any implementations for {function_zid}."
            ));
        }
        let infos: Vec<ImplementationInfo> = implementations
            .iter()
            .map(|i| ImplementationInfo {
                zid: i.zid.clone(),
                kind: i.kind.label(),
            })
            .collect();
        let mut last_failure = None;
        let mut refusals = Vec::new();
        let falls_through = self.selector.falls_through();
        // With a selector that falls through: the first code implementation that answered an
        // error, kept for the answer in case no later implementation succeeds.
        let mut held_failure: Option<(usize, R<Env>)> = None;
        let mut inline_signature_verdict: Option<Result<(), String>> = None;
        // The arguments code implementations get, evaluated at the first of them to run.
        let mut code_arguments: Option<Vec<(String, Node)>> = None;
        let mut arguments_failed = false;
        // The function is the stored one its identity names only when it was called by that
        // name: given inline, or stored under another ZID (or fetched) with its `Z8K5`
        // naming another function, it declares a signature of its own.
        let its_own_signature = called_by_reference.as_deref() == Some(function_zid.as_str());
        // Called by its own identity, the function runs under the signature this request read:
        // the policy decides whether that copy may run (one older than the store's may
        // declare another signature than approvals are checked against).
        let own_signature_verdict = match self.policy {
            Some(policy) if its_own_signature => {
                Some(self.signature_allowed_as_read(policy, &function_zid, &function)?)
            }
            _ => None,
        };
        let order = if ranked {
            self.selector
                .order_within(&function_zid, &infos, self.deadline())
        } else {
            (0..infos.len()).collect()
        };
        for index in order {
            let Some(implementation) = implementations.get(index) else {
                continue;
            };
            // A function given inline runs stored implementations under the signature it
            // declares: the policy decides whether that may differ from the stored
            // function's (new argument names made an approved C implementation compile
            // again at every call, for anonymous callers). Built-ins too: a function stored
            // under one ZID whose `Z8K5` names a built-in function ran that built-in under
            // a signature of its own. Asked before `allows`, which a policy may take as the
            // implementation's turn (the playground's planner does).
            if let Some(policy) = self.policy
                && !its_own_signature
            {
                let verdict = match &inline_signature_verdict {
                    Some(verdict) => verdict,
                    None => {
                        let verdict = with_room_for_stored_objects(|| -> R<_> {
                            let signature = inline_signature(&function)?;
                            let verdict = policy.allows_signature(&function_zid, &signature);
                            zeval_zobject::depth::drop_iteratively(signature);
                            Ok(verdict)
                        })?;
                        inline_signature_verdict.insert(verdict)
                    }
                };
                if let Err(why) = verdict {
                    if policy.could_not_check() {
                        self.note_unchecked();
                    }
                    if !refusals.contains(why) {
                        refusals.push(why.clone());
                    }
                    continue;
                }
            }
            if let Some(Err(why)) = &own_signature_verdict {
                if self.policy.is_some_and(|policy| policy.could_not_check()) {
                    self.note_unchecked();
                }
                if !refusals.contains(why) {
                    refusals.push(why.clone());
                }
                continue;
            }
            if let Some(policy) = self.policy
                && let Err(why) = match infos[index].zid.as_deref() {
                    Some(zid) => self.allowed_as_read(policy, zid, &implementation.node)?,
                    None => Ok(()),
                }
                .and_then(|()| policy.allows(&function_zid, &infos[index]))
            {
                if policy.could_not_check() {
                    self.note_unchecked();
                }
                refusals.push(why);
                continue;
            }
            // Only an outcome nobody looks at may be left to the caller: not at the top
            // (metadata, return check), not when the selector learns from it.
            let tail_here = tail
                && !top
                && (infos.len() == 1 || matches!(implementation.kind, Kind::BuiltIn(_)));
            // Code gets its arguments evaluated before its time starts, once for all the
            // function's code implementations: an argument that fails (a wrong type, an error
            // of a call inside it) is the caller's doing, and every implementation would get
            // the same. Evaluated inside each run, it counted as that implementation's failure,
            // and its time as the implementation's, so anonymous calls with a bad argument
            // ranked another function's implementations down for every caller.
            let mut failed_argument = None;
            if matches!(implementation.kind, Kind::Evaluated) && code_arguments.is_none() {
                if arguments_failed {
                    continue;
                }
                match self.code_arguments(&bindings) {
                    Ok(arguments) => code_arguments = Some(arguments),
                    Err(fail) => {
                        arguments_failed = true;
                        failed_argument = Some(fail);
                    }
                }
            }
            // Only a choice is worth measuring: a function with one implementation (a
            // tester's call is narrowed to one) teaches the selector nothing. Nor does a run
            // under another function: its figures are the implementation's (for the function
            // it implements), and another function stored to list it (under its own ZID, or
            // naming the implemented function as its identity with a signature of its own)
            // ran it under arguments it was never written for, and ranked it down for every
            // caller of its own function (until 2026-12-06).
            let may_observe = ranked
                && its_own_signature
                && implementation.node.get("Z14K1").and_then(Node::ref_zid)
                    == Some(function_zid.as_str())
                && infos.len() > 1
                && !matches!(implementation.kind, Kind::BuiltIn(_))
                && infos[index].zid.is_some();
            // Compositions and built-ins read their arguments as they go, in a frame that
            // notes whether one failed, and how long reading them took (the caller's time, not
            // the run's).
            let frame = match implementation.kind {
                Kind::Evaluated => None,
                _ => Some(self.bound_frame(implementation, &bindings)),
            };
            let code_arguments_failed = failed_argument.is_some();
            let started = Instant::now();
            let outcome = match failed_argument {
                Some(fail) => Err(fail),
                None => match self.run_implementation(
                    &function,
                    implementation,
                    &bindings,
                    match &frame {
                        Some(frame) => Arguments::Read(frame.clone()),
                        None => Arguments::Evaluated(code_arguments.as_deref().unwrap_or_default()),
                    },
                    tail_here,
                    top,
                ) {
                    Ok(Step::Done(env)) => Ok(env),
                    Ok(continued) => return Ok(continued),
                    Err(fail) => Err(fail),
                },
            };
            let argument_failed = code_arguments_failed
                || frame
                    .as_ref()
                    .is_some_and(|frame| frame.had_failed_argument());
            let error = match &outcome {
                Ok(env) => env.error(),
                Err(Fail::Error(e)) => Some(e),
                _ => None,
            };
            // Code that used its whole time limit while the request still has time: its own
            // doing (an endless loop, say), a failure like any other, that falls through and
            // counts against it. Taken for the request's limit, it was ranked a success of
            // the limit's length and kept first, and every caller waited for it to fail. A
            // composition whose call ended so has failed too, as with any other error of a
            // call it makes (compositions do not fall through).
            let own_time_limit = !matches!(implementation.kind, Kind::BuiltIn(_))
                && error.is_some_and(zeval_zobject::error::is_plain_timeout)
                && !self.remaining().is_zero();
            // The request's own budget or deadline ran out (perhaps in a nested call), or the
            // server's load stopped the code: no other implementation would fare better, so
            // such an error neither falls through nor counts against the implementation.
            let request_limit = !own_time_limit && error.is_some_and(is_request_limit);
            // No evaluator answered (unreachable, busy, no process free): the load's, not the
            // implementation's. An evaluator that does not run the language at all is a
            // lasting fact about the implementation here.
            let load_failure = match &outcome {
                Err(Fail::Evaluator(message)) => !crate::code::is_missing_evaluator(message),
                _ => error.is_some_and(zeval_zobject::error::is_no_executor),
            };
            // A Z558 depends on the load whatever it says: "… every executor was busy …",
            // "… while every executor held a long call …" and "… other calls held the CPUs …"
            // say that the load stopped the code; the plain one, the code's own wall time,
            // may have been shortened by other calls or not.
            let timed_out =
                error.is_some_and(|error| zeval_zobject::error::error_code(error) == Some("Z558"));
            if load_failure
                || (timed_out && !error.is_some_and(zeval_zobject::error::is_plain_timeout))
            {
                self.note_load();
            } else if timed_out {
                self.note_timeout();
            }
            let failed = match &outcome {
                _ if request_limit => false,
                Ok(_) | Err(Fail::Error(_)) => error.is_some(),
                Err(Fail::Evaluator(_)) => true,
                // Out of time or a crash of the request: not this implementation's doing.
                Err(_) => false,
            };
            // Nor does a run the request's limits or the load stopped teach the selector: it
            // was neither a failure nor a success of the limit's length.
            let observed = may_observe
                && !argument_failed
                && !request_limit
                && !load_failure
                // A crash is the request's (its depth limit, say), not a run to learn from.
                && !matches!(outcome, Err(Fail::Timeout | Fail::Crash(_)));
            if observed {
                // A composition reads its arguments as it goes, inside its run: their time is
                // the caller's, as code's (evaluated before its run) is. Counted, an anonymous
                // caller who passed a slow argument made the composition look as slow, for
                // every caller's ranking (until 2026-12-07).
                let arguments = frame.as_ref().map_or(Duration::ZERO, |f| f.argument_time());
                let run = RunOutcome {
                    duration: started.elapsed().saturating_sub(arguments),
                    failed,
                };
                self.selector.observe(&function_zid, &infos[index], &run);
            }
            if falls_through
                && failed
                && matches!(implementation.kind, Kind::Evaluated)
                && !matches!(outcome, Err(Fail::Evaluator(_)))
            {
                if held_failure.is_none() {
                    held_failure = Some((index, outcome));
                }
                continue;
            }
            match outcome {
                Err(Fail::Evaluator(message)) => last_failure = Some(message),
                outcome => {
                    return self
                        .answer(outcome, &function, implementation, top)
                        .map(Step::Done);
                }
            }
        }
        if let Some((index, outcome)) = held_failure {
            return self
                .answer(outcome, &function, &implementations[index], top)
                .map(Step::Done);
        }
        if last_failure.is_none() && !refusals.is_empty() {
            let why = format!(
                "No implementation of {function_zid} may run: {}",
                refusals.join("; ")
            );
            let error = zeval_zobject::error::z5("Z559", [z6(why)]);
            if top {
                let env = Env {
                    value: Node::void(),
                    meta: Some(crate::metadata::set(None, "errors", error)),
                };
                return Ok(Step::Done(env));
            }
            return Err(Fail::Error(error));
        }
        match last_failure {
            Some(message) => z507(message),
            None => z507(format!(
                "Could not find any implementations for {function_zid}."
            )),
        }
    }

    /// Resolves `Z7K1` to a Z8 (ephemerally).
    pub(crate) fn function_of(&self, call: &Node) -> R<Node> {
        let Some(z7k1) = call.get("Z7K1") else {
            return z507("Could not dereference Z7K1");
        };
        match self.resolve(z7k1, false, true) {
            Ok(f) if f.is_type("Z8") => Ok(f),
            // The request's own limits are not the function's fault: they stay what they are.
            Err(Fail::Error(e)) if is_request_limit(&e) => Err(Fail::Error(e)),
            Ok(_) | Err(Fail::Error(_)) => z507("Could not dereference Z7K1"),
            Err(other) => Err(other),
        }
    }

    /// The declared arguments of a function: `(name, declared type)`.
    pub(crate) fn declarations(&self, function: &Node) -> R<Vec<(String, Node)>> {
        let Some(z8k1) = function.get("Z8K1") else {
            return z507("Could not dereference Z8K1");
        };
        let list = match self.resolve(z8k1, false, false) {
            Ok(l) => l,
            Err(Fail::Error(e)) if is_request_limit(&e) => return Err(Fail::Error(e)),
            Err(Fail::Error(_)) => return z507("Could not dereference Z8K1"),
            Err(other) => return Err(other),
        };
        let Some(items) = list.list_items() else {
            return z507("Could not dereference Z8K1");
        };
        let mut out = Vec::with_capacity(items.len());
        for declaration in items {
            let name = declaration.get("Z17K2").map(arg_name).unwrap_or_default();
            let declared = declaration
                .get("Z17K1")
                .cloned()
                .unwrap_or_else(|| Node::z9("Z1"));
            out.push((name, declared));
        }
        Ok(out)
    }

    /// Argument binding (`getArgumentStates`), with the original's Z507 messages.
    fn bind_arguments(&self, call: &Node, function: &Node) -> R<Vec<Binding>> {
        let declarations = self.declarations(function)?;
        let mut bindings = Vec::with_capacity(declarations.len());
        let entries = EntriesByKey::of(call);
        let mut used = vec![false; entries.entries().len()];
        for (name, declared) in declarations {
            // A step each: the declarations may be many.
            self.check_time()?;
            let local = local_key(&name).unwrap_or(&name);
            let Some(position) = entries.position(&name).or_else(|| entries.position(local)) else {
                return z507(format!("Could not find argument {name}."));
            };
            let expr = entries.entry(position).1.clone();
            let declared = match declared.ref_zid() {
                Some(zid) if !is_built_in_type(zid) => self.resolve(&declared, false, false)?,
                _ => declared,
            };
            used[position] = true;
            bindings.push(Binding {
                name,
                expr,
                declared,
            });
        }
        for (key, _) in entries.entries() {
            let bound = entries.position(key).is_some_and(|first| used[first]);
            if &**key != "Z1K1" && &**key != "Z7K1" && !bound {
                return z507(format!("Invalid key for function call: {key}."));
            }
        }
        Ok(bindings)
    }

    /// The implementations of `Z8K4`, classified; or, when an element is not an
    /// implementation at all, that element (which the original returns as the result).
    fn implementations(&self, function: &Node) -> R<Result<Vec<Implementation>, Node>> {
        let Some(z8k4) = function.get("Z8K4") else {
            return Ok(Ok(Vec::new()));
        };
        let list = self.resolve(z8k4, false, false)?;
        let items = list.list_items().unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let zid = item.ref_zid().map(str::to_string);
            let node = self.resolve(&item, false, false)?;
            let kind = if let Some(builtin) = node.get("Z14K4") {
                let id = builtin
                    .string_value()
                    .or_else(|| builtin.ref_zid())
                    .unwrap_or_default();
                Kind::BuiltIn(id.to_string())
            } else if node.get("Z14K2").is_some() {
                Kind::Composition
            } else if node.get("Z14K3").is_some() {
                Kind::Evaluated
            } else {
                return Ok(Err(node));
            };
            out.push(Implementation { node, zid, kind });
        }
        Ok(Ok(out))
    }

    /// [`ImplementationPolicy::allows_as_read`] for stored implementation `zid`, as this
    /// request read it (`implementation`): asked once per request and ZID.
    fn allowed_as_read(
        &self,
        policy: &dyn ImplementationPolicy,
        zid: &str,
        implementation: &Node,
    ) -> R<Result<(), String>> {
        self.asked_once(
            policy,
            &self.verdicts_as_read,
            zid,
            || implementation.to_passing_json(),
            |read| policy.allows_as_read(zid, read),
        )
    }

    /// [`ImplementationPolicy::allows_signature_as_read`] for `function`, called by its own
    /// identity `function_zid`, as this request read it: asked once per request and ZID.
    fn signature_allowed_as_read(
        &self,
        policy: &dyn ImplementationPolicy,
        function_zid: &str,
        function: &Node,
    ) -> R<Result<(), String>> {
        self.asked_once(
            policy,
            &self.signature_verdicts_as_read,
            function_zid,
            || inline_signature(function),
            |signature| policy.allows_signature_as_read(function_zid, signature),
        )
    }

    /// The policy's verdict on what this request read of `zid`, made (`ask` of what `read`
    /// gives, with room on the stack) once per request and kept in `verdicts`; none asked
    /// of a policy that checks no reads.
    fn asked_once(
        &self,
        policy: &dyn ImplementationPolicy,
        verdicts: &std::cell::RefCell<std::collections::HashMap<String, Result<(), String>>>,
        zid: &str,
        read: impl FnOnce() -> R<Value>,
        ask: impl FnOnce(&Value) -> Result<(), String>,
    ) -> R<Result<(), String>> {
        if !policy.checks_reads() {
            return Ok(Ok(()));
        }
        if let Some(verdict) = verdicts.borrow().get(zid) {
            return Ok(verdict.clone());
        }
        let verdict = with_room_for_stored_objects(|| -> R<_> {
            let read = read()?;
            let verdict = ask(&read);
            zeval_zobject::depth::drop_iteratively(read);
            Ok(verdict)
        })?;
        verdicts
            .borrow_mut()
            .insert(zid.to_owned(), verdict.clone());
        Ok(verdict)
    }

    /// A frame binding `bindings`, unevaluated, for `implementation` to read them from.
    fn bound_frame(&self, implementation: &Implementation, bindings: &[Binding]) -> Rc<Frame> {
        let frame = self.new_frame(implementation.node.scope());
        for b in bindings {
            frame.set(
                &b.name,
                ArgState::Unevaluated {
                    expr: b.expr.clone(),
                    declared: b.declared.clone(),
                },
            );
        }
        frame
    }

    /// Runs one implementation; with `tail`, a composition or If leaves the resolution of
    /// its result to the caller ([`Step::Continue`]). `top` is the request's own call, whose
    /// answer carries the implementation's metadata. A code implementation gets
    /// [`Arguments::Evaluated`]; the others [`Arguments::Read`].
    fn run_implementation(
        &self,
        function: &Node,
        implementation: &Implementation,
        bindings: &[Binding],
        arguments: Arguments<'_>,
        tail: bool,
        top: bool,
    ) -> R<Step> {
        let (scope, code_arguments) = match arguments {
            Arguments::Read(frame) => (Some(frame), &[][..]),
            Arguments::Evaluated(code_arguments) => (None, code_arguments),
        };
        match &implementation.kind {
            Kind::Composition => {
                let body = implementation
                    .node
                    .get("Z14K2")
                    .cloned()
                    .unwrap_or_else(Node::void);
                let body = body.rescoped(&scope)?;
                if tail {
                    return Ok(Step::Continue {
                        node: body,
                        deep: false,
                    });
                }
                let value = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.resolve(&body, false, true)
                })?;
                Ok(Step::Done(Env::ok(value)))
            }
            Kind::BuiltIn(id) => {
                let lazy = crate::builtins::lazy_parameters(id);
                let mut names: Vec<&str> = bindings.iter().map(|b| b.name.as_str()).collect();
                names.sort_unstable();
                let mut args = Vec::with_capacity(names.len());
                for name in names {
                    args.push(self.retrieve_argument(&scope, name, lazy.contains(&name))?);
                }
                let env = crate::builtins::run(self, id, function, args)?;
                if !crate::builtins::lazy_return(id) {
                    return Ok(Step::Done(env));
                }
                let value = env.into_value()?;
                if tail {
                    return Ok(Step::Continue {
                        node: value,
                        deep: true,
                    });
                }
                let value = self.resolve(&value, false, true)?;
                Ok(Step::Done(Env::ok(self.deep_evaluate(&value)?)))
            }
            Kind::Evaluated => {
                // Below the top only a call's value or error is read (`Env::into_value`,
                // `Env::error`): its metadata never reaches the answer.
                let value_only = self.is_value_only() || !top;
                self.run_code(function, &implementation.node, code_arguments, value_only)
                    .map(Step::Done)
            }
        }
    }

    /// The arguments a code implementation gets: each binding evaluated and checked against
    /// its declared type.
    fn code_arguments(&self, bindings: &[Binding]) -> R<Vec<(String, Node)>> {
        bindings
            .iter()
            .map(|b| Ok((b.name.clone(), self.process_argument(&b.expr, &b.declared)?)))
            .collect()
    }

    /// What a call answers once `implementation` ran: at the top level an error becomes the
    /// Z22's error with the implementation's metadata; below it, errors propagate.
    fn answer(
        &self,
        outcome: R<Env>,
        function: &Node,
        implementation: &Implementation,
        top: bool,
    ) -> R<Env> {
        match outcome {
            Err(Fail::Error(e)) if top => {
                let env = Env {
                    value: Node::void(),
                    meta: Some(crate::metadata::set(None, "errors", e)),
                };
                self.finish_top_level(env, function, implementation)
            }
            Ok(env) if top => self.finish_top_level(env, function, implementation),
            other => other,
        }
    }

    /// Top-level only: implementation metadata, dangling argument references, the return
    /// check (spec §2.4 step 7).
    fn finish_top_level(
        &self,
        env: Env,
        function: &Node,
        implementation: &Implementation,
    ) -> R<Env> {
        // Moved, not cloned: code's metadata map is the evaluator's whole report, and a copy
        // of it was about 2 % of `zeval bench library`'s server CPU (2026-12-05).
        let mut meta = env.meta;
        let id = match &implementation.kind {
            Kind::BuiltIn(id) => Some(id.clone()),
            _ => implementation.zid.clone(),
        };
        let mut metadata: Vec<(&str, Value)> = Vec::new();
        if let Some(id) = id {
            metadata.push(("implementationId", z6(id)));
        }
        metadata.push(("implementationType", z6(implementation.kind.label())));
        for (k, v) in metadata {
            meta = Some(crate::metadata::set(meta, k, v));
        }
        let env = Env {
            value: env.value,
            meta,
        };
        let has_error = env.error().is_some();
        let is_void = is_void_node(&env.value);
        if has_error && !is_void {
            return Ok(with_error(
                env,
                zeval_zobject::error::z5_str(
                    "Z526",
                    &["Function evaluation returned both a value and an error."],
                ),
            ));
        }
        if has_error {
            return Ok(env);
        }
        if is_void {
            return Ok(with_error(
                env,
                zeval_zobject::error::z5_str(
                    "Z526",
                    &["Function evaluation returned an empty object."],
                ),
            ));
        }
        let value = self.replace_dangling(&env.value, &mut HashMap::new())?;
        let declared = function
            .get("Z8K2")
            .cloned()
            .unwrap_or_else(|| Node::z9("Z1"));
        match self.check_type(&value, &declared, "Z517") {
            Ok(()) => Ok(Env {
                value,
                meta: env.meta,
            }),
            Err(Fail::Error(e)) => Ok(Env {
                value: Node::void(),
                meta: Some(crate::metadata::set(None, "errors", e)),
            }),
            Err(other) => Err(other),
        }
    }

    /// Replaces argument references left in a top-level result by their values, where they
    /// are bound; references, calls and generic instances are left alone.
    ///
    /// A result may share subtrees (a list of one value twice, forty levels deep, is small
    /// but stands for 2^40 nodes): each shared object is rewritten once (`done`), so the walk
    /// costs what the value holds, and every node is a step of the request's budget.
    fn replace_dangling(&self, node: &Node, done: &mut HashMap<*const Obj, Node>) -> R<Node> {
        let Some(obj) = node.as_obj() else {
            return Ok(node.clone());
        };
        let identity: *const Obj = obj;
        if let Some(replaced) = done.get(&identity) {
            return Ok(replaced.clone());
        }
        crate::budget::step()?;
        let replaced = self.replace_dangling_in(node, obj, done)?;
        done.insert(identity, replaced.clone());
        Ok(replaced)
    }

    fn replace_dangling_in(
        &self,
        node: &Node,
        obj: &Obj,
        done: &mut HashMap<*const Obj, Node>,
    ) -> R<Node> {
        if node.is_type("Z18") {
            let name = node.get("Z18K1").map(arg_name).unwrap_or_default();
            return Ok(match node.scope().and_then(|f| f.lookup(&name)) {
                Some(ArgState::Evaluated(v)) => v,
                Some(ArgState::Unevaluated { expr, .. }) => expr,
                _ => node.clone(),
            });
        }
        let mut entries = Vec::with_capacity(obj.entries.len());
        for (k, v) in &obj.entries {
            let v = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                self.replace_dangling(v, done)
            })?;
            entries.push((k.clone(), v));
        }
        Ok(Node::object(entries, obj.scope.clone()))
    }
}

/// Runs `work`, which reads, copies, compares or drops stored objects, with room on the stack
/// for one as deep as the parser allows (the store bounds them at 1,000 levels as stored, and
/// their normal forms are deeper): a policy's check may first be made at the bottom of a deep
/// recursion, on what is left of a stack segment. The orchestrator asks
/// [`ImplementationPolicy::allows_as_read`] and `allows_signature_as_read` (once per request
/// and implementation or function) and `allows_signature` (once per call of a function not
/// called by its own identity) within it. [`ImplementationPolicy::allows`], asked at every
/// call, is not wrapped: a policy whose `allows` reads or compares stored objects the first
/// time (an approval's pinned types) calls this itself.
pub fn with_room_for_stored_objects<T>(work: impl FnOnce() -> T) -> T {
    crate::budget::with_room_for_json_levels(zeval_zobject::json::MAX_DEPTH, work)
}

/// The signature of `function` (a Z8) as [`crate::ImplementationPolicy::allows_signature`]
/// is given it.
fn inline_signature(function: &Node) -> R<Value> {
    let mut z8 = zeval_zobject::Map::new();
    for key in ["Z8K1", "Z8K2"] {
        if let Some(part) = function.get(key) {
            z8.insert(
                key.into(),
                zeval_zobject::canonicalize::canonicalize_normal(&part.to_json()?),
            );
        }
    }
    Ok(crate::code::signature_of(&Value::Object(z8)))
}

fn with_error(env: Env, error: Value) -> Env {
    Env {
        value: env.value,
        meta: Some(crate::metadata::set(env.meta, "errors", error)),
    }
}

/// Whether `error` is one of the request's limits: Z590 "Request budget exceeded" or Z558
/// "Function call timed out".
fn is_request_limit(error: &Value) -> bool {
    matches!(
        zeval_zobject::error::error_code(error),
        Some("Z590" | "Z558")
    )
}

/// Whether a node is void (Z24 or a Z21 instance).
pub(crate) fn is_void_node(node: &Node) -> bool {
    node.ref_zid() == Some("Z24") || node.is_type("Z21")
}
