//! One budget per request: every stage of an orchestration draws on it and checks it.
//!
//! Values in flight are shared (`Rc`), so a few kilobytes of request can describe a value whose
//! tree is astronomically large (`Z810(a, a)` forty levels deep is 2^40 nodes in 18 KB). Every
//! walk over request-derived data therefore pays for what it visits, not for what it holds:
//!
//! | bound | default | enforced where | on breach |
//! |---|---|---|---|
//! | wall-clock deadline | 20 s ([`crate::DEFAULT_TIMEOUT`]) | every step (a real clock, read every 256 steps) | Z558 "Function call timed out" |
//! | steps | [`DEFAULT_MAX_STEPS`] | each resolve iteration, call level, and node of every walk (eager evaluation, dangling references, reify, validators, type comparison, materialisation) | Z590 `steps` |
//! | value size | [`DEFAULT_MAX_VALUE_NODES`] nodes | every materialisation of a value as JSON (results, evaluator arguments, quoted values) | Z590 `value size` |
//! | value depth | [`DEFAULT_MAX_VALUE_DEPTH`] levels | the same, and lists built by built-ins (Z868 one level per code point) | Z590 `value depth` |
//! | host memory | [`DEFAULT_MAX_REQUEST_MEMORY_BYTES`] | live value nodes of the request (charged when built, released when dropped), 4 KiB of stack per nested call level, and every byte of JSON the request materialises (strings by their length; never released, so it is a bound per request, not per conversion), checked at every step and as JSON is built | Z590 `memory` |
//!
//! The budget is per thread: an orchestration runs on one thread from start to end (values
//! are `Rc`, so they cannot leave it), and a call nested through Z823 shares its parent's
//! budget. Z590 "Request budget exceeded" is zeval's own error type (the original has none);
//! `docs/deviations.md` lists it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use zeval_zobject::build::z6;
use zeval_zobject::error::z5;

use crate::engine::{Fail, R};

/// Default bound on the nodes (objects and strings) of one value turned into JSON. A node of
/// JSON costs roughly 100–200 bytes on the host, so this keeps one materialised value under
/// a few hundred MiB.
pub const DEFAULT_MAX_VALUE_NODES: usize = 2_000_000;

/// Default bound on the nesting of one value turned into JSON. A normal-form list nests one
/// level per element, so this admits lists of about 20,000 elements; JSON serialisers and
/// guest parsers recurse per level, and this keeps them within a thread's stack.
pub const DEFAULT_MAX_VALUE_DEPTH: usize = 20_000;

/// Default bound on the steps of one request (resolve iterations, call levels, nodes walked):
/// at tens of nanoseconds a step, a few seconds of work.
pub const DEFAULT_MAX_STEPS: u64 = 50_000_000;

/// Default bound on the host memory of one request's live values (an estimate: node headers,
/// key slots and the bytes of the strings objects hold).
pub const DEFAULT_MAX_REQUEST_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// The most bytes of strings (and keys) the value a request answers may hold: 64 MiB. The
/// answer is copied on its way out, after its budget is gone (its canonical form for the
/// result cache, then its text), and strings are what those copies keep whole (the
/// canonical form drops most of the normal form's structure): a result of 1,024 shares of
/// a 100 KiB string filled the request's budget and then took some 600 MiB in all. A list
/// of 100,000 code points holds a few MiB. (A remote evaluator's answer is at most 16 MiB.)
pub const MAX_ANSWER_TEXT_BYTES: usize = 64 * 1024 * 1024;

/// The most bytes one metadata value (`Z820`, Trigger metadata) may take as JSON: 1 MiB.
/// Metadata is JSON, copied whole as it travels (an error set so is cloned into the frame of
/// each argument it fails, and quoted by each caller that wraps it), and it reaches the
/// answer beside the result, which [`MAX_ANSWER_TEXT_BYTES`] bounds: 2,048 shares of a
/// 90,000-character string made some 184 MB of metadata within the request's budget, and
/// twice that once written out, after the budget was gone.
pub const MAX_METADATA_VALUE_BYTES: usize = 1024 * 1024;

