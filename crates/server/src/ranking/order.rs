//! The order itself: which implementation of a function to try first, from figures, with
//! hysteresis. Pure: no store, no clock.
//!
//! Two keys, in this order:
//! 1. the **tier**: how many of the function's testers the implementation fails on its
//!    current revision, then whether its real calls fail often ([`Policy::failing_share`] of
//!    at least [`Policy::min_live_calls`] calls);
//! 2. the **cost**: the p50 of its successful real calls once there are
//!    [`Policy::min_live_calls`] of them, else the median time of its passing tester calls,
//!    else unknown.
//!
//! Hysteresis: the order starts from the previous one (the list order the first time) and
//! two neighbours change places only when the one behind is in a better tier, or in the same
//! tier and costs less than [`Policy::promote_factor`] (0.8, as WikiLambda) of the one ahead.
//! An unknown cost never overtakes or is overtaken on cost. Each exchange removes one
//! inversion of a strict partial order, so at most n² exchanges happen (n implementations).

use serde::Serialize;

/// The settings of the order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Real calls needed before their figures count (successful ones, for the cost).
    pub min_live_calls: u64,
    /// A challenger must cost less than this share of the one ahead to overtake it.
    pub promote_factor: f64,
    /// Above this share of failed real calls (once there are `min_live_calls`), an
    /// implementation drops a tier.
    pub failing_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_live_calls: 20,
            promote_factor: 0.8,
            failing_share: 0.2,
        }
    }
}

/// Where a cost comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostSource {
    /// The p50 of real calls.
    Live,
    /// The median of passing tester calls.
    Testers,
    /// Nothing measured yet.
    None,
}

/// What is known about one implementation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The implementation's ZID.
    pub implementation: String,
    /// Its current revision (0 outside the store).
    pub revision: u64,
    /// Its position in the function's `Z8K4` (0-based).
    pub listed: usize,
    /// The function's testers.
    pub testers: usize,
    /// Those with a result on this revision.
    pub testers_run: usize,
    /// Those that failed on this revision.
    pub testers_failed: usize,
    /// The median call time of its passing tester runs, in microseconds.
    pub tester_median_us: Option<f64>,
    /// Real calls of this revision.
    pub calls: u64,
    /// Of those, failed ones.
    pub failures: u64,
    /// p50 of its successful real calls, in microseconds.
    pub p50_us: Option<f64>,
    /// p90 of its successful real calls, in microseconds.
    pub p90_us: Option<f64>,
}

impl Figures {
    /// No figures yet.
    pub fn new(implementation: String, revision: u64, listed: usize) -> Self {
        Figures {
            implementation,
            revision,
            listed,
            testers: 0,
            testers_run: 0,
            testers_failed: 0,
            tester_median_us: None,
            calls: 0,
            failures: 0,
            p50_us: None,
            p90_us: None,
        }
    }

    /// Whether its real calls fail too often.
    pub fn failing_live(&self, policy: &Policy) -> bool {
        self.calls >= policy.min_live_calls
            && self.failures as f64 > policy.failing_share * self.calls as f64
    }

    /// Its tier: lower is better.
    pub fn tier(&self, policy: &Policy) -> (usize, bool) {
        (self.testers_failed, self.failing_live(policy))
    }

    /// Its cost in microseconds and where it comes from.
    pub fn cost(&self, policy: &Policy) -> (Option<f64>, CostSource) {
        let successes = self.calls.saturating_sub(self.failures);
        match (self.p50_us, self.tester_median_us) {
            (Some(p50), _) if successes >= policy.min_live_calls => (Some(p50), CostSource::Live),
            (_, Some(median)) => (Some(median), CostSource::Testers),
            _ => (None, CostSource::None),
        }
    }

    /// Whether it has enough real calls for its live figures to count.
    pub fn has_live_figures(&self, policy: &Policy) -> bool {
        self.calls.saturating_sub(self.failures) >= policy.min_live_calls
    }
}

/// Whether `challenger` should be ahead of `incumbent`.
fn overtakes(challenger: &Figures, incumbent: &Figures, policy: &Policy) -> bool {
    let (ct, it) = (challenger.tier(policy), incumbent.tier(policy));
    if ct != it {
        return ct < it;
    }
    match (challenger.cost(policy).0, incumbent.cost(policy).0) {
        (Some(c), Some(i)) => c < policy.promote_factor * i,
        _ => false,
    }
}

/// The order of `figures` (indices), starting from `previous` (indices of `figures`; any
/// missing are appended in list order, unknown ones dropped).
pub fn rank(figures: &[Figures], previous: &[usize], policy: &Policy) -> Vec<usize> {
    let n = figures.len();
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    for &i in previous {
        if i < n && !placed[i] {
            placed[i] = true;
            order.push(i);
        }
    }
    order.extend((0..n).filter(|&i| !placed[i]));
    loop {
        let mut moved = false;
        for k in 1..order.len() {
            if overtakes(&figures[order[k]], &figures[order[k - 1]], policy) {
                order.swap(k, k - 1);
                moved = true;
            }
        }
        if !moved {
            return order;
        }
    }
}

