//! What was wrong with a document, said so that the sender can fix it: every problem names
//! the element by an XPath-like path and says what was expected there.

use serde::Serialize;

/// One thing wrong with a document.
///
/// The path (`/ClinicalDocument/recordTarget/patientRole/id`) lets a hospital's integration
/// engineer find the element without guessing; indices are 1-based as in XPath and only
/// written where an element repeats (`section[2]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: the element (or `@attribute`) the problem is about.
    pub path: String,
    /// What was expected there, or what went wrong, in one sentence.
    pub expected: String,
}

impl Problem {
    /// A problem at `path`, expecting `expected`.
    pub fn new(path: impl Into<String>, expected: impl Into<String>) -> Problem {
        Problem { path: path.into(), expected: expected.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.expected)
    }
}

/// Why [`crate::read`] refused a document: it could not (or must not) be read at all.
///
/// Always carries at least one [`Problem`]; reading stops at the first structural problem,
/// so there is usually exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("CDA document refused: {}", summary(.problems))]
pub struct Rejected {
    /// What was wrong, each with the path of the element.
    pub problems: Vec<Problem>,
}

impl Rejected {
    /// A rejection for one problem.
    pub fn one(path: impl Into<String>, expected: impl Into<String>) -> Rejected {
        Rejected { problems: vec![Problem::new(path, expected)] }
    }
}

/// The problems joined with `; ` for the error message.
fn summary(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}