/// The deepest a metadata value (`Z820`) may be: 100 levels (errors and notes, such as the
/// original's tests set, are a dozen). JSON drops and copies recursively, and metadata is
/// dropped, and an error copied, where its call ends, however deep the recursion there and
/// however little of the stack the engine has left (its red zone, 256 KiB): within
/// the byte bound a value could be some 3,000 levels of nested objects, and a debug build
/// copies one of 1,000 levels in 2 MiB of stack.
pub const MAX_METADATA_VALUE_DEPTH: usize = 100;

/// The most bytes a value an error quotes may take as JSON: 64 KiB, and no deeper than
/// [`MAX_METADATA_VALUE_DEPTH`]; a larger or deeper value is quoted as the start of its text
/// (a string of 200 characters). An error, like any metadata, is copied and dropped where
/// its call ends, however deep the recursion there. In normal form a level costs some 500
/// bytes of the 64 KiB, so the byte bound alone stopped at about 130 levels, which fit the
/// engine's red zone; the depth bound holds that where the byte count would not.
pub const MAX_QUOTED_VALUE_BYTES: usize = 64 * 1024;

/// The stack that writing or dropping a JSON value takes per level of its depth: 64 MiB for
/// the default [`DEFAULT_MAX_VALUE_DEPTH`] (a normal form some 25,000 levels), with which the
/// depth limits are tested. The orchestrator's own walks grow their stacks as they need, but
/// `serde_json` recurses once per level on whatever stack it is given.
pub const STACK_BYTES_PER_VALUE_LEVEL: usize = 64 * 1024 * 1024 / DEFAULT_MAX_VALUE_DEPTH;

/// Runs `work`, which writes, copies or drops JSON as deep as the budget allows
/// ([`STACK_BYTES_PER_VALUE_LEVEL`] per level), on a stack with room for it: this thread's,
/// or deep in a recursion, where less may be left, a segment of that size.
pub(crate) fn with_room_for_deep_json<T>(work: impl FnOnce() -> T) -> T {
    with_room_for_json_levels(limits().max_value_depth, work)
}

/// [`with_room_for_deep_json`] for JSON of at most `levels` levels: a shallow value asks
/// for little, so that such work nested in such work (Z823 at every level of a recursion)
/// does not map a segment for the whole budget at every level.
pub(crate) fn with_room_for_json_levels<T>(levels: usize, work: impl FnOnce() -> T) -> T {
    let room = levels
        .saturating_mul(STACK_BYTES_PER_VALUE_LEVEL)
        .max(crate::node::STACK_RED_ZONE);
    stacker::maybe_grow(room, room.saturating_add(crate::node::STACK_SEGMENT), work)
}

/// The bounds of one request's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Largest value (in nodes) any stage materialises.
    pub max_value_nodes: usize,
    /// Deepest value any stage materialises or a built-in builds.
    pub max_value_depth: usize,
    /// Most steps a request may take.
    pub max_steps: u64,
    /// Most host memory (estimated) the request's live values may hold.
    pub max_request_memory_bytes: usize,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            max_value_nodes: DEFAULT_MAX_VALUE_NODES,
            max_value_depth: DEFAULT_MAX_VALUE_DEPTH,
            max_steps: DEFAULT_MAX_STEPS,
            max_request_memory_bytes: DEFAULT_MAX_REQUEST_MEMORY_BYTES,
        }
    }
}

/// The budget of the request running on this thread.
struct Active {
    limits: BudgetLimits,
    deadline: Instant,
    steps: Cell<u64>,
    /// Live bytes when the request started (values of an enclosing request, if any).
    baseline: isize,
    peak: Cell<isize>,
    /// Bytes of JSON the request's materialisations produced (results, arguments for code,
    /// quoted values), charged as memory and never released: what a request materialises
    /// is bounded per request, not per conversion.
    materialised: Cell<usize>,
    /// Calls made from code (`W.Call`), shared by the calls nested in the request.
    reentry: crate::reentry::Counters,
}

