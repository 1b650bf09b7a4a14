//! The archive file's lines: its header, then entries, links and seals.

use super::*;

/// The header line of an archive file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveHeader {
    /// Always [`ARCHIVE_FORMAT`].
    pub format: String,
    /// [`ARCHIVE_VERSION`] when written.
    pub version: u32,
    /// Region of the node whose log this is.
    pub region: String,
    /// First chain position in the file.
    pub from_position: i64,
    /// Last chain position in the file.
    pub to_position: i64,
    /// Chain hash before `from_position`: genesis (64 zeros) or the previous archive's end.
    pub start_prev_hash: String,
    /// Chain hash at `to_position`.
    pub end_chain_hash: String,
    /// Entries in the file (`to_position - from_position + 1`).
    pub count: i64,
    /// When the file was written (UTC).
    pub created_at: String,
}

/// One line after the header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArchiveLine {
    /// An entry with its chain link.
    Entry {
        /// Chain position.
        position: i64,
        /// Entry hash as chained.
        entry_hash: String,
        /// Chain hash at this position.
        chain_hash: String,
        /// When it was chained.
        chained_at: NaiveDateTime,
        /// The audit entry, every column.
        entry: Box<ArchivedEntry>,
    },
    /// A seal at the position of the entry before it.
    Seal {
        /// Position sealed.
        position: i64,
        /// Chain hash sealed.
        chain_hash: String,
        /// Signing key id.
        key_id: String,
        /// Compact JWS.
        signature: String,
        /// When sealed.
        sealed_at: NaiveDateTime,
    },
}

/// Every column of an audit entry, as archived: the stored record itself
/// (serialised with every field, unknown fields refused when read back).
pub type ArchivedEntry = AuditRecord;
