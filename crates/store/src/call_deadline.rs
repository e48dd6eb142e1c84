//! The deadline of the call this thread is working for, which every wait of the store on
//! this thread ends by.
//!
//! A call's fetches take its deadline explicitly ([`crate::ObjectSource::fetch_before`]), but
//! a call reads the store in many other places too: the approval checks of its
//! implementations, the ranking's figures and testers, compiled artifacts, the `/metrics`
//! label of its function. Each of those waited for a read connection up to the store's own
//! bound ([`crate::READ_WAIT`], 5 s; PostgreSQL's [`crate::POOL_WAIT`], 10 s), however little
//! of the call's time was left: a request outlived its deadline by that much per read. The
//! server runs each call [`within`] its deadline instead, and every wait for a read
//! connection on that thread ends by it ([`crate::StoreError::DeadlineExceeded`]). On
//! PostgreSQL a statement still running at the deadline is cancelled too; on SQLite a read
//! that found a connection runs to its end. Writes are left alone ([`without`]): cut, they
//! would only be undone.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `work` with the store's waits on this thread ending by `deadline` (or by an earlier
/// deadline already in force: a call nested in another keeps the outer one's).
pub fn within<T>(deadline: Instant, work: impl FnOnce() -> T) -> T {
    let outer = DEADLINE.with(Cell::get);
    let _restore = Restore(outer);
    DEADLINE.with(|cell| cell.set(Some(outer.map_or(deadline, |outer| outer.min(deadline)))));
    work()
}

/// Runs `work` with no deadline in force on this thread (a write, which a cut would only
/// undo).
pub fn without<T>(work: impl FnOnce() -> T) -> T {
    let outer = DEADLINE.with(Cell::get);
    let _restore = Restore(outer);
    DEADLINE.with(|cell| cell.set(None));
    work()
}

/// The deadline in force on this thread, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// The earlier of `deadline` and the one in force on this thread.
pub(crate) fn earliest(deadline: Option<Instant>) -> Option<Instant> {
    match (deadline, current()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Puts the outer deadline back, also when the work panics.
struct Restore(Option<Instant>);

impl Drop for Restore {
    fn drop(&mut self) {
        DEADLINE.with(|cell| cell.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_deadline_holds_within_and_the_earlier_one_wins() {
        assert_eq!(current(), None);
        let soon = Instant::now() + Duration::from_secs(1);
        let later = soon + Duration::from_secs(1);
        within(soon, || {
            assert_eq!(current(), Some(soon));
            within(later, || assert_eq!(current(), Some(soon)));
            assert_eq!(earliest(Some(later)), Some(soon));
            assert_eq!(earliest(None), Some(soon));
        });
        assert_eq!(current(), None);
        assert_eq!(earliest(Some(later)), Some(later));
        let caught = std::panic::catch_unwind(|| within(soon, || panic!("a bug")));
        assert!(caught.is_err());
        assert_eq!(current(), None, "restored after a panic");
        within(soon, || {
            without(|| assert_eq!(current(), None));
            assert_eq!(current(), Some(soon));
        });
    }
}
