//! The tamper-evident audit log: sealing the chain head with the node's
//! key, verifying the chain and its seals from genesis (archives first, then
//! the database), and writing sealed segments to archive files.
//!
//! The store chains entries and keeps seals and archive records
//! (`rhip_store::audit_chain`); it knows no keys and no files. This module
//! adds both, and is shared by the scheduled jobs (`jobs.rs`) and the
//! `rhip audit seal|verify|archive` commands.
//!
//! A seal is a compact JWS (`typ` [`SEAL_TYPE`]) over [`SealClaims`]. It is
//! checked against the node's current key and the keys it signed with
//! before a rotation (`keys/previous-*.pem`).
//!
//! An archive is a JSON-lines file ([`ARCHIVE_FORMAT`]): a header line
//! ([`ArchiveHeader`]), then every entry of the segment in chain order with
//! its chain link, each seal right after the entry at its position. Its
//! SHA-256 is recorded in `audit_archives` when the archived rows are
//! removed, so a changed byte is found even where it changes no hash.
//!
//! Verification streams: it pages through the database a thousand links at
//! a time and reads archives line by line, so it holds no more than a page
//! in memory however long the log is.
//!
//! `seal.rs` signs chain heads (and holds the chainer and sealer jobs),
//! `format.rs` the archive file's lines, `verify.rs` the walk from genesis,
//! `archive.rs` writing archives and removing what they hold.