thread_local! {
    static ACTIVE: RefCell<Option<Rc<Active>>> = const { RefCell::new(None) };
    /// Estimated bytes of value nodes alive on this thread.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

/// Keeps a request's budget installed on this thread; the previous one comes back on drop.
pub(crate) struct BudgetGuard {
    previous: Option<Rc<Active>>,
    this: Rc<Active>,
}

impl BudgetGuard {
    /// Names who sent the request, for a budget this guard installed; a request nested in
    /// another keeps its enclosing request's client.
    pub(crate) fn set_client(&self, client: Option<std::sync::Arc<str>>) {
        let shared = self
            .previous
            .as_ref()
            .is_some_and(|previous| Rc::ptr_eq(previous, &self.this));
        if !shared {
            *self.this.reentry.client.borrow_mut() = client;
        }
    }

    /// The most memory the request's values held at once, in bytes (an estimate).
    pub(crate) fn peak_bytes(&self) -> u64 {
        let peak = self.this.peak.get().max(self.this.used());
        peak.max(0) as u64
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| *a.borrow_mut() = self.previous.take());
    }
}

/// Installs a budget for a top-level request. A nested request (Z823) keeps using the
/// enclosing one: call [`install`] only where no budget is active, or use [`install_or_share`].
pub(crate) fn install_or_share(limits: BudgetLimits, deadline: Instant) -> BudgetGuard {
    let previous = ACTIVE.with(|a| a.borrow().clone());
    let this = match &previous {
        Some(active) => active.clone(),
        None => Rc::new(Active {
            limits,
            deadline,
            steps: Cell::new(0),
            baseline: LIVE_BYTES.with(Cell::get),
            peak: Cell::new(0),
            materialised: Cell::new(0),
            reentry: Default::default(),
        }),
    };
    ACTIVE.with(|a| *a.borrow_mut() = Some(this.clone()));
    BudgetGuard { previous, this }
}

impl Active {
    /// The memory the request holds as the budget counts it: its live value nodes and the
    /// JSON it materialised.
    fn used(&self) -> isize {
        (LIVE_BYTES.with(Cell::get) - self.baseline)
            .saturating_add(self.materialised.get().min(isize::MAX as usize) as isize)
    }

    /// The Z590 of the memory budget.
    fn memory_exceeded<T>(&self) -> R<T> {
        exceeded(
            "memory",
            format!(
                "The request's values need more than {} MiB of memory (orchestrator budget \
                 `max_request_memory_bytes`).",
                self.limits.max_request_memory_bytes / (1024 * 1024)
            ),
        )
    }
}

fn with_active<T>(f: impl FnOnce(&Active) -> T) -> Option<T> {
    ACTIVE.with(|a| a.borrow().as_deref().map(f))
}

/// Runs `f` with the reentrant-call counters of the request on this thread (`None` outside a
/// request). The budget is not borrowed while `f` runs, so `f` may orchestrate nested calls.
pub(crate) fn with_reentry<T>(f: impl FnOnce(&crate::reentry::Counters) -> T) -> Option<T> {
    let active = ACTIVE.with(|a| a.borrow().clone())?;
    Some(f(&active.reentry))
}

/// The limits in force on this thread (the defaults outside a request).
pub(crate) fn limits() -> BudgetLimits {
    with_active(|a| a.limits).unwrap_or_default()
}

/// The Z590 of a breached bound.
pub(crate) fn exceeded<T>(limit: &str, message: String) -> R<T> {
    Err(Fail::Error(z5("Z590", [z6(limit), z6(message)])))
}

