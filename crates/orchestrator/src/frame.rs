//! Frames: the lexical scopes of argument bindings (spec §2.3–§2.4).
//!
//! A frame maps argument names to their state: unevaluated (the expression, in its own
//! scope, and the declared type) or evaluated (call-by-need memoization; a failure is not
//! kept, see `Engine::retrieve_argument`). The
//! empty scope (`None`) answers every lookup with Z525.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::node::Node;

/// A scope: `None` is the empty frame.
pub(crate) type Scope = Option<Rc<Frame>>;

/// The state of one bound argument.
#[derive(Clone)]
pub(crate) enum ArgState {
    /// Not evaluated yet: the argument expression (carrying its own scope) and the type the
    /// function declares for it.
    Unevaluated { expr: Node, declared: Node },
    /// Evaluated once; later lookups reuse it.
    Evaluated(Node),
}

/// One frame of bindings.
pub(crate) struct Frame {
    parent: Scope,
    bindings: RefCell<Bindings>,
    /// Whether an argument bound here failed when it was read (a wrong type, an error of a
    /// call in it): the caller's doing, not the implementation's ([`Self::note_failed_argument`]).
    failed_argument: Cell<bool>,
    /// How long reading arguments bound here took, first reads only
    /// ([`Self::note_argument_time`]): the caller's expressions, not the implementation's time.
    argument_time: Cell<std::time::Duration>,
}

/// A frame's bindings in the order they were made, found by name.
#[derive(Default)]
struct Bindings {
    entries: Vec<(Rc<str>, ArgState)>,
    /// Each name's position, once there are more than [`Bindings::SCANNED`]: a function's
    /// declarations can be built at run time as many as the budget allows, and a scan per
    /// binding made a call of 20,000 arguments quadratic (most of its 2.5 s).
    index: Option<HashMap<Rc<str>, usize>>,
}

impl Bindings {
    /// The most bindings a frame finds by a scan: nearly every frame.
    const SCANNED: usize = 16;

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| &**k == name),
        }
    }

    fn push(&mut self, name: Rc<str>, state: ArgState) {
        if let Some(index) = &mut self.index {
            index.insert(name.clone(), self.entries.len());
        }
        self.entries.push((name, state));
        if self.index.is_none() && self.entries.len() > Self::SCANNED {
            let index = self.entries.iter().enumerate();
            self.index = Some(index.map(|(at, (k, _))| (k.clone(), at)).collect());
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let (values, parent) = self.take_contents();
        crate::node::dispose(values, parent);
    }
}

impl Frame {
    /// A new frame below `parent`.
    pub(crate) fn new(parent: Scope) -> Rc<Frame> {
        Rc::new(Frame {
            parent,
            bindings: RefCell::new(Bindings::default()),
            failed_argument: Cell::new(false),
            argument_time: Cell::new(std::time::Duration::ZERO),
        })
    }

    /// Adds `took`, the time an argument's first read from this frame took.
    pub(crate) fn note_argument_time(&self, took: std::time::Duration) {
        self.argument_time.set(self.argument_time.get() + took);
    }

    /// How long the first reads of arguments from this frame took.
    pub(crate) fn argument_time(&self) -> std::time::Duration {
        self.argument_time.get()
    }

    /// Notes that an argument bound here failed when it was read.
    pub(crate) fn note_failed_argument(&self) {
        self.failed_argument.set(true);
    }

    /// Whether an argument bound here failed when it was read.
    pub(crate) fn had_failed_argument(&self) -> bool {
        self.failed_argument.get()
    }

    /// Binds or rebinds `name`.
    pub(crate) fn set(&self, name: &str, state: ArgState) {
        let mut bindings = self.bindings.borrow_mut();
        match bindings.position(name) {
            Some(at) => bindings.entries[at].1 = state,
            None => bindings.push(Rc::from(name), state),
        }
    }

    /// The state of `name` in this frame only.
    pub(crate) fn own(&self, name: &str) -> Option<ArgState> {
        let bindings = self.bindings.borrow();
        let at = bindings.position(name)?;
        Some(bindings.entries[at].1.clone())
    }

    /// The state of `name` here or in the nearest parent that binds it.
    pub(crate) fn lookup(&self, name: &str) -> Option<ArgState> {
        if let Some(state) = self.own(name) {
            return Some(state);
        }
        let mut frame = self.parent.clone();
        while let Some(f) = frame {
            if let Some(state) = f.own(name) {
                return Some(state);
            }
            frame = f.parent.clone();
        }
        None
    }
}

/// Whether `name` is bound anywhere in `scope`.
pub(crate) fn is_bound(scope: &Scope, name: &str) -> bool {
    scope.as_ref().is_some_and(|f| f.lookup(name).is_some())
}

impl Frame {
    /// Empties this frame: the nodes its bindings held, and its parent.
    pub(crate) fn take_contents(&mut self) -> (Vec<Node>, Scope) {
        let bindings = std::mem::take(self.bindings.get_mut());
        (values_of(bindings.entries), self.parent.take())
    }

    /// Forgets every binding. Frames and the values they memoize can reference each other
    /// (a closure stored in the frame it captures), so a request clears its frames at the
    /// end to break those cycles.
    pub(crate) fn clear(&self) {
        let bindings = std::mem::take(&mut *self.bindings.borrow_mut());
        crate::node::dispose(values_of(bindings.entries), None);
    }
}

/// The nodes `bindings` held.
fn values_of(bindings: Vec<(Rc<str>, ArgState)>) -> Vec<Node> {
    let mut values = Vec::with_capacity(bindings.len());
    for (_, state) in bindings {
        match state {
            ArgState::Unevaluated { expr, declared } => values.extend([expr, declared]),
            ArgState::Evaluated(value) => values.push(value),
        }
    }
    values
}
