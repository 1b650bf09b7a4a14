//! What a caller may see, as the storage layer enforces it.
//!
//! Every read of personal data takes a [`Scope`]; filters are applied in SQL
//! so a search can never return rows outside it.

use rhip_core::RegionCode;

/// The slice of records a caller is entitled to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The node itself (jobs, operators on the command line).
    Node,
    /// A region and its subtree (commissions, auditors).
    Region(RegionCode),
    /// Patients with an encounter at, an identifier assigned by, or a submission from a facility.
    Facility(String),
    /// One person (a resident reading their own record).
    Person(String),
}

/// Outcome of fetching one record under a scope; keeps "not there" apart
/// from "there but not yours" so the caller can answer 404 or 403.
#[derive(Debug, PartialEq)]
pub enum Access<T> {
    /// Found and visible.
    Granted(T),
    /// Exists but lies outside the caller's scope.
    OutOfScope,
    /// Does not exist.
    NotFound,
}
