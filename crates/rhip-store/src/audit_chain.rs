//! The audit log's hash chain, its seals and its archives: the SQL side.
//!
//! Entries are appended to `audit_log` inside their callers' transactions
//! with no lock, so auditing never makes a hot row or a deadlock. The
//! **chainer** ([`Store::chain_audit`]) later gives committed entries their
//! place in the chain (`audit_chain.position`, contiguous from 1), in `seq`
//! order, in short transactions of its own. The chain's order is `position`,
//! not `seq`: on PostgreSQL a lower `seq` can commit after a higher one, and
//! the chainer only ever sees committed rows, so nothing is skipped; it just
//! lands later in the chain.
//!
//! To find unchained entries without scanning the whole log every run, the
//! chainer keeps a **watermark** (`node_meta` key `audit_chain_watermark`):
//! every `audit_log` row with `seq` at or below it is chained, and no row at
//! or below it can still appear. On SQLite (one writer, commits in `seq`
//! order) the watermark follows the chain. On PostgreSQL a row may still be
//! in flight below the highest committed `seq`, so the chainer takes an
//! [`AuditFence`]: the identity sequence's last value and the transactions
//! that hold a row lock on `audit_log` at that moment (every transaction
//! that drew a `seq` takes that lock first). Once none of them is open any
//! more, every `seq` up to the fence is committed or gone for good, and the
//! watermark may move up to it.
//!
//! Seals are signed outside the store (it knows no keys): this module only
//! stores and reads them. Archives are written to files by the caller; this
//! module records them and removes the archived rows, which the database's
//! triggers allow for archived positions only.

use crate::audit::AuditRecord;
use crate::conn::Direct;
use crate::schema::{audit_archives, audit_chain, audit_log, audit_seals, node_meta};
use crate::{DbConn, Store, StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// The chain hash before the first entry: 64 zeros.
pub const GENESIS_CHAIN_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// First element of an entry's canonical encoding; a new encoding gets a new tag.
const ENTRY_ENCODING: &str = "rhip-audit-entry/1";

/// The `node_meta` key of the chainer's watermark.
const WATERMARK_KEY: &str = "audit_chain_watermark";

/// Entries chained per transaction.
const CHAIN_BATCH: i64 = 1_000;

/// The canonical encoding of an audit entry that its hash covers: a JSON
/// array of an encoding tag and every column in a fixed order, `null` for an
/// absent value, the time as `YYYY-MM-DDTHH:MM:SS.fffffffff` (UTC). JSON
/// strings are unambiguous (quoted and escaped), so no two different rows
/// encode alike. An entry received from another node ends with the region
/// that recorded it; entries recorded here have no such element, so chains
/// written before entries travelled keep their hashes.
pub fn audit_entry_encoding(entry: &AuditRecord) -> String {
    let mut encoding = serde_json::json!([
        ENTRY_ENCODING,
        entry.seq,
        entry.id,
        entry.occurred_at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string(),
        entry.actor,
        entry.role,
        entry.actor_region,
        entry.facility_code,
        entry.action,
        entry.resource_type,
        entry.resource_id,
        entry.person_id,
        entry.purpose,
        entry.outcome,
        entry.http_status,
        entry.request_id,
        entry.source_ip,
        entry.detail,
    ]);
    if let (Some(origin), Some(array)) = (&entry.origin_region, encoding.as_array_mut()) {
        array.push(serde_json::Value::String(origin.clone()));
    }
    encoding.to_string()
}

/// SHA-256 (lower-case hex) of an entry's canonical encoding: what
/// `audit_chain.entry_hash` holds and what verification recomputes.
pub fn audit_entry_hash(entry: &AuditRecord) -> String {
    hex::encode(Sha256::digest(audit_entry_encoding(entry).as_bytes()))
}

/// SHA-256 (lower-case hex) of the previous chain hash followed by the entry
/// hash, both as their 64 hex characters: the link that makes the chain.
pub fn audit_chain_hash(previous: &str, entry_hash: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(previous.as_bytes());
    digest.update(entry_hash.as_bytes());
    hex::encode(digest.finalize())
}

/// One entry's place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_chain)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ChainLink {
    /// Place in the chain, contiguous from 1.
    pub position: i64,
    /// The `audit_log.seq` of the entry.
    pub audit_seq: i64,
    /// SHA-256 of the entry's canonical encoding ([`audit_entry_hash`]).
    pub entry_hash: String,
    /// [`audit_chain_hash`] of the previous link's chain hash and this entry hash.
    pub chain_hash: String,
    /// When the chainer linked it (UTC).
    pub chained_at: NaiveDateTime,
}