fn millis(us: f64) -> String {
    if us >= 1_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// One implementation's figures in words.
pub fn describe(f: &Figures, policy: &Policy) -> String {
    let mut parts = Vec::new();
    if f.testers == 0 {
        parts.push("the function has no testers".to_owned());
    } else if f.testers_run == 0 {
        parts.push(format!("no tester has run on revision {}", f.revision));
    } else if f.testers_failed == 0 {
        parts.push(format!("passes {} of {} testers", f.testers_run, f.testers));
    } else {
        parts.push(format!(
            "fails {} of {} testers",
            f.testers_failed, f.testers
        ));
    }
    if f.failing_live(policy) {
        parts.push(format!("{} of {} real calls failed", f.failures, f.calls));
    }
    match f.cost(policy) {
        (Some(cost), CostSource::Live) => parts.push(format!(
            "live p50 {} over {} calls",
            millis(cost),
            f.calls.saturating_sub(f.failures)
        )),
        (Some(cost), CostSource::Testers) => parts.push(format!(
            "tester median {} ({} real calls, fewer than the {} needed)",
            millis(cost),
            f.calls.saturating_sub(f.failures),
            policy.min_live_calls
        )),
        _ => parts.push("not measured yet".to_owned()),
    }
    parts.join("; ")
}

/// Why the first of `order` is first, in one sentence.
pub fn reason(figures: &[Figures], order: &[usize], policy: &Policy) -> String {
    let Some(&first) = order.first() else {
        return "the function has no implementations".into();
    };
    let leader = &figures[first];
    let mut text = format!(
        "{} is first: {}",
        leader.implementation,
        describe(leader, policy)
    );
    if let Some(&second) = order.get(1) {
        let next = &figures[second];
        let why = if leader.tier(policy) < next.tier(policy) {
            "it fails fewer testers or real calls".to_owned()
        } else {
            match (leader.cost(policy).0, next.cost(policy).0) {
                (Some(a), Some(b)) if a < policy.promote_factor * b => format!(
                    "it costs {} against {}, less than {}×",
                    millis(a),
                    millis(b),
                    policy.promote_factor
                ),
                (Some(_), Some(_)) => format!(
                    "it was ahead and {} does not cost less than {}× of it",
                    next.implementation, policy.promote_factor
                ),
                _ => "without figures for both, the earlier order stays".to_owned(),
            }
        };
        text.push_str(&format!("; ahead of {} because {why}", next.implementation));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(zid: &str, listed: usize, failed: usize, median: Option<f64>) -> Figures {
        Figures {
            testers: 2,
            testers_run: 2,
            testers_failed: failed,
            tester_median_us: median,
            ..Figures::new(zid.into(), 1, listed)
        }
    }

    #[test]
    fn passing_testers_come_before_cost() {
        let policy = Policy::default();
        let f = [
            figures("Z1", 0, 1, Some(10.0)),
            figures("Z2", 1, 0, Some(1_000.0)),
        ];
        assert_eq!(rank(&f, &[], &policy), vec![1, 0]);
    }

    #[test]
    fn a_challenger_must_cost_less_than_four_fifths() {
        let policy = Policy::default();
        let close = [
            figures("Z1", 0, 0, Some(1_000.0)),
            figures("Z2", 1, 0, Some(850.0)),
        ];
        assert_eq!(rank(&close, &[], &policy), vec![0, 1]);
        let far = [
            figures("Z1", 0, 0, Some(1_000.0)),
            figures("Z2", 1, 0, Some(700.0)),
        ];
        assert_eq!(rank(&far, &[], &policy), vec![1, 0]);
        // Once ahead, the same figures keep it ahead; it takes a 0.8× change to flip back.
        let drifted = [
            figures("Z1", 0, 0, Some(900.0)),
            figures("Z2", 1, 0, Some(1_000.0)),
        ];
        assert_eq!(rank(&drifted, &[1, 0], &policy), vec![1, 0]);
    }

    #[test]
    fn live_figures_replace_tester_figures_once_there_are_enough() {
        let policy = Policy::default();
        let mut slow_live = figures("Z1", 0, 0, Some(100.0));
        slow_live.calls = 25;
        slow_live.p50_us = Some(5_000.0);
        let fast = figures("Z2", 1, 0, Some(1_000.0));
        assert_eq!(slow_live.cost(&policy), (Some(5_000.0), CostSource::Live));
        assert_eq!(rank(&[slow_live, fast], &[], &policy), vec![1, 0]);
    }

    #[test]
    fn failing_real_calls_count_against_an_implementation() {
        let policy = Policy::default();
        let mut flaky = figures("Z1", 0, 0, Some(10.0));
        flaky.calls = 30;
        flaky.failures = 10;
        let steady = figures("Z2", 1, 0, Some(1_000.0));
        assert!(flaky.failing_live(&policy));
        assert_eq!(rank(&[flaky, steady], &[], &policy), vec![1, 0]);
    }

    #[test]
    fn unknown_costs_keep_the_list_order_and_any_order_terminates() {
        let policy = Policy::default();
        let f = [
            figures("Z1", 0, 0, None),
            figures("Z2", 1, 0, Some(1.0)),
            figures("Z3", 2, 0, None),
        ];
        assert_eq!(rank(&f, &[], &policy), vec![0, 1, 2]);
        let many: Vec<Figures> = (0..200)
            .map(|i| figures(&format!("Z{i}"), i, i % 3, Some(((i * 7919) % 1000) as f64)))
            .collect();
        let order = rank(&many, &[5, 5, 999], &policy);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>());
        for pair in order.windows(2) {
            assert!(!overtakes(&many[pair[1]], &many[pair[0]], &policy));
        }
    }

    #[test]
    fn the_reason_names_both_figures() {
        let policy = Policy::default();
        let f = [
            figures("Z1", 0, 0, Some(20_000.0)),
            figures("Z2", 1, 0, Some(300.0)),
        ];
        let order = rank(&f, &[], &policy);
        let why = reason(&f, &order, &policy);
        assert!(
            why.starts_with("Z2 is first: passes 2 of 2 testers"),
            "{why}"
        );
        assert!(why.contains("300 µs against 20.00 ms"), "{why}");
    }
}
