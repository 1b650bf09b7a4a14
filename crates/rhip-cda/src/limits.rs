//! Resource limits for reading untrusted documents, so that no input can make a node spend
//! unbounded memory or time (see [`crate::read`]).

use serde::Serialize;

/// Ceilings checked while reading. The defaults fit every real CDA document we know of
/// (the largest corpus document, a C-CDA transfer summary, is 243 KB with depth 17) with
/// wide margins, and stop hostile ones early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Maximum document size in bytes, checked before anything is parsed (default 32 MiB).
    pub max_bytes: usize,
    /// Maximum element nesting depth, the root being depth 1 (default 256).
    pub max_depth: usize,
    /// Maximum number of attributes on one element, namespace declarations included
    /// (default 64).
    pub max_attributes: usize,
    /// Maximum number of elements in the whole document (default 1 000 000).
    pub max_elements: usize,
}

impl Limits {
    /// 32 MiB: CDA documents with embedded PDFs or images stay well below this.
    pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bytes: Limits::DEFAULT_MAX_BYTES, max_depth: 256, max_attributes: 64, max_elements: 1_000_000 }
    }
}