/// Takes `n` steps: fails when the step budget, the memory budget or (every 256 steps) the
/// deadline is exhausted.
pub(crate) fn steps(n: u64) -> R<()> {
    let outcome = with_active(|a| {
        let before = a.steps.get();
        let now = before + n;
        a.steps.set(now);
        if now > a.limits.max_steps {
            return exceeded(
                "steps",
                format!(
                    "The request took more than {} steps (orchestrator budget `max_steps`).",
                    a.limits.max_steps
                ),
            );
        }
        let live = a.used();
        if live > a.peak.get() {
            a.peak.set(live);
        }
        if live > a.limits.max_request_memory_bytes as isize {
            return a.memory_exceeded();
        }
        if (before >> 8) != (now >> 8) && Instant::now() >= a.deadline {
            return Err(Fail::Timeout);
        }
        Ok(())
    });
    outcome.unwrap_or(Ok(()))
}

/// One step.
pub(crate) fn step() -> R<()> {
    steps(1)
}

/// Fails when a value `depth` levels deep may not be built.
pub(crate) fn check_depth(depth: usize) -> R<()> {
    let max = limits().max_value_depth;
    if depth > max {
        return exceeded(
            "value depth",
            format!(
                "A value would nest {depth} levels deep, more than the {max} allowed \
                 (orchestrator budget `max_value_depth`)."
            ),
        );
    }
    Ok(())
}

/// Fails when `bytes` more would exceed the memory budget (for builders that know their size
/// before they allocate, e.g. string concatenation).
pub(crate) fn check_reserve(bytes: usize) -> R<()> {
    let outcome = with_active(|a| {
        let live = a.used();
        if live.saturating_add(bytes as isize) > a.limits.max_request_memory_bytes as isize {
            return exceeded(
                "memory",
                format!(
                    "The request's values would need more than {} MiB of memory (orchestrator \
                     budget `max_request_memory_bytes`).",
                    a.limits.max_request_memory_bytes / (1024 * 1024)
                ),
            );
        }
        Ok(())
    });
    outcome.unwrap_or(Ok(()))
}

/// Records `bytes` of new value nodes on this thread.
pub(crate) fn charge(bytes: usize) {
    // `try_with`: nodes cached per thread (the preloaded built-ins) drop while the thread's
    // locals are torn down.
    let _ = LIVE_BYTES.try_with(|l| l.set(l.get().saturating_add(bytes as isize)));
}

/// Records `bytes` of value nodes freed on this thread.
pub(crate) fn release(bytes: usize) {
    let _ = LIVE_BYTES.try_with(|l| l.set(l.get().saturating_sub(bytes as isize)));
}

/// Counts the nodes of one materialisation against `max_value_nodes` and `max_value_depth`,
/// and the bytes of JSON it produces against what is left of the request's memory budget
/// (the bytes are charged to the request when the materialisation ends, see
/// [`Active::materialised`]).
pub(crate) struct Materialisation {
    nodes: usize,
    max_nodes: usize,
    max_depth: usize,
    bytes: usize,
    /// The most bytes this materialisation may produce.
    max_bytes: usize,
    /// `max_bytes` is a bound the caller chose ([`Self::capped`]), not the memory budget.
    capped: bool,
    /// `max_depth` is a bound the caller chose ([`Self::metadata`]), and it was passed.
    depth_capped: bool,
    over_depth: bool,
    /// Bytes of strings and keys so far, and their bound ([`Self::answer`]).
    text: usize,
    max_text: usize,
    /// Whether the bytes are charged to the request when it ends ([`Self::passing`]: not).
    charged: bool,
}

/// The host bytes of one JSON value's slot (its string, map or array headers).
pub(crate) const JSON_VALUE_BYTES: usize = std::mem::size_of::<serde_json::Value>();
/// The host bytes of one object member besides its value: the key's `String` and the
/// map's index entry.
pub(crate) const JSON_MEMBER_BYTES: usize = std::mem::size_of::<String>() + 16;

impl Materialisation {
    pub(crate) fn new() -> Self {
        let limits = limits();
        let left = with_active(|a| {
            (a.limits.max_request_memory_bytes as isize)
                .saturating_sub(a.used())
                .max(0) as usize
        })
        .unwrap_or(limits.max_request_memory_bytes);
        Materialisation {
            nodes: 0,
            max_nodes: limits.max_value_nodes,
            max_depth: limits.max_value_depth,
            bytes: 0,
            max_bytes: left,
            capped: false,
            depth_capped: false,
            over_depth: false,
            text: 0,
            max_text: usize::MAX,
            charged: true,
        }
    }

