//! One orchestration request: its caches, limits and the `resolve` step (spec §2.3).
//!
//! Limits enforced here (both configurable in [`crate::OrchestratorConfig`]):
//! - **call depth**: every nested `execute` counts one level; past `max_depth` the request
//!   fails as the original does when its JavaScript stack overflows (a Z507 around a Z500).
//!   Each level also grows the Rust stack on the heap when it runs low (`stacker`), so the
//!   limit, not the thread's stack size, decides how deep a user's recursion may go;
//! - **deadline**: checked before every step; past it the request answers Z558 "Function
//!   call timed out".

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use zeval_zobject::Value;
use zeval_zobject::build::z6;
use zeval_zobject::error::z5;
use zeval_zobject::ident::is_built_in_type;

use crate::Orchestrator;
use crate::code::{ImplementationPolicy, ImplementationSelector};
use crate::frame::{Frame, Scope};
use crate::node::{Node, STACK_RED_ZONE, STACK_SEGMENT};
use crate::resolver::Resolver;

/// Why a step did not produce a value.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A Z5 (normal form) that propagates as the call's error.
    Error(Value),
    /// What the original reports as a thrown exception: a Z507 around a Z500 at the top.
    Crash(String),
    /// The request's deadline passed.
    Timeout,
    /// An evaluator could not be used; the selector tries the next implementation.
    Evaluator(String),
}

pub(crate) type R<T> = Result<T, Fail>;

/// A typed error as a failure.
pub(crate) fn error<T>(code: &str, args: impl IntoIterator<Item = Value>) -> R<T> {
    Err(Fail::Error(z5(code, args)))
}

/// A Z507 "Error in evaluation" with one message.
pub(crate) fn z507<T>(message: impl Into<String>) -> R<T> {
    error("Z507", [z6(message.into())])
}

/// The result of a call: its value (void on failure) and its metadata (`Z22K2`), which may
/// carry an error.
pub(crate) struct Env {
    pub(crate) value: Node,
    pub(crate) meta: Option<Value>,
}

impl Env {
    pub(crate) fn ok(value: Node) -> Env {
        Env { value, meta: None }
    }

    /// The error the metadata carries, if any.
    pub(crate) fn error(&self) -> Option<&Value> {
        use zeval_zobject::build::{get_metadata, is_map, is_void};
        let meta = self.meta.as_ref()?;
        let err = if is_map(meta) {
            get_metadata(meta, "errors")?
        } else {
            meta
        };
        (!is_void(err)).then_some(err)
    }

    /// The value, or the error as a failure (nested calls keep only these two).
    pub(crate) fn into_value(self) -> R<Node> {
        match self.error() {
            Some(e) => Err(Fail::Error(e.clone())),
            None => Ok(self.value),
        }
    }
}

/// Per-request state.
pub(crate) struct Engine<'o> {
    pub(crate) orchestrator: &'o Orchestrator,
    pub(crate) resolver: Resolver<'o>,
    pub(crate) selector: &'o dyn ImplementationSelector,
    pub(crate) policy: Option<&'o dyn ImplementationPolicy>,
    do_validate: Cell<bool>,
    deadline: Instant,
    depth: Cell<usize>,
    frames: RefCell<Vec<Rc<Frame>>>,
    /// The first nondeterministic built-in that ran (see [`crate::trace`]).
    nondeterministic: Cell<Option<&'o str>>,
}

/// Decrements the depth counter when a level ends.
pub(crate) struct DepthGuard<'a>(&'a Cell<usize>);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl<'o> Engine<'o> {
    pub(crate) fn new(
        orchestrator: &'o Orchestrator,
        selector: &'o dyn ImplementationSelector,
        policy: Option<&'o dyn ImplementationPolicy>,
        do_validate: bool,
        deadline: Instant,
    ) -> Self {
        Engine {
            orchestrator,
            resolver: Resolver::new(orchestrator.source.as_ref(), deadline),
            selector,
            policy,
            do_validate: Cell::new(do_validate),
            deadline,
            depth: Cell::new(0),
            frames: RefCell::new(Vec::new()),
            nondeterministic: Cell::new(None),
        }
    }

    /// Notes that built-in `id` is about to run: a nondeterministic one makes the answer
    /// uncacheable. A scan of a list that is empty today (see [`crate::trace`]).
    pub(crate) fn note_builtin(&self, id: &str) {
        if self.nondeterministic.get().is_none()
            && let Some(listed) = self
                .orchestrator
                .nondeterministic
                .iter()
                .find(|listed| listed.as_str() == id)
        {
            self.nondeterministic.set(Some(listed.as_str()));
        }
    }

