//! Per-case results and the summary every runner prints.

use serde::Serialize;

/// The outcome of one conformance case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Stable identifier, unique within its suite, e.g. `normal_zobject/Z8.yaml#failure/3`.
    /// `docs/deviations.md` names failing cases by this id.
    pub id: String,
    /// Human-readable name from the suite.
    pub name: String,
    /// The group the case is counted under (usually the file it came from).
    pub group: String,
    /// Whether every pass rule held.
    pub passed: bool,
    /// What differed, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// All case results of one suite run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The suite name: `schemata`, `evaluator` or `orchestrator`.
    pub suite: String,
    /// Every case that ran (skipped cases are not included).
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// A report with no cases yet.
    pub fn new(suite: &str) -> Self {
        Report {
            suite: suite.to_string(),
            cases: Vec::new(),
        }
    }

    /// Records one case.
    pub fn push(&mut self, group: &str, id: String, name: String, outcome: Result<(), String>) {
        let (passed, detail) = match outcome {
            Ok(()) => (true, None),
            Err(d) => (false, Some(d)),
        };
        self.cases.push(CaseResult {
            id,
            name,
            group: group.to_string(),
            passed,
            detail,
        });
    }

    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    /// The failing cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.passed)
    }

    /// Human-readable summary: counts per group, failures by name, and the last line
    /// `conformance <suite>: P/T cases pass`.
    pub fn summary(&self) -> String {
        let mut groups: Vec<(&str, usize, usize)> = Vec::new();
        for c in &self.cases {
            match groups.iter_mut().find(|(g, _, _)| *g == c.group) {
                Some(entry) => {
                    entry.1 += usize::from(c.passed);
                    entry.2 += 1;
                }
                None => groups.push((&c.group, usize::from(c.passed), 1)),
            }
        }
        let mut out = String::new();
        for (group, passed, total) in groups {
            out.push_str(&format!("{group}: {passed}/{total}\n"));
        }
        for c in self.failures() {
            let detail = c.detail.as_deref().unwrap_or("");
            out.push_str(&format!(
                "FAIL {} ({}): {}\n",
                c.id,
                c.name,
                truncate(detail, 400)
            ));
        }
        out.push_str(&format!(
            "conformance {}: {}/{} cases pass",
            self.suite,
            self.passed(),
            self.cases.len()
        ));
        out
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