    /// The materialisation of a copy dropped before the request goes on (one the access rule
    /// compares with what it approved): bounded by what is left of the budget, like any, but
    /// charged nothing after, so that checking a copy once per nested request cannot use up
    /// the request's memory.
    pub(crate) fn passing() -> Self {
        Materialisation {
            charged: false,
            ..Materialisation::new()
        }
    }

    /// The materialisation of a request's answer: its strings and keys at most
    /// [`MAX_ANSWER_TEXT_BYTES`].
    pub(crate) fn answer() -> Self {
        Materialisation {
            max_text: MAX_ANSWER_TEXT_BYTES,
            ..Materialisation::new()
        }
    }

    /// One more string or key, counted as JSON writes it (escapes included: a control
    /// character takes six bytes) when this materialisation bounds its text.
    pub(crate) fn text_of(&mut self, text: &str) -> R<()> {
        if self.max_text == usize::MAX {
            return Ok(());
        }
        self.text(json_text_len(text))
    }

    /// The strings and keys of a JSON value, as [`Self::text_of`] counts them.
    fn text_of_json(&mut self, value: &serde_json::Value) -> R<()> {
        if self.max_text == usize::MAX {
            return Ok(());
        }
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::String(s) => self.text(json_text_len(s))?,
                serde_json::Value::Object(m) => {
                    for (k, child) in m {
                        self.text(json_text_len(k))?;
                        stack.push(child);
                    }
                }
                serde_json::Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        Ok(())
    }

    /// `bytes` more of strings and keys.
    fn text(&mut self, bytes: usize) -> R<()> {
        self.text = self.text.saturating_add(bytes);
        if self.text > self.max_text {
            return exceeded(
                "answer size",
                format!(
                    "The result holds more than {} MiB of text (orchestrator bound \
                     `MAX_ANSWER_TEXT_BYTES`).",
                    self.max_text / (1024 * 1024)
                ),
            );
        }
        Ok(())
    }

    /// A materialisation that may produce at most `max_bytes` (and what the budget allows).
    pub(crate) fn capped(max_bytes: usize) -> Self {
        let mut m = Materialisation::new();
        if max_bytes < m.max_bytes {
            m.max_bytes = max_bytes;
            m.capped = true;
        }
        m
    }

    /// The materialisation of a metadata value: at most [`MAX_METADATA_VALUE_BYTES`] and
    /// [`MAX_METADATA_VALUE_DEPTH`] levels, both the caller's bounds ([`Self::over_cap`]).
    pub(crate) fn metadata() -> Self {
        Materialisation::capped(MAX_METADATA_VALUE_BYTES).shallow(MAX_METADATA_VALUE_DEPTH)
    }

    /// The materialisation of a value an error quotes whole: at most [`MAX_QUOTED_VALUE_BYTES`]
    /// and [`MAX_METADATA_VALUE_DEPTH`] levels (an error is metadata), both the caller's
    /// bounds ([`Self::over_cap`]).
    pub(crate) fn quoted() -> Self {
        Materialisation::capped(MAX_QUOTED_VALUE_BYTES).shallow(MAX_METADATA_VALUE_DEPTH)
    }

    /// This materialisation, stopped past `max_depth` levels as the caller's own bound.
    fn shallow(mut self, max_depth: usize) -> Self {
        if max_depth < self.max_depth {
            self.max_depth = max_depth;
            self.depth_capped = true;
        }
        self
    }

    /// Whether the bytes or the depth went past the caller's own bound ([`Self::capped`],
    /// [`Self::metadata`]).
    pub(crate) fn over_cap(&self) -> bool {
        (self.capped && self.bytes > self.max_bytes) || self.over_depth
    }