    /// The first nondeterministic built-in that ran in this request.
    pub(crate) fn nondeterministic(&self) -> Option<&'o str> {
        self.nondeterministic.get()
    }

    /// Takes over what a request nested in this one (Z823) read and ran.
    pub(crate) fn absorb(&self, nested: &Engine<'o>) {
        for zid in nested.resolver.dependencies() {
            self.resolver.record(&zid);
        }
        if self.nondeterministic.get().is_none() {
            self.nondeterministic.set(nested.nondeterministic.get());
        }
    }

    /// Starts counting depth where `parent` is (for requests nested through Z823).
    pub(crate) fn inherit_depth(&self, parent: &Engine<'_>) {
        self.depth.set(parent.depth.get());
    }

    pub(crate) fn do_validate(&self) -> bool {
        self.do_validate.get()
    }

    /// Runs `f` with validation switched to `on` (type validators run non-validating).
    pub(crate) fn with_validation<T>(&self, on: bool, f: impl FnOnce() -> T) -> T {
        let previous = self.do_validate.replace(on);
        let out = f();
        self.do_validate.set(previous);
        out
    }

    /// When the request's time is up.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Takes one step of the request's budget; fails once the deadline has passed.
    pub(crate) fn check_time(&self) -> R<()> {
        crate::budget::step()?;
        if Instant::now() >= self.deadline {
            Err(Fail::Timeout)
        } else {
            Ok(())
        }
    }

    /// Enters one call level: checks the deadline and the depth limit.
    pub(crate) fn enter(&self) -> R<DepthGuard<'_>> {
        self.check_time()?;
        let depth = self.depth.get() + 1;
        let max = self.orchestrator.config.max_depth;
        if depth > max {
            return Err(Fail::Crash(format!(
                "RangeError: Maximum call depth exceeded ({max} nested function calls)"
            )));
        }
        self.depth.set(depth);
        Ok(DepthGuard(&self.depth))
    }

    /// A new frame below `parent`, remembered so the request can break cycles at the end.
    pub(crate) fn new_frame(&self, parent: Scope) -> Rc<Frame> {
        let frame = Frame::new(parent);
        self.frames.borrow_mut().push(frame.clone());
        frame
    }

    /// Resolves a node to a non-resolvable head (spec §2.3): argument references are looked
    /// up, references dereferenced (built-in types only with `even_builtins`), calls
    /// executed, and the type of a generic instance replaced by the Z4 its type function
    /// returns.
    pub(crate) fn resolve(&self, node: &Node, even_builtins: bool, internals: bool) -> R<Node> {
        let mut node = node.clone();
        loop {
            self.check_time()?;
            if node.is_type("Z18") {
                let name = node.get("Z18K1").map(arg_name).unwrap_or_default();
                node = self.retrieve_argument(&node.scope(), &name, false)?;
                continue;
            }
            if node.type_node().and_then(Node::as_str) == Some("Z9") {
                let zid = node
                    .get("Z9K1")
                    .and_then(Node::as_str)
                    .unwrap_or_default()
                    .to_string();
                if even_builtins || !is_built_in_type(&zid) {
                    let fetched = self.resolver.dereference(&zid)?;
                    match fetched.get("Z2K2") {
                        Some(value) if value.ref_zid() != Some(zid.as_str()) => {
                            node = value.clone();
                            continue;
                        }
                        Some(value) => return Ok(value.clone()),
                        None => return Err(Fail::Crash(format!("{zid} has no Z2K2"))),
                    }
                }
                return Ok(node);
            }
            if node.is_type("Z7") {
                let env = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.execute(&node, false, internals)
                })?;
                node = env.into_value()?;
                continue;
            }
            if is_generic_instance(&node) {
                let ty = node.type_node().cloned().unwrap_or_else(Node::void);
                let env = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.execute(&ty, false, internals)
                })?;
                let resolved = env.into_value()?;
                if !resolved.is_type("Z4") {
                    let text = resolved.quoted_text(QUOTE_CHARS);
                    return error(
                        "Z506",
                        [z6(format!(
                            "Generic type function did not return a Z4: {text}"
                        ))],
                    );
                }
                node = node.with("Z1K1", resolved);
                continue;
            }
            return Ok(node);
        }
    }

    /// Eager deep evaluation of an argument (spec §2.4 step 5): resolves nested argument
    /// references, references (not to built-in types) and calls, persistently, skipping
    /// the keys whose content is never evaluated; with the original's cycle guard.
    pub(crate) fn deep_evaluate(&self, node: &Node) -> R<Node> {
        let mut path = Vec::new();
        self.deep_walk(node, &mut path)
    }

    fn deep_walk(&self, node: &Node, path: &mut Vec<(Rc<str>, Option<String>)>) -> R<Node> {
        let Some(obj) = node.as_obj() else {
            return Ok(node.clone());
        };
        if obj.entries.len() == 2
            && matches!(node.type_node().and_then(Node::as_str), Some("Z6" | "Z9"))
        {
            return Ok(node.clone());
        }
        self.check_time()?;
        let identity = type_identity_key(node);
        let mut entries = Vec::with_capacity(obj.entries.len());
        let mut changed = false;
        for (k, child) in &obj.entries {
            if SKIP_KEYS.contains(&&**k) || path.iter().any(|(pk, pt)| pk == k && *pt == identity) {
                entries.push((k.clone(), child.clone()));
                continue;
            }
            if path.len() > CYCLE_DEPTH && path.iter().any(|(pk, _)| pk == k) {
                let text = path
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return error(
                    "Z516",
                    [z6(format!(
                        "Aborting because argument resolution contains cyclical references: {text}"
                    ))],
                );
            }
            let mut child = child.clone();
            let resolvable = (child.is_type("Z18")
                && crate::frame::is_bound(
                    &child.scope(),
                    &child.get("Z18K1").map(arg_name).unwrap_or_default(),
                ))
                || child.ref_zid().is_some_and(|z| !is_built_in_type(z))
                || child.is_type("Z7");
            if resolvable {
                child = self.resolve(&child, false, true)?;
                changed = true;
            }
            path.push((k.clone(), identity.clone()));
            let walked = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                self.deep_walk(&child, path)
            });
            path.pop();
            let walked = walked?;
            changed |= !same_node(&walked, &child);
            entries.push((k.clone(), walked));
        }
        if !changed {
            return Ok(node.clone());
        }
        Ok(Node::object(entries, obj.scope.clone()))
    }
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        for frame in self.frames.borrow().iter() {
            frame.clear();
        }
    }
}

