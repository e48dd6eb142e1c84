//! Answering before resetting, for guests run in the caller's own process.
//!
//! A call's instance is reset when its store is dropped: wasmtime copies the pages the call
//! wrote back from the snapshot. [`crate::Guest::run`] does that before it returns. A caller
//! that can hand its answer on before that (a server whose response is written by another
//! thread) runs its work inside [`answer_first`]: the reset of the last call that ended on this
//! thread then waits in the returned [`ResetLeft`] until the caller drops it, after sending.
//! The worker processes do the same with [`crate::Guest::run_resetting_later`].
//!
//! Bound: at most one reset waits per thread. A call that starts on the thread resets the
//! waiting one before it takes a pool slot, and a call that ends while another waits (a call
//! nested in a guest's host call) resets that one. A request that runs a thousand guest calls
//! one after another holds one slot more than it runs, never a thousand; nothing of a call is
//! reused, and the slot stays taken until its reset is done.

use std::cell::RefCell;

use crate::PendingReset;

thread_local! {
    /// `None` outside [`answer_first`]; inside, the reset waiting on this thread, if any.
    static WAITING: RefCell<Option<Option<PendingReset>>> = const { RefCell::new(None) };
}

/// The reset [`answer_first`] left waiting: done when this is dropped.
#[derive(Debug)]
#[must_use = "dropping it resets the instance: drop it after the answer is sent"]
pub struct ResetLeft(Option<PendingReset>);

impl ResetLeft {
    /// Whether a reset is waiting.
    pub fn is_waiting(&self) -> bool {
        self.0.is_some()
    }
}

/// Runs `work`, leaving the reset of the last guest call that ends in it on this thread for the
/// caller to drop (see the module's documentation). A scope entered inside another resets the
/// outer scope's waiting call first. If `work` panics, the waiting reset is done as it unwinds.
pub fn answer_first<T>(work: impl FnOnce() -> T) -> (T, ResetLeft) {
    reset_waiting();
    let scope = Scope {
        outer_active: WAITING.with(|waiting| waiting.replace(Some(None)).is_some()),
        left: false,
    };
    let value = work();
    (value, ResetLeft(scope.leave()))
}

/// An entered [`answer_first`]; restores the outer state when left or unwound.
struct Scope {
    outer_active: bool,
    left: bool,
}

impl Scope {
    fn leave(mut self) -> Option<PendingReset> {
        self.left = true;
        self.restore()
    }

    fn restore(&self) -> Option<PendingReset> {
        let outer = self.outer_active.then_some(None);
        WAITING.with(|waiting| waiting.replace(outer)).flatten()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.left {
            drop(self.restore());
        }
    }
}

/// Resets the call waiting on this thread, if any.
pub(crate) fn reset_waiting() {
    let waiting = WAITING.with(|waiting| waiting.borrow_mut().as_mut().and_then(Option::take));
    // Dropped outside the borrow.
    drop(waiting);
}

/// Keeps `pending` waiting when inside [`answer_first`] (resetting the one it replaces), else
/// resets it now.
pub(crate) fn keep_or_reset(pending: PendingReset) {
    let replaced = WAITING.with(|waiting| match waiting.borrow_mut().as_mut() {
        Some(slot) => slot.replace(pending),
        None => Some(pending),
    });
    drop(replaced);
}