    /// One more node at `depth`.
    pub(crate) fn node(&mut self, depth: usize) -> R<()> {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            return exceeded(
                "value size",
                format!(
                    "A value has more than {} nodes (orchestrator budget `max_value_nodes`).",
                    self.max_nodes
                ),
            );
        }
        if depth > self.max_depth {
            if self.depth_capped {
                self.over_depth = true;
                return exceeded("value depth", "past the caller's bound".into());
            }
            return check_depth(depth);
        }
        if self.nodes & 63 == 0 {
            return steps(64);
        }
        Ok(())
    }

    /// A JSON value kept verbatim (an array, a number) at `depth`, before it is copied: its
    /// bytes, its text, and, where the caller bounds the depth ([`Self::metadata`],
    /// [`Self::quoted`]), its own levels, which the copy and its drop recurse through as
    /// they do through objects. Walked without recursion.
    pub(crate) fn raw(&mut self, value: &serde_json::Value, depth: usize) -> R<()> {
        self.bytes(json_bytes(value))?;
        self.text_of_json(value)?;
        if self.depth_capped
            && zeval_zobject::depth::exceeds(value, self.max_depth.saturating_sub(depth))
        {
            self.over_depth = true;
            return exceeded("value depth", "past the caller's bound".into());
        }
        Ok(())
    }

    /// `bytes` more of JSON, before they are allocated.
    pub(crate) fn bytes(&mut self, bytes: usize) -> R<()> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.max_bytes {
            let limit = limits().max_request_memory_bytes;
            return with_active(|a| a.memory_exceeded()).unwrap_or_else(|| {
                exceeded(
                    "memory",
                    format!(
                        "A value needs more than {} MiB of memory (orchestrator budget \
                         `max_request_memory_bytes`).",
                        limit / (1024 * 1024)
                    ),
                )
            });
        }
        Ok(())
    }
}

impl Drop for Materialisation {
    fn drop(&mut self) {
        if !self.charged {
            return;
        }
        let bytes = self.bytes.min(self.max_bytes.saturating_add(1));
        let _ = ACTIVE.try_with(|a| {
            if let Some(a) = a.borrow().as_deref() {
                a.materialised
                    .set(a.materialised.get().saturating_add(bytes));
            }
        });
    }
}

/// The bytes a JSON value holds on the host (as [`Materialisation::bytes`] counts them),
/// walked without recursion.
pub(crate) fn json_bytes(value: &serde_json::Value) -> usize {
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(JSON_VALUE_BYTES);
        match v {
            serde_json::Value::String(s) => total = total.saturating_add(s.len()),
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    total = total.saturating_add(JSON_MEMBER_BYTES + k.len());
                    stack.push(child);
                }
            }
            serde_json::Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    total
}

/// The bytes JSON takes for the contents of the string `text` (without its quotes): a
/// control character is escaped in six (`\u0001`; two for the usual ones, counted as six
/// here), a quote or backslash in two.
fn json_text_len(text: &str) -> usize {
    let escapes: usize = text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    text.len().saturating_add(escapes)
}

/// The deepest the metadata of an evaluator's answer (`Z22K2`) may be: 200 levels, room for a
/// map of metadata values (a map in normal form nests once per entry, some 30 levels for an
/// evaluator's own dozen) whose values, an error among them, are within
/// [`MAX_METADATA_VALUE_DEPTH`] each. It is JSON kept as it is, copied and dropped
/// recursively where its call ends, however deep the recursion there.
pub const MAX_RECEIVED_METADATA_DEPTH: usize = 2 * MAX_METADATA_VALUE_DEPTH;