/// A chain link with its entry, or `None` when the entry is gone from
/// `audit_log` (deleted behind the triggers' back).
#[derive(Clone, Debug, PartialEq)]
pub struct ChainedEntry {
    /// The link.
    pub link: ChainLink,
    /// The entry it covers.
    pub entry: Option<AuditRecord>,
}

/// The newest position of the chain and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Last position.
    pub position: i64,
    /// Chain hash at it.
    pub chain_hash: String,
}

/// A seal: the node's signature over the chain hash at a position.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_seals)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditSeal {
    /// The chain position sealed up to.
    pub position: i64,
    /// The chain hash at that position.
    pub chain_hash: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Compact JWS over the seal's claims.
    pub signature: String,
    /// When it was sealed (UTC).
    pub sealed_at: NaiveDateTime,
}

/// A chain segment written to an archive file and removed from the database.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_archives)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditArchive {
    /// Archive id (UUIDv7).
    pub id: String,
    /// First chain position in the file.
    pub from_position: i64,
    /// Last chain position in the file.
    pub to_position: i64,
    /// Chain hash before `from_position` (genesis or the previous archive's end).
    pub start_prev_hash: String,
    /// Chain hash at `to_position`.
    pub end_chain_hash: String,
    /// The file's name as written.
    pub file_name: String,
    /// SHA-256 (hex) of the whole file.
    pub file_sha256: String,
    /// When it was recorded (UTC).
    pub archived_at: NaiveDateTime,
}

/// A point in the audit log's sequence and the transactions that may still
/// commit entries at or below it (PostgreSQL; on SQLite there are none).
/// Pass the fence a chaining run returns to the next run: once those
/// transactions have ended, the watermark may move up to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFence {
    seq: i64,
    open: Vec<String>,
}

/// What one chaining run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRun {
    /// Entries given a place in the chain now.
    pub chained: u64,
    /// The chain's head after the run (none while the log is empty).
    pub head: Option<ChainHead>,
    /// The watermark after the run.
    pub watermark: i64,
    /// The fence to pass to the next run.
    pub fence: AuditFence,
}

#[derive(QueryableByName)]
struct SeqValue {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = diesel::sql_types::Text)]
    vxid: String,
}

impl Store {
    /// Chains every committed, unchained audit entry (in `seq` order, a
    /// thousand per transaction) and moves the watermark up to the highest
    /// fence that has settled: `previous` (from the last run) or the one
    /// taken now. Safe to run from several processes: on PostgreSQL each
    /// transaction locks `audit_chain` first, so chainers take turns.
    pub fn chain_audit(&self, previous: Option<&AuditFence>) -> Result<ChainRun, StoreError> {
        let fence = self.read(|tx| tx.audit_fence())?;
        let mut chained = 0;
        // Within one run, later batches start after the previous batch's last
        // seq; an entry that commits below it meanwhile is found by the next
        // run, which starts again at the watermark.
        let mut after = None;
        loop {
            let (added, last) = self.write(|tx| tx.chain_audit_batch(after, CHAIN_BATCH))?;
            chained += added;
            if added < CHAIN_BATCH as u64 {
                break;
            }
            after = last;
        }
        let (head, watermark) = self.write(|tx| {
            tx.lock_audit_chain()?;
            let open_now = tx.audit_writers()?;
            let settled = [previous, Some(&fence)]
                .into_iter()
                .flatten()
                .filter(|f| f.open.iter().all(|writer| !open_now.contains(writer)))
                .map(|f| f.seq)
                .max();
            let mut watermark = tx.audit_chain_watermark()?;
            if let Some(settled) = settled.filter(|s| *s > watermark) {
                // Entries those writers committed since the batches above.
                tx.chain_audit_batch(None, CHAIN_BATCH)?;
                if tx.unchained_audit_between(watermark, settled, 1)?.is_empty() {
                    tx.set_audit_chain_watermark(settled)?;
                    watermark = settled;
                }
            }
            Ok((tx.audit_chain_head()?, watermark))
        })?;
        Ok(ChainRun { chained, head, watermark, fence })
    }
}