/// The most characters of a value an error message quotes.
pub(crate) const QUOTE_CHARS: usize = 200;

/// Keys whose content eager evaluation leaves alone (spec §2.4).
const SKIP_KEYS: [&str; 11] = [
    "Z1K1", "Z4K1", "Z4K2", "Z4K3", "Z8K1", "Z8K2", "Z8K3", "Z8K4", "Z8K5", "Z40K1", "Z99K1",
];

/// The original aborts eager evaluation when a key repeats with a new type this deep.
const CYCLE_DEPTH: usize = 20;

fn same_node(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Obj(x), Node::Obj(y)) => Rc::ptr_eq(x, y),
        (Node::Str(x), Node::Str(y)) => x == y,
        _ => false,
    }
}

/// A string naming the type identity of a node, for the cycle guard.
fn type_identity_key(node: &Node) -> Option<String> {
    let ty = node.type_node()?;
    Some(match ty {
        Node::Str(s) => s.to_string(),
        t => match t.ref_zid() {
            Some(z) => z.to_string(),
            None => match t.get("Z4K1") {
                Some(id) => id.quoted_text(usize::MAX),
                None => t.quoted_text(usize::MAX),
            },
        },
    })
}

/// The argument name of a `Z18K1` (a Z6, or a bare string).
pub(crate) fn arg_name(node: &Node) -> String {
    node.string_value()
        .or_else(|| node.as_str())
        .unwrap_or_default()
        .to_string()
}

/// An object whose `Z1K1` is a call and whose other keys all end in `K<n>` (the original's
/// test is unanchored, so global keys count too).
pub(crate) fn is_generic_instance(node: &Node) -> bool {
    let Some(ty) = node.type_node() else {
        return false;
    };
    if !ty.is_type("Z7") {
        return false;
    }
    node.keys().iter().all(|k| ends_with_key_suffix(k))
}

fn ends_with_key_suffix(k: &str) -> bool {
    match k.rfind('K') {
        Some(i) => {
            let digits = &k[i + 1..];
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        }
        None => false,
    }
}