/// Checks an evaluator's answer `z22` against the size and depth bounds, without recursion,
/// before it becomes part of the request. Besides the budget's bounds for a value:
/// - JSON its value holds verbatim, not objects and strings (an array, a number), is at most
///   [`MAX_METADATA_VALUE_DEPTH`] levels deep, counted from where it begins;
/// - its metadata is at most [`MAX_RECEIVED_METADATA_DEPTH`] levels deep.
///
/// Both are kept as JSON, which copies and drops recursively, and the call may be at the
/// bottom of a deep recursion, where only the engine's red zone of stack is left. Code's
/// output may nest 10,000 levels: an array that deep, returned by code called 1,000 levels
/// down a recursion, overflowed a stack segment and killed the process.
pub(crate) fn check_received(z22: &serde_json::Value) -> R<()> {
    let mut counter = Materialisation::new();
    // (value, depth, levels of verbatim JSON, levels of metadata)
    let mut stack = vec![(z22, 0usize, 0usize, 0usize)];
    while let Some((v, depth, verbatim, metadata)) = stack.pop() {
        counter.node(depth)?;
        if verbatim > MAX_METADATA_VALUE_DEPTH {
            return exceeded(
                "value depth",
                format!(
                    "The code's answer holds JSON that is not a ZObject (an array) nested \
                     more than {MAX_METADATA_VALUE_DEPTH} levels deep: too deep to take in."
                ),
            );
        }
        if metadata > MAX_RECEIVED_METADATA_DEPTH {
            return exceeded(
                "value depth",
                format!(
                    "The code's answer has metadata nested more than \
                     {MAX_RECEIVED_METADATA_DEPTH} levels deep: too deep to take in."
                ),
            );
        }
        let within = |levels: usize| levels + usize::from(levels > 0);
        match v {
            serde_json::Value::Object(m) => {
                for (key, child) in m {
                    let metadata = match (depth, key.as_str()) {
                        (0, "Z22K2") => 1,
                        _ => within(metadata),
                    };
                    stack.push((child, depth + 1, within(verbatim), metadata));
                }
            }
            serde_json::Value::Array(a) => stack.extend(
                a.iter()
                    .map(|c| (c, depth + 1, verbatim + 1, within(metadata))),
            ),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn code(r: R<()>) -> Option<String> {
        match r {
            Err(Fail::Error(e)) => Some(e["Z5K2"]["Z590K1"]["Z6K1"].as_str()?.to_string()),
            _ => None,
        }
    }

    #[test]
    fn steps_run_out() {
        let limits = BudgetLimits {
            max_steps: 10,
            ..BudgetLimits::default()
        };
        let _guard = install_or_share(limits, Instant::now() + Duration::from_secs(60));
        assert!(steps(10).is_ok());
        assert_eq!(code(step()).as_deref(), Some("steps"));
    }

    #[test]
    fn memory_is_charged_and_released() {
        let limits = BudgetLimits {
            max_request_memory_bytes: 1000,
            ..BudgetLimits::default()
        };
        let guard = install_or_share(limits, Instant::now() + Duration::from_secs(60));
        charge(2000);
        assert_eq!(code(step()).as_deref(), Some("memory"));
        release(2000);
        assert!(step().is_ok());
        assert!(guard.peak_bytes() >= 2000);
        assert_eq!(code(check_reserve(1001)).as_deref(), Some("memory"));
    }

    #[test]
    fn the_deadline_is_a_real_clock() {
        let _guard = install_or_share(BudgetLimits::default(), Instant::now());
        assert!(matches!(steps(300), Err(Fail::Timeout)));
    }

    #[test]
    fn nested_requests_share_the_budget() {
        let limits = BudgetLimits {
            max_steps: 5,
            ..BudgetLimits::default()
        };
        let _outer = install_or_share(limits, Instant::now() + Duration::from_secs(60));
        steps(4).unwrap();
        let _inner = install_or_share(BudgetLimits::default(), Instant::now());
        assert_eq!(code(steps(2)).as_deref(), Some("steps"));
    }

    #[test]
    fn materialisation_bounds_size_and_depth() {
        let limits = BudgetLimits {
            max_value_nodes: 3,
            max_value_depth: 2,
            ..BudgetLimits::default()
        };
        let _guard = install_or_share(limits, Instant::now() + Duration::from_secs(60));
        let mut m = Materialisation::new();
        assert_eq!(code(m.node(3)).as_deref(), Some("value depth"));
        let mut m = Materialisation::new();
        for _ in 0..3 {
            m.node(0).unwrap();
        }
        assert_eq!(code(m.node(0)).as_deref(), Some("value size"));
    }
}