impl Tx<'_> {
    /// On PostgreSQL, takes `audit_chain` for this transaction so that one
    /// chainer (or archiver) works at a time; readers are not blocked.
    fn lock_audit_chain(&mut self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        if let DbConn::Pg(conn) = &mut *self.conn {
            conn.batch_execute("LOCK TABLE audit_chain IN EXCLUSIVE MODE")?;
        }
        Ok(())
    }

    /// The fence now: the highest `seq` handed out, and the transactions
    /// that may still commit entries (those holding a row lock on
    /// `audit_log`). The sequence is read first: a transaction takes its
    /// lock before it draws a `seq`, so any that drew one at or below the
    /// fence either has ended or is in the list. This holds while the
    /// identity sequence hands out one value at a time (`CACHE 1`, the
    /// default the migration keeps): a session-cached value could be drawn
    /// by a transaction that starts after the fence.
    fn audit_fence(&mut self) -> Result<AuditFence, StoreError> {
        match self.conn {
            DbConn::Pg(_) => {
                let seq = diesel::sql_query(
                    "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('audit_log', 'seq')::regclass), 0) \
                     AS seq",
                )
                .fetch_one::<SeqValue>(self.conn)?
                .seq;
                Ok(AuditFence { seq, open: self.audit_writers()? })
            }
            DbConn::Sqlite(_) => {
                let seq =
                    audit_log::table.select(diesel::dsl::max(audit_log::seq)).fetch_one::<Option<i64>>(self.conn)?;
                Ok(AuditFence { seq: seq.unwrap_or(0), open: Vec::new() })
            }
        }
    }

    /// Transactions (other than this one) holding a row lock on `audit_log`
    /// now, by virtual transaction id; always none on SQLite.
    fn audit_writers(&mut self) -> Result<Vec<String>, StoreError> {
        if let DbConn::Sqlite(_) = self.conn {
            return Ok(Vec::new());
        }
        Ok(diesel::sql_query(
            "SELECT virtualtransaction AS vxid FROM pg_locks \
             WHERE locktype = 'relation' AND relation = 'audit_log'::regclass \
             AND mode = 'RowExclusiveLock' AND pid IS DISTINCT FROM pg_backend_pid()",
        )
        .fetch_all::<Holder>(self.conn)?
        .into_iter()
        .map(|h| h.vxid)
        .collect())
    }

    /// Gives up to `limit` committed, unchained entries above the watermark
    /// (and above `after`) their places after the head; returns how many and
    /// the last `seq` chained.
    fn chain_audit_batch(&mut self, after: Option<i64>, limit: i64) -> Result<(u64, Option<i64>), StoreError> {
        self.lock_audit_chain()?;
        let floor = self.audit_chain_watermark()?.max(after.unwrap_or(0));
        let pending: Vec<AuditRecord> = audit_log::table
            .filter(audit_log::seq.gt(floor))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                audit_chain::table.filter(audit_chain::audit_seq.eq(audit_log::seq)),
            )))
            .order(audit_log::seq.asc())
            .limit(limit)
            .select(AuditRecord::as_select())
            .load(self.conn)?;
        let Some(last) = pending.last().map(|entry| entry.seq) else {
            return Ok((0, None));
        };
        let head = self.audit_chain_head()?;
        let (mut position, mut previous) =
            head.map_or((0, GENESIS_CHAIN_HASH.to_string()), |head| (head.position, head.chain_hash));
        let chained_at = crate::now();
        let links: Vec<ChainLink> = pending
            .iter()
            .map(|entry| {
                position += 1;
                let entry_hash = audit_entry_hash(entry);
                let chain_hash = audit_chain_hash(&previous, &entry_hash);
                previous.clone_from(&chain_hash);
                ChainLink { position, audit_seq: entry.seq, entry_hash, chain_hash, chained_at }
            })
            .collect();
        // Multi-row inserts are per backend: the multi-backend connection has none.
        for chunk in links.chunks(500) {
            match &mut *self.conn {
                DbConn::Pg(conn) => diesel::insert_into(audit_chain::table).values(chunk).execute(conn)?,
                DbConn::Sqlite(conn) => diesel::insert_into(audit_chain::table).values(chunk).execute(conn)?,
            };
        }
        Ok((links.len() as u64, Some(last)))
    }

    /// The chainer's watermark: every entry with `seq` at or below it is
    /// chained (or archived), and none can still appear there.
    pub fn audit_chain_watermark(&mut self) -> Result<i64, StoreError> {
        let value: Option<String> = node_meta::table
            .filter(node_meta::key.eq(WATERMARK_KEY))
            .select(node_meta::value)
            .fetch_one(self.conn)
            .optional()?;
        match value {
            None => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("node_meta {WATERMARK_KEY} is not a number: {text:?}"))),
        }
    }

    fn set_audit_chain_watermark(&mut self, seq: i64) -> Result<(), StoreError> {
        let updated = diesel::update(node_meta::table.filter(node_meta::key.eq(WATERMARK_KEY)))
            .set(node_meta::value.eq(seq.to_string()))
            .run(self.conn)?;
        if updated == 0 {
            diesel::insert_into(node_meta::table)
                .values((node_meta::key.eq(WATERMARK_KEY), node_meta::value.eq(seq.to_string())))
                .run(self.conn)?;
        }
        Ok(())
    }

    /// The chain's head: its last link, or the end of the last archive when
    /// every link has been archived; none before the first entry is chained.
    pub fn audit_chain_head(&mut self) -> Result<Option<ChainHead>, StoreError> {
        let link: Option<(i64, String)> = audit_chain::table
            .order(audit_chain::position.desc())
            .select((audit_chain::position, audit_chain::chain_hash))
            .first(self.conn)
            .optional()?;
        if let Some((position, chain_hash)) = link {
            return Ok(Some(ChainHead { position, chain_hash }));
        }
        Ok(self.last_audit_archive()?.map(|a| ChainHead { position: a.to_position, chain_hash: a.end_chain_hash }))
    }

    /// Up to `limit` links after `after_position`, in order, each with its
    /// entry (none when the entry is missing): verification and archiving
    /// page through the chain with this.
    pub fn audit_chain_after(&mut self, after_position: i64, limit: i64) -> Result<Vec<ChainedEntry>, StoreError> {
        let rows: Vec<(ChainLink, Option<AuditRecord>)> = audit_chain::table
            .left_join(audit_log::table)
            .filter(audit_chain::position.gt(after_position))
            .order(audit_chain::position.asc())
            .limit(limit)
            .select((ChainLink::as_select(), Option::<AuditRecord>::as_select()))
            .load(self.conn)?;
        Ok(rows.into_iter().map(|(link, entry)| ChainedEntry { link, entry }).collect())
    }

    /// The link at `position`, if it is in the database.
    pub fn audit_chain_link(&mut self, position: i64) -> Result<Option<ChainLink>, StoreError> {
        Ok(audit_chain::table
            .filter(audit_chain::position.eq(position))
            .select(ChainLink::as_select())
            .get_result(self.conn)
            .optional()?)
    }

    /// Up to `limit` entries that are not in the chain, with `seq` above
    /// `above` and at most `at_most`, lowest first. Below the watermark such
    /// an entry was slipped in behind the chain; above it, it is waiting.
    pub fn unchained_audit_between(
        &mut self,
        above: i64,
        at_most: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(audit_log::table
            .filter(audit_log::seq.gt(above))
            .filter(audit_log::seq.le(at_most))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                audit_chain::table.filter(audit_chain::audit_seq.eq(audit_log::seq)),
            )))
            .order(audit_log::seq.asc())
            .limit(limit)
            .select(AuditRecord::as_select())
            .load(self.conn)?)
    }

    /// How many entries above `above` are not chained yet (the tail the
    /// next chaining run picks up).
    pub fn count_unchained_audit(&mut self, above: i64) -> Result<i64, StoreError> {
        Ok(audit_log::table
            .filter(audit_log::seq.gt(above))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                audit_chain::table.filter(audit_chain::audit_seq.eq(audit_log::seq)),
            )))
            .count()
            .fetch_one(self.conn)?)
    }

    /// The newest seal.
    pub fn last_audit_seal(&mut self) -> Result<Option<AuditSeal>, StoreError> {
        Ok(audit_seals::table
            .order(audit_seals::position.desc())
            .select(AuditSeal::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Up to `limit` seals after `after_position`, in order.
    pub fn audit_seals_after(&mut self, after_position: i64, limit: i64) -> Result<Vec<AuditSeal>, StoreError> {
        Ok(audit_seals::table
            .filter(audit_seals::position.gt(after_position))
            .order(audit_seals::position.asc())
            .limit(limit)
            .select(AuditSeal::as_select())
            .load(self.conn)?)
    }

    /// Stores a seal made by the caller. Refused with a conflict when that
    /// position is already sealed, and as corrupt when the seal's hash is not
    /// the chain's at its position (a seal must never vouch for another chain).
    pub fn insert_audit_seal(&mut self, seal: &AuditSeal) -> Result<(), StoreError> {
        let link = self.audit_chain_link(seal.position)?;
        match link {
            Some(link) if link.chain_hash == seal.chain_hash => {}
            Some(_) => {
                return Err(StoreError::Corrupt(format!(
                    "seal of position {} names a chain hash the chain does not have there",
                    seal.position
                )))
            }
            None => return Err(StoreError::NotFound(format!("audit chain position {}", seal.position))),
        }
        diesel::insert_into(audit_seals::table).values(seal).run(self.conn)?;
        Ok(())
    }

    /// Every recorded archive, oldest first (there are few: one per archive run).
    pub fn audit_archives(&mut self) -> Result<Vec<AuditArchive>, StoreError> {
        Ok(audit_archives::table
            .order(audit_archives::from_position.asc())
            .select(AuditArchive::as_select())
            .load(self.conn)?)
    }

    /// The newest recorded archive.
    pub fn last_audit_archive(&mut self) -> Result<Option<AuditArchive>, StoreError> {
        Ok(audit_archives::table
            .order(audit_archives::to_position.desc())
            .select(AuditArchive::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Records an archive written by the caller and removes the archived
    /// entries and links; returns how many entries were removed. Checked
    /// first, under the chain lock: the segment starts right after the last
    /// archive, its hashes are the chain's, and a seal covers its end.
    /// Anything else is refused as a conflict and nothing changes.
    pub fn record_audit_archive(&mut self, archive: &AuditArchive) -> Result<u64, StoreError> {
        self.lock_audit_chain()?;
        let (expected_from, expected_prev) = match self.last_audit_archive()? {
            Some(last) => (last.to_position + 1, last.end_chain_hash),
            None => (1, GENESIS_CHAIN_HASH.to_string()),
        };
        if archive.from_position != expected_from || archive.start_prev_hash != expected_prev {
            return Err(StoreError::Conflict(format!(
                "the archive must start at chain position {expected_from} (another archive was recorded meanwhile?)"
            )));
        }
        if archive.to_position < archive.from_position {
            return Err(StoreError::Conflict("the archive holds no entries".into()));
        }
        let end = self.audit_chain_link(archive.to_position)?;
        if end.map(|link| link.chain_hash) != Some(archive.end_chain_hash.clone()) {
            return Err(StoreError::Conflict(format!(
                "the archive's end hash is not the chain's at position {}",
                archive.to_position
            )));
        }
        let sealed = self.last_audit_seal()?.map_or(0, |seal| seal.position);
        if sealed < archive.to_position {
            return Err(StoreError::Conflict(format!(
                "position {} is not sealed yet (last seal at {sealed})",
                archive.to_position
            )));
        }
        diesel::insert_into(audit_archives::table).values(archive).run(self.conn)?;
        let range = audit_chain::position.between(archive.from_position, archive.to_position);
        let removed = diesel::delete(
            audit_log::table
                .filter(audit_log::seq.eq_any(audit_chain::table.filter(range).select(audit_chain::audit_seq))),
        )
        .run(self.conn)?;
        diesel::delete(audit_chain::table.filter(range)).run(self.conn)?;
        Ok(removed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditRecord {
        AuditRecord {
            seq: 7,
            id: "0190b6c4-0000-7000-8000-000000000001".into(),
            occurred_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .and_then(|d| d.and_hms_micro_opt(8, 30, 5, 120_000))
                .unwrap_or_default(),
            actor: "commission:330106".into(),
            role: Some("commission".into()),
            actor_region: Some("330106".into()),
            facility_code: None,
            action: "read".into(),
            resource_type: "person".into(),
            resource_id: Some("p1".into()),
            person_id: Some("p1".into()),
            purpose: None,
            outcome: "success".into(),
            http_status: Some(200),
            request_id: Some("r1".into()),
            source_ip: Some("127.0.0.1".into()),
            detail: Some("西湖 \"quoted\"".into()),
            origin_region: None,
        }
    }

    #[test]
    fn the_encoding_names_every_column_in_a_fixed_order() {
        assert_eq!(
            audit_entry_encoding(&entry()),
            r#"["rhip-audit-entry/1",7,"0190b6c4-0000-7000-8000-000000000001","2026-11-22T08:30:05.120000000","commission:330106","commission","330106",null,"read","person","p1","p1",null,"success",200,"r1","127.0.0.1","西湖 \"quoted\""]"#
        );
    }

    #[test]
    fn a_received_entry_ends_with_the_region_that_recorded_it() {
        let received = AuditRecord { origin_region: Some("440106".into()), ..entry() };
        let encoding = audit_entry_encoding(&received);
        assert!(encoding.ends_with(r#""西湖 \"quoted\"","440106"]"#), "{encoding}");
        assert_eq!(audit_entry_encoding(&entry()).matches("440106").count(), 0);
    }

    #[test]
    fn every_column_changes_the_hash_and_values_cannot_slide_between_columns() {
        let base = audit_entry_hash(&entry());
        assert_eq!(base.len(), 64);
        let edits: Vec<fn(&mut AuditRecord)> = vec![
            |e| e.seq += 1,
            |e| e.id.push('x'),
            |e| e.occurred_at += chrono::Duration::microseconds(1),
            |e| e.actor.push('x'),
            |e| e.role = None,
            |e| e.actor_region = Some("330108".into()),
            |e| e.facility_code = Some(String::new()),
            |e| e.action = "search".into(),
            |e| e.resource_type = "ehr".into(),
            |e| e.resource_id = None,
            |e| e.person_id = Some("p2".into()),
            |e| e.purpose = Some("treatment".into()),
            |e| e.outcome = "denied".into(),
            |e| e.http_status = Some(403),
            |e| e.request_id = None,
            |e| e.source_ip = None,
            |e| e.detail = None,
            |e| e.origin_region = Some("440106".into()),
            // The same characters split differently between two columns.
            |e| {
                e.resource_type = "personp".into();
                e.resource_id = Some("1".into());
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = entry();
            edit(&mut changed);
            assert_ne!(audit_entry_hash(&changed), base, "edit {i} left the hash unchanged");
        }
    }

    #[test]
    fn a_chain_link_hashes_the_previous_hash_then_the_entry_hash() {
        let entry_hash = audit_entry_hash(&entry());
        let first = audit_chain_hash(GENESIS_CHAIN_HASH, &entry_hash);
        let expected = hex::encode(Sha256::digest(format!("{GENESIS_CHAIN_HASH}{entry_hash}").as_bytes()));
        assert_eq!(first, expected);
        assert_ne!(audit_chain_hash(&first, &entry_hash), first, "each link depends on the one before");
        assert_ne!(audit_chain_hash(&entry_hash, GENESIS_CHAIN_HASH), first, "order matters");
    }
}
