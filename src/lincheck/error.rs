//! The checker's errors: a malformed history, a violation (with the path, the ops that
//! cannot be ordered, and the model states the search tried last), or a search that hit
//! its step limit. `Display` writes the explanation a person reads first.

use std::fmt;

use super::history::Entry;

/// Why a history did not check out.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CheckError {
    #[error("malformed history: entry #{index}: {why}")]
    Malformed { index: usize, why: String },
    #[error("{0}")]
    Violation(Box<Violation>),
    /// The search gave up: neither a witness nor a proof of violation within the limit.
    #[error("inconclusive: path {path}: no verdict within {steps} search steps (the limit)")]
    Inconclusive { path: String, steps: u64 },
}

impl CheckError {
    pub fn is_violation(&self) -> bool {
        matches!(self, CheckError::Violation(_))
    }

    pub fn violation(&self) -> Option<&Violation> {
        match self {
            CheckError::Violation(v) => Some(v),
            _ => None,
        }
    }
}

/// Which rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No order of the path's writes fits their real-time order and their replies.
    Writes,
    /// The writes alone have an order, but none that fits what the sessions observed.
    Reads,
}

/// A history that breaks a rule, with what it takes to see why.
#[derive(Clone, Debug)]
pub struct Violation {
    pub path: String,
    pub rule: Rule,
    /// One line: what went wrong.
    pub summary: String,
    /// Indices into the history of the ops that cannot be ordered (the op that got stuck
    /// first, with the ops concurrent with it): a small failing set, not a minimal one.
    pub ops: Vec<usize>,
    /// Those ops as text, in the same order.
    pub ops_text: Vec<String>,
    /// The last model states tried where the search got stuck, as text.
    pub states_tried: Vec<String>,
}

impl Violation {
    pub(crate) fn new(history: &[Entry], path: &str, rule: Rule, summary: String, ops: Vec<usize>, states: Vec<String>) -> Box<Violation> {
        let ops_text = ops.iter().map(|i| format!("#{i} {}", history[*i])).collect();
        Box::new(Violation { path: path.to_string(), rule, summary, ops, ops_text, states_tried: states })
    }

    pub(crate) fn read(history: &[Entry], path: &str, why: &str, ops: Vec<usize>, states: Vec<String>) -> Box<Violation> {
        Violation::new(history, path, Rule::Reads, why.to_string(), ops, states)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.rule {
            Rule::Writes => "writes not linearizable",
            Rule::Reads => "reads not sequentially consistent",
        };
        writeln!(f, "{rule}: path {}: {}", self.path, self.summary)?;
        writeln!(f, "  ops ({}):", self.ops_text.len())?;
        for o in &self.ops_text {
            writeln!(f, "    {o}")?;
        }
        if !self.states_tried.is_empty() {
            writeln!(f, "  last model states tried: {}", self.states_tried.join("; "))?;
        }
        Ok(())
    }
}