use anyhow::Context;
use chrono::{NaiveDateTime, SubsecRound};
use rhip_auth::{JwsError, NodeKey, PeerKeys};
use rhip_core::RegionCode;
use rhip_store::{
    audit_chain_hash, audit_entry_hash, AuditArchive, AuditFence, AuditRecord, AuditSeal, ChainLink, ChainRun,
    NewAuditEntry, Store, StoreError, GENESIS_CHAIN_HASH,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// JWS `typ` of a seal, so a seal is never mistaken for a token or a batch manifest.
pub const SEAL_TYPE: &str = "rhip-audit-seal+jws";

/// `format` of an archive file's header.
pub const ARCHIVE_FORMAT: &str = "rhip-audit-archive";

/// Version of the archive format this code writes and reads.
pub const ARCHIVE_VERSION: u32 = 1;

/// Links (and seals) read from the database per page.
const PAGE: i64 = 1_000;

/// Problems kept in a report; the count covers all of them.
const KEPT_PROBLEMS: usize = 100;

mod archive;
mod format;
mod seal;
mod verify;

pub use archive::*;
pub use format::*;
pub use seal::*;
pub use verify::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> RegionCode {
        RegionCode::parse("330106").unwrap()
    }

    fn entry(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            id: format!("entry-{seq}"),
            occurred_at: chrono::DateTime::from_timestamp(1_800_000_000 + seq, 0).unwrap().naive_utc(),
            actor: "commission:330106".into(),
            role: Some("commission".into()),
            actor_region: Some("330106".into()),
            facility_code: None,
            action: "read".into(),
            resource_type: "person".into(),
            resource_id: None,
            person_id: None,
            purpose: None,
            outcome: "success".into(),
            http_status: Some(200),
            request_id: None,
            source_ip: None,
            detail: None,
            origin_region: None,
        }
    }

    /// Links for `entries` in order, as the chainer makes them.
    fn chain(entries: &[AuditRecord]) -> Vec<ChainLink> {
        let mut previous = GENESIS_CHAIN_HASH.to_string();
        entries
            .iter()
            .zip(1..)
            .map(|(entry, position)| {
                let entry_hash = audit_entry_hash(entry);
                let chain_hash = audit_chain_hash(&previous, &entry_hash);
                previous.clone_from(&chain_hash);
                ChainLink { position, audit_seq: entry.seq, entry_hash, chain_hash, chained_at: entry.occurred_at }
            })
            .collect()
    }

    fn seal_of(key: &NodeKey, link: &ChainLink) -> AuditSeal {
        let sealed_at = link.chained_at;
        let claims = SealClaims {
            region: "330106".into(),
            position: link.position,
            chain_hash: link.chain_hash.clone(),
            sealed_at: format_time(&sealed_at),
        };
        AuditSeal {
            position: link.position,
            chain_hash: link.chain_hash.clone(),
            key_id: key.key_id().into(),
            signature: key.sign_jws(SEAL_TYPE, &claims).unwrap(),
            sealed_at,
        }
    }

    /// Walks `entries` against `links`, meeting `seals` after their positions.
    fn walk(keys: &PeerKeys, entries: &[Option<AuditRecord>], links: &[ChainLink], seals: &[AuditSeal]) -> Report {
        let mut walk = Walk::new(keys, region());
        for (link, entry) in links.iter().zip(entries) {
            walk.link(link, entry.as_ref(), None);
            for seal in seals.iter().filter(|s| s.position == link.position) {
                walk.seal(seal, None);
            }
        }
        walk.report
    }

    #[test]
    fn an_intact_sealed_chain_passes_and_damage_is_named_at_its_entry() {
        let (key, _) = NodeKey::generate().unwrap();
        let (old, _) = NodeKey::generate().unwrap();
        let keys = seal_keys(region(), &key, std::slice::from_ref(&old));
        let entries: Vec<AuditRecord> = (10..15).map(entry).collect();
        let links = chain(&entries);
        let seals = [seal_of(&old, &links[1]), seal_of(&key, &links[4])];
        let stored: Vec<Option<AuditRecord>> = entries.iter().cloned().map(Some).collect();
        let report = walk(&keys, &stored, &links, &seals);
        assert!(report.intact, "{:?}", report.problems);
        assert_eq!((report.entries_checked, report.seals_checked), (5, 2), "a seal by a previous key verifies");

        // An altered entry is named once, at its own position.
        let mut altered = stored.clone();
        if let Some(entry) = altered[2].as_mut() {
            entry.outcome = "denied".into();
        }
        let report = walk(&keys, &altered, &links, &seals);
        let first = report.first_broken.clone().unwrap();
        assert_eq!((first.kind, first.position, first.audit_seq), (ProblemKind::EntryHash, Some(3), Some(12)));
        assert_eq!(report.problems_total, 1, "{:?}", report.problems);

        // A deleted entry is missing; an entry rewritten with its hash and
        // the links after it recomputed is caught by the next seal.
        let mut deleted = stored.clone();
        deleted[3] = None;
        let first = walk(&keys, &deleted, &links, &seals).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::MissingRow, Some(4)));
        let mut rewritten_entries = entries.clone();
        rewritten_entries[3].actor = "nobody".into();
        let rewritten = chain(&rewritten_entries);
        let stored_rewritten: Vec<Option<AuditRecord>> = rewritten_entries.into_iter().map(Some).collect();
        let first = walk(&keys, &stored_rewritten, &rewritten, &seals).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::SealHash, Some(5)));

        // A seal by a key the node never had.
        let (stranger, _) = NodeKey::generate().unwrap();
        let forged = [seal_of(&stranger, &links[4])];
        let first = walk(&keys, &stored, &links, &forged).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::SealSignature, Some(5)));
        assert!(first.to_string().contains("position 5"), "{first}");
    }

    #[test]
    fn an_archive_line_round_trips_every_column() {
        let mut original = entry(7);
        original.detail = Some("西湖 \"quoted\"\n".into());
        original.occurred_at += chrono::Duration::microseconds(123_456);
        let line = ArchiveLine::Entry {
            position: 1,
            entry_hash: audit_entry_hash(&original),
            chain_hash: GENESIS_CHAIN_HASH.into(),
            chained_at: original.occurred_at,
            entry: Box::new(original.clone()),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(!text.contains('\n'), "one line: {text}");
        let ArchiveLine::Entry { entry, entry_hash, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("not an entry line: {text}")
        };
        let back = *entry;
        assert_eq!(back, original);
        assert_eq!(audit_entry_hash(&back), entry_hash);
    }
}
