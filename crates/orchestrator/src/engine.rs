//! One orchestration request: its caches, limits and the `resolve` step (spec §2.3).
//!
//! Limits enforced here (both configurable in [`crate::OrchestratorConfig`]):
//! - **call depth**: every nested `execute` counts one level and is charged
//!   [`STACK_BYTES_PER_LEVEL`] to the request's memory budget; past `max_depth` the request
//!   fails as the original does when its JavaScript stack overflows (a Z507 around a Z500).
//!   Calls in tail position (a composition's body, If's branch) resolve in the caller's
//!   loop and take no level, so a recursion through them is bounded by the budget's steps,
//!   memory and deadline instead. Each level grows the Rust stack on the heap when it runs
//!   low (`stacker`), so the limit, not the thread's stack size, decides how deep a user's
//!   recursion may go;
//! - **deadline**: checked every [`CLOCK_EVERY`] steps; past it the request answers Z558
//!   "Function call timed out".

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use zeval_zobject::Value;
use zeval_zobject::build::z6;
use zeval_zobject::error::z5;
use zeval_zobject::ident::is_built_in_type;

use crate::Orchestrator;
use crate::call::Step;
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
    /// [`crate::CallOptions::value_only`].
    value_only: bool,
    deadline: Instant,
    depth: Cell<usize>,
    /// Arguments being read, each inside the last ([`Self::enter_argument`]).
    argument_depth: Cell<usize>,
    /// Steps left before [`Self::check_time`] reads the clock again.
    until_clock: Cell<u32>,
    /// Every frame of the request that may still be alive: frames in a reference cycle (a
    /// closure stored in the frame it captures) are cleared when the request ends. Weak,
    /// so that a frame nothing uses any more (every step of a long tail recursion) is freed
    /// at once.
    frames: RefCell<Vec<Weak<Frame>>>,
    /// The first nondeterministic built-in that ran (see [`crate::trace`]).
    nondeterministic: Cell<Option<&'o str>>,
    /// [`crate::Trace::depends_on_load`].
    depends_on_load: Cell<bool>,
    /// [`crate::Trace::stopped_by_load`].
    stopped_by_load: Cell<bool>,
    /// Z4s of built-in type function calls, by the call node's address ([`Self::memoized_type`]).
    type_memo: RefCell<Vec<TypeMemoEntry>>,
    /// The policy's verdicts on implementations as this request read them, by ZID
    /// ([`crate::ImplementationPolicy::allows_as_read`]): the resolver reads each ZID once per
    /// request, so one verdict holds for every run.
    pub(crate) verdicts_as_read: RefCell<HashMap<String, Result<(), String>>>,
    /// The policy's verdicts on the signatures of functions called by their own identity, as
    /// this request read them, by ZID
    /// ([`crate::ImplementationPolicy::allows_signature_as_read`]).
    pub(crate) signature_verdicts_as_read: RefCell<HashMap<String, Result<(), String>>>,
}

/// `((call address, internals), call, Z4)`.
type TypeMemoEntry = ((*const crate::node::Obj, bool), Node, Node);

/// How many type function answers one request remembers (a linear scan: types in flight
/// are few).
const TYPE_MEMO_ENTRIES: usize = 16;

/// Decrements the depth counter when a level ends.
pub(crate) struct DepthGuard<'a>(&'a Cell<usize>);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
        crate::budget::release(STACK_BYTES_PER_LEVEL);
    }
}

/// What one call level is charged to the request's memory budget for its stack: a release
/// build uses about 2.5 KiB per level (measured with `stacker::remaining_stack` across 60
/// levels of a recursive composition), rounded up.
pub(crate) const STACK_BYTES_PER_LEVEL: usize = 4 * 1024;

/// How many steps pass between two readings of the clock ([`Engine::check_time`]).
const CLOCK_EVERY: u32 = 32;

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
            value_only: false,
            deadline,
            depth: Cell::new(0),
            argument_depth: Cell::new(0),
            until_clock: Cell::new(0),
            frames: RefCell::new(Vec::new()),
            nondeterministic: Cell::new(None),
            depends_on_load: Cell::new(false),
            stopped_by_load: Cell::new(false),
            type_memo: RefCell::new(Vec::new()),
            verdicts_as_read: RefCell::new(HashMap::new()),
            signature_verdicts_as_read: RefCell::new(HashMap::new()),
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
        if nested.stopped_by_load.get() {
            self.note_load();
        }
        if nested.depends_on_load.get() {
            self.note_timeout();
        }
    }

    /// Notes that an access rule refused something it could not check (the store busy or
    /// failing): the answer is never kept ([`crate::Trace::depends_on_load`]), or a refusal
    /// of a moment's load was served to every caller for the errors' time.
    pub(crate) fn note_unchecked(&self) {
        self.depends_on_load.set(true);
    }

    /// Notes that the load, or the caller's other requests, stopped something the answer
    /// depends on ([`crate::Trace::stopped_by_load`], and so
    /// [`crate::Trace::depends_on_load`]).
    pub(crate) fn note_load(&self) {
        self.stopped_by_load.set(true);
        self.depends_on_load.set(true);
    }

    /// Notes that something the answer depends on ran out of its time, which the load may
    /// have shortened or not ([`crate::Trace::depends_on_load`] only).
    pub(crate) fn note_timeout(&self) {
        self.depends_on_load.set(true);
    }

    /// [`Engine::note_load`] was called in this request.
    pub(crate) fn stopped_by_load(&self) -> bool {
        self.stopped_by_load.get()
    }

    /// [`Engine::note_load`] or [`Engine::note_timeout`] was called in this request.
    pub(crate) fn depends_on_load(&self) -> bool {
        self.depends_on_load.get()
    }

    /// Starts counting depth where `parent` is (for requests nested through Z823).
    pub(crate) fn inherit_depth(&self, parent: &Engine<'_>) {
        self.depth.set(parent.depth.get());
    }

    /// This engine with [`crate::CallOptions::value_only`] set to `on`.
    pub(crate) fn value_only(mut self, on: bool) -> Self {
        self.value_only = on;
        self
    }

    /// Whether the request's caller reads only its value or error
    /// ([`crate::CallOptions::value_only`]).
    pub(crate) fn is_value_only(&self) -> bool {
        self.value_only
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

    /// Takes one step of the request's budget; fails once the deadline has passed. The
    /// clock is read every [`CLOCK_EVERY`] steps (a step is well under a microsecond, and
    /// reading the clock each time cost a recursive composition a twentieth of its time).
    pub(crate) fn check_time(&self) -> R<()> {
        crate::budget::step()?;
        let until_clock = self.until_clock.get();
        if until_clock > 0 {
            self.until_clock.set(until_clock - 1);
            return Ok(());
        }
        self.until_clock.set(CLOCK_EVERY);
        if Instant::now() >= self.deadline {
            Err(Fail::Timeout)
        } else {
            Ok(())
        }
    }

    /// Enters one call level: checks the deadline and the depth limit, and charges the
    /// level's stack to the request's memory budget (released when the level ends).
    pub(crate) fn enter(&self) -> R<DepthGuard<'_>> {
        self.check_time()?;
        self.deeper(&self.depth, "nested function calls")
    }

    /// Enters the reading of an argument not yet evaluated ([`Self::retrieve_argument`]).
    /// Its expression may read an argument its caller handed on unread, which may read its
    /// own caller's, and so on: a tail recursion that hands an argument on builds a chain
    /// as long as the recursion, and reading it nests once per link, with no call level in
    /// between. So each link counts against the depth limit (apart from call levels, which
    /// an argument's own calls still count) and is charged a level's stack; run on a stack
    /// that grows, it can neither overflow the thread's stack nor outgrow the budget.
    pub(crate) fn enter_argument(&self) -> R<DepthGuard<'_>> {
        self.deeper(&self.argument_depth, "arguments read one inside another")
    }

    fn deeper<'a>(&'a self, depth: &'a Cell<usize>, what: &str) -> R<DepthGuard<'a>> {
        let deeper = depth.get() + 1;
        let max = self.orchestrator.config.max_depth;
        if deeper > max {
            return Err(Fail::Crash(format!(
                "RangeError: Maximum call depth exceeded ({max} {what})"
            )));
        }
        depth.set(deeper);
        crate::budget::charge(STACK_BYTES_PER_LEVEL);
        Ok(DepthGuard(depth))
    }

    /// The Z4 a built-in type function call (`Z881`/`Z882`/`Z883`) already returned in this
    /// request. Such calls are pure, and every cell of a list shares its type node, so a
    /// list walked step by step would otherwise build the same Z4 (a dozen objects) again
    /// at every step.
    fn memoized_type(&self, ty: &Node, internals: bool) -> Option<Node> {
        let Node::Obj(call) = ty else { return None };
        let identity = (Rc::as_ptr(call), internals);
        self.type_memo
            .borrow()
            .iter()
            .find(|(key, _, _)| *key == identity)
            .map(|(_, _, z4)| z4.clone())
    }

    /// Remembers the Z4 of a built-in type function call; at most [`TYPE_MEMO_ENTRIES`],
    /// most recent first. The entry keeps the call alive, so its address stays its own.
    fn memoize_type(&self, ty: &Node, internals: bool, z4: &Node) {
        let Node::Obj(call) = ty else { return };
        if !z4.is_type("Z4") || !["Z881", "Z882", "Z883"].iter().any(|f| ty.is_call_to(f)) {
            return;
        }
        let mut memo = self.type_memo.borrow_mut();
        if memo.len() == TYPE_MEMO_ENTRIES {
            memo.pop();
        }
        memo.insert(0, ((Rc::as_ptr(call), internals), ty.clone(), z4.clone()));
    }

    /// A new frame below `parent`, remembered so the request can break cycles at the end.
    pub(crate) fn new_frame(&self, parent: Scope) -> Rc<Frame> {
        let frame = Frame::new(parent);
        let mut frames = self.frames.borrow_mut();
        // Forget freed frames whenever the list doubles: amortised O(1) per frame, and the
        // list stays proportional to the frames alive.
        if frames.len() >= 64 && frames.len().is_power_of_two() {
            frames.retain(|f| f.strong_count() > 0);
        }
        frames.push(Rc::downgrade(&frame));
        frame
    }

    /// Resolves a node to a non-resolvable head (spec §2.3): argument references are looked
    /// up, references dereferenced (built-in types only with `even_builtins`), calls
    /// executed, and the type of a generic instance replaced by the Z4 its type function
    /// returns.
    pub(crate) fn resolve(&self, node: &Node, even_builtins: bool, internals: bool) -> R<Node> {
        let mut deep = false;
        let value = self.resolve_head(node, even_builtins, internals, &mut deep)?;
        if deep {
            return self.deep_evaluate(&value);
        }
        Ok(value)
    }

    /// The loop of [`Self::resolve`]. Calls in tail position ([`crate::call::Step`]) are
    /// resolved here, in this loop, when this resolution is the one they would have done
    /// themselves (`even_builtins` off, `internals` on); `deep` is set when one of them
    /// asks for its result to be evaluated deeply.
    fn resolve_head(
        &self,
        node: &Node,
        even_builtins: bool,
        internals: bool,
        deep: &mut bool,
    ) -> R<Node> {
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
                if !even_builtins && internals {
                    match self.execute_step(&node)? {
                        Step::Done(env) => node = env.into_value()?,
                        Step::Continue {
                            node: next,
                            deep: next_deep,
                        } => {
                            node = next;
                            *deep |= next_deep;
                        }
                    }
                    continue;
                }
                let env = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.execute(&node, false, internals)
                })?;
                node = env.into_value()?;
                continue;
            }
            if is_generic_instance(&node) {
                let ty = node.type_node().cloned().unwrap_or_else(Node::void);
                if let Some(resolved) = self.memoized_type(&ty, internals) {
                    node = node.with("Z1K1", resolved);
                    continue;
                }
                let env = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.execute(&ty, false, internals)
                })?;
                let resolved = env.into_value()?;
                self.memoize_type(&ty, internals, &resolved);
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

    fn deep_walk(&self, node: &Node, path: &mut Vec<(Rc<str>, Option<TypeIdentity>)>) -> R<Node> {
        let Some(obj) = node.as_obj() else {
            return Ok(node.clone());
        };
        if obj.entries.len() == 2
            && matches!(node.type_node().and_then(Node::as_str), Some("Z6" | "Z9"))
        {
            return Ok(node.clone());
        }
        self.check_time()?;
        let identity = type_identity(node);
        let mut entries = Vec::with_capacity(obj.entries.len());
        let mut changed = false;
        for (k, child) in &obj.entries {
            if SKIP_KEYS.contains(&&**k) || seen_before(path, k, identity.as_ref())? {
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
            if let Some(frame) = frame.upgrade() {
                frame.clear();
            }
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

/// The type identity of a node, for the cycle guard: a name, or the structure of its type
/// (the original compares the JSON texts of the two; comparing the trees says the same
/// without writing either out, which a long list did once per cell).
#[derive(Clone)]
enum TypeIdentity {
    Named(Rc<str>),
    Structure(Node),
}

fn type_identity(node: &Node) -> Option<TypeIdentity> {
    let ty = node.type_node()?;
    Some(match ty {
        Node::Str(s) => TypeIdentity::Named(s.clone()),
        t => match t.ref_zid() {
            Some(z) => TypeIdentity::Named(crate::node::key(z)),
            None => TypeIdentity::Structure(t.get("Z4K1").unwrap_or(t).clone()),
        },
    })
}

/// Whether `key` with the same type identity is already on the path.
fn seen_before(
    path: &[(Rc<str>, Option<TypeIdentity>)],
    key: &Rc<str>,
    identity: Option<&TypeIdentity>,
) -> R<bool> {
    for (seen_key, seen_identity) in path {
        if seen_key != key {
            continue;
        }
        let same = match (seen_identity, identity) {
            (None, None) => true,
            (Some(TypeIdentity::Named(a)), Some(TypeIdentity::Named(b))) => a == b,
            (Some(TypeIdentity::Structure(a)), Some(TypeIdentity::Structure(b))) => {
                same_structure(a, b)?
            }
            _ => false,
        };
        if same {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether two nodes write out as the same JSON. Each object compared is a step of the
/// request's budget (types may share subtrees), and shared subtrees compare at once.
fn same_structure(a: &Node, b: &Node) -> R<bool> {
    match (a, b) {
        (Node::Str(x), Node::Str(y)) => Ok(x == y),
        (Node::Raw(x), Node::Raw(y)) => Ok(x == y),
        (Node::Obj(x), Node::Obj(y)) => {
            if Rc::ptr_eq(x, y) {
                return Ok(true);
            }
            crate::budget::step()?;
            if x.entries.len() != y.entries.len() {
                return Ok(false);
            }
            for ((kx, vx), (ky, vy)) in x.entries.iter().zip(&y.entries) {
                let same_child = kx == ky
                    && stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                        same_structure(vx, vy)
                    })?;
                if !same_child {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
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
