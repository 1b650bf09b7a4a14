//! Storage side of node-to-node federation (DESIGN §6).
//!
//! Nodes exchange batches of change records cut from each node's
//! `change_log` (the outbox). This module keeps the bookkeeping that makes
//! that exchange safe over an unreliable network, and applies what arrives:
//!
//! - **Links** (`fed_links`): per peer, how far `change_log` has been cut
//!   into batches and which batch the peer last acknowledged.
//! - **Outbound batches** (`fed_batches_out`): kept byte for byte until
//!   acknowledged, so a resend after a crash is the same batch.
//! - **Inbound chain** (`fed_inbound`, `fed_batches_in`): the end of each
//!   peer's chain as applied here, and the receipt each batch got, so a
//!   replay is answered with the same receipt and a gap is refused.
//! - **Applying** a remote change writes the rows directly with their
//!   original ids and HLCs (never through the write paths that mint new
//!   change ids), then appends the change to `change_log` under its original
//!   id with `received_from`, so it can travel on and is applied once per
//!   node (`change_log.id` is unique).
//! - **Dead letters** (`fed_dead_letters`): changes the business rules
//!   refused here (unknown or merged person, unknown reference, malformed
//!   payload), kept with the reason to retry once what they need arrives.
//!
//! Architecture invariant: this crate knows nothing of the federation
//! protocol (manifests, signatures, transport); the structs here are plain
//! storage shapes, and the federation crate converts to and from them.

use crate::conn::{direct, Direct};
use crate::persons::PersonRow;
use crate::schema::{
    allergies, change_log, diagnoses, documents, ehr_entries, encounters, facilities, fed_batches_in, fed_batches_out,
    fed_dead_letters, fed_inbound, fed_links, medications, observations, person_aliases, person_contacts,
    person_coverages, person_identifiers, person_merges, persons,
};
use crate::{
    AllergyRecord, ChangeRecord, ContactRecord, CoverageRecord, DocumentIndexRecord, EhrEntryRecord, EncounterRecord,
    FacilityRecord, MedicationRecord, PersonRecord, StoreError, Tx,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rhip_core::{HlcTimestamp, Identifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Digest that stands before the first batch of every chain.
pub const GENESIS_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What waits on a link: changes not yet examined for it, and cut batches
/// not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkBacklog {
    /// Changes after the cut cursor (an upper bound: some may not route here).
    pub unexamined: i64,
    /// Batches cut and not acknowledged.
    pub unacked_batches: i64,
    /// Changes in those batches.
    pub unacked_changes: i64,
    /// When the oldest waiting change was recorded, for the lag.
    pub oldest_pending_at: Option<NaiveDateTime>,
    /// Changes the peer reported parked in its receipts.
    pub parked_at_peer: i64,
    /// Highest batch sequence sent (0 when none).
    pub last_sent_seq: i64,
    /// Batches kept for the link (unacknowledged, and acknowledged ones not yet pruned).
    pub kept_batches: i64,
}

/// One peer link as stored: the cut cursor and the acknowledged chain end.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = fed_links)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct LinkRecord {
    /// The peer's region code.
    pub peer_region: String,
    /// `parent` or `child`.
    pub direction: String,
    /// Highest `change_log.seq` already examined for this link.
    pub cut_seq: i64,
    /// Sequence number the next cut batch gets (starts at 1).
    pub next_seq: i64,
    /// Highest batch sequence the peer acknowledged.
    pub last_acked_seq: i64,
    /// Digest of that batch ([`GENESIS_DIGEST`] before the first).
    pub last_acked_digest: String,
    /// When a batch was last sent.
    pub last_sent_at: Option<NaiveDateTime>,
    /// When the peer last acknowledged.
    pub last_acked_at: Option<NaiveDateTime>,
    /// The last failure talking to the peer, cleared by an acknowledgement.
    pub last_error: Option<String>,
    /// Consecutive failures (for backoff and status).
    pub failures: i64,
    /// Last change to this row.
    pub updated_at: NaiveDateTime,
}

/// A batch just cut for a peer, to keep until it is acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutboundBatch {
    /// The peer's region code.
    pub peer: String,
    /// Per-link sequence number (must be the link's `next_seq`).
    pub seq: i64,
    /// Federation-wide batch id.
    pub batch_id: String,
    /// Digest of this batch (the next batch's "previous digest").
    pub digest: String,
    /// The signed manifest, as sent.
    pub manifest: String,
    /// The payload, as sent.
    pub payload: Vec<u8>,
    /// Number of change records in the payload.
    pub record_count: i64,
    /// First `change_log.seq` in the batch.
    pub first_change_seq: i64,
    /// Last `change_log.seq` in the batch.
    pub last_change_seq: i64,
}

/// A stored outbound batch.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = fed_batches_out)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct OutboundBatch {
    /// The peer's region code.
    pub peer_region: String,
    /// Per-link sequence number.
    pub seq: i64,
    /// Federation-wide batch id.
    pub batch_id: String,
    /// Digest of this batch.
    pub digest: String,
    /// The signed manifest, byte-identical on every resend.
    pub manifest: String,
    /// The payload, byte-identical on every resend.
    pub payload: Vec<u8>,
    /// Number of change records.
    pub record_count: i64,
    /// First `change_log.seq` in the batch.
    pub first_change_seq: i64,
    /// Last `change_log.seq` in the batch.
    pub last_change_seq: i64,
    /// When it was cut.
    pub created_at: NaiveDateTime,
    /// When it was last sent.
    pub sent_at: Option<NaiveDateTime>,
    /// When the peer acknowledged it (or a later batch).
    pub acked_at: Option<NaiveDateTime>,
    /// The receipt that acknowledged it, when it was the acknowledged end.
    pub receipt: Option<String>,
}

/// A change that arrived from a peer, as the store needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteChange {
    /// Federation-wide change id (applied once per node).
    pub id: String,
    /// HLC of the change at its origin.
    pub hlc: String,
    /// Region where the change was made.
    pub origin_region: String,
    /// What kind of record changed (`person`, `encounter`, ...).
    pub entity: String,
    /// Id of the record that changed.
    pub entity_id: String,
    /// `create`, `update`, `merge`, ...
    pub op: String,
    /// The person the change is about.
    pub person_id: Option<String>,
    /// That person's home region.
    pub home_region: Option<String>,
    /// The record; a document may carry `content_base64` (standard base64 of
    /// the original bytes).
    pub payload: rhip_core::JsonText,
}

impl RemoteChange {
    /// The change as it travels, from an outbox row (its payload checked).
    pub fn from_change(change: &ChangeRecord) -> Result<RemoteChange, StoreError> {
        let payload = rhip_core::JsonText::from_text(change.payload.clone())
            .map_err(|e| StoreError::Corrupt(format!("payload of change {}: {e}", change.id)))?;
        Ok(RemoteChange {
            id: change.id.clone(),
            hlc: change.hlc.clone(),
            origin_region: change.origin_region.clone(),
            entity: change.entity.clone(),
            entity_id: change.entity_id.clone(),
            op: change.op.clone(),
            person_id: change.person_id.clone(),
            home_region: change.home_region.clone(),
            payload,
        })
    }
}

/// How much of a remote change this node keeps (the caller decides from its
/// retention policy for the change's data class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteKeep {
    /// Everything, document bytes included.
    Full,
    /// Metadata and pointers: persons without their details (allergies,
    /// contacts, insurance), documents without their bytes.
    Index,
    /// Nothing but the change-log row, so the change can be forwarded.
    None,
}

impl RemoteKeep {
    fn as_str(&self) -> &'static str {
        match self {
            RemoteKeep::Full => "full",
            RemoteKeep::Index => "index",
            RemoteKeep::None => "none",
        }
    }

    fn parse(text: &str) -> RemoteKeep {
        match text {
            "index" => RemoteKeep::Index,
            "none" => RemoteKeep::None,
            _ => RemoteKeep::Full,
        }
    }
}

/// What applying a remote change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The change was applied (and appended to the change log).
    Applied,
    /// This node already has the change; nothing was written.
    AlreadyApplied,
    /// The business rules refused it here; it is in the change log (so it
    /// travels on) and parked as a dead letter with this reason.
    Parked(String),
}

/// A parked remote change.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = fed_dead_letters)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct DeadLetter {
    /// Dead-letter id.
    pub id: String,
    /// The change's id.
    pub change_id: String,
    /// The peer it arrived from.
    pub peer_region: String,
    /// The change's entity.
    pub entity: String,
    /// The change's operation.
    pub op: String,
    /// The retention it was received under (`full` or `index`).
    pub keep: String,
    /// The full change as JSON ([`RemoteChange`]).
    pub change: String,
    /// Why it was refused (the latest reason).
    pub reason: String,
    /// When it was first parked.
    pub parked_at: NaiveDateTime,
    /// How many times applying it was tried.
    pub attempts: i64,
    /// When it was last retried.
    pub last_attempt_at: Option<NaiveDateTime>,
    /// When a retry applied it.
    pub resolved_at: Option<NaiveDateTime>,
}

/// Why applying a change stopped: a business rule (park it) or the database.
enum Refusal {
    Park(String),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        Refusal::Store(error)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Refusal {
        Refusal::Store(error.into())
    }
}

fn park<T>(reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Park(reason.into()))
}

/// A unique key or foreign key refusing a remote row is a business rule
/// (the thing belongs to someone else here, or a reference is unknown here);
/// anything else is the database's failure.
/// Why the together-path of [`Tx::apply_remote_changes`] stopped.
enum Together {
    /// A business rule refused a change: apply change by change instead.
    Refused,
    /// The database failed.
    Store(StoreError),
}

impl From<diesel::result::Error> for Together {
    fn from(error: diesel::result::Error) -> Together {
        Together::Store(error.into())
    }
}

impl From<StoreError> for Together {
    fn from(error: StoreError) -> Together {
        Together::Store(error)
    }
}

fn business_reason(error: &StoreError) -> Option<String> {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        StoreError::Conflict(message) => Some(format!("refused by a unique key here: {message}")),
        StoreError::NotFound(what) => Some(format!("{what} is not known here")),
        StoreError::Db(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)) => {
            Some(format!("a referenced record is not known here: {}", info.message()))
        }
        _ => None,
    }
}

fn decode_hlc(text: &str) -> Option<HlcTimestamp> {
    HlcTimestamp::decode(text).ok()
}

/// Whether a change stamped `incoming` should replace a row stamped
/// `stored` (strictly newer; an unreadable stored stamp always loses).
pub(crate) fn newer(incoming: &str, stored: &str) -> bool {
    match (decode_hlc(incoming), decode_hlc(stored)) {
        (Some(incoming), Some(stored)) => incoming > stored,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The order in which demographic changes win, the same at every node:
/// made at the person's home county first, then the later HLC, then the
/// greater origin region code.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DemographicsKey {
    from_home: bool,
    hlc: HlcTimestamp,
    origin: String,
}

impl Tx<'_> {
    // ---------------------------------------------------------------- links

    /// Makes sure a link row exists for a peer of the topology (idempotent;
    /// a changed direction is updated, the cursors are kept). `direction`
    /// is `parent` or `child`, as the topology file says.
    pub fn ensure_link(&mut self, peer: &str, direction: &str) -> Result<LinkRecord, StoreError> {
        if !matches!(direction, "parent" | "child") {
            return Err(StoreError::Config(format!("link direction {direction:?} is neither parent nor child")));
        }
        let now = crate::now();
        match self.link(peer)? {
            Some(link) if link.direction == direction => Ok(link),
            Some(_) => {
                diesel::update(fed_links::table.find(peer))
                    .set((fed_links::direction.eq(direction), fed_links::updated_at.eq(now)))
                    .run(self.conn)?;
                self.link(peer)?.ok_or_else(|| StoreError::NotFound(format!("link to {peer}")))
            }
            None => {
                let inserted = self.guarded(|tx| {
                    diesel::insert_into(fed_links::table)
                        .values((
                            fed_links::peer_region.eq(peer),
                            fed_links::direction.eq(direction),
                            fed_links::cut_seq.eq(0_i64),
                            fed_links::next_seq.eq(1_i64),
                            fed_links::last_acked_seq.eq(0_i64),
                            fed_links::last_acked_digest.eq(GENESIS_DIGEST),
                            fed_links::failures.eq(0_i64),
                            fed_links::updated_at.eq(now),
                        ))
                        .execute(tx.conn)?;
                    Ok(())
                });
                match inserted {
                    // A concurrent process made it first: that row is the link.
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(other) => return Err(other),
                }
                self.link(peer)?.ok_or_else(|| StoreError::NotFound(format!("link to {peer}")))
            }
        }
    }

    /// One peer's link, if the topology made one.
    pub fn link(&mut self, peer: &str) -> Result<Option<LinkRecord>, StoreError> {
        Ok(fed_links::table.find(peer).select(LinkRecord::as_select()).get_result(self.conn).optional()?)
    }

    /// Every link, by peer region (for status pages and the push job).
    pub fn links(&mut self) -> Result<Vec<LinkRecord>, StoreError> {
        Ok(fed_links::table.order(fed_links::peer_region.asc()).select(LinkRecord::as_select()).load(self.conn)?)
    }

    /// Notes a failed exchange with a peer (counts consecutive failures for
    /// backoff; an acknowledgement resets them).
    pub fn note_link_failure(&mut self, peer: &str, error: &str) -> Result<(), StoreError> {
        diesel::update(fed_links::table.find(peer))
            .set((
                fed_links::failures.eq(fed_links::failures + 1_i64),
                fed_links::last_error.eq(error),
                fed_links::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Notes that batches were just sent to a peer.
    pub fn note_link_sent(&mut self, peer: &str) -> Result<(), StoreError> {
        let now = crate::now();
        diesel::update(fed_links::table.find(peer))
            .set((fed_links::last_sent_at.eq(now), fed_links::updated_at.eq(now)))
            .run(self.conn)?;
        Ok(())
    }

    // -------------------------------------------------------------- cutting

    /// Changes after `after_seq`, oldest first, except those that arrived
    /// from `peer` (a change never goes back the way it came).
    pub fn changes_for_link(
        &mut self,
        peer: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let changes = direct!(
            self.conn,
            change_log::table
                .filter(change_log::seq.gt(after_seq))
                .filter(change_log::received_from.is_null().or(change_log::received_from.ne(peer)))
                .order(change_log::seq.asc())
                .limit(limit.clamp(1, 100_000))
                .select(crate::changes::ChangeRow::as_select()),
            load
        )?;
        self.open_changes(changes)
    }

    /// Changes not yet examined for a peer (after its cut cursor, not from
    /// it): an upper bound of what will be sent, for status.
    pub fn pending_count(&mut self, peer: &str) -> Result<i64, StoreError> {
        let cut = self.link(peer)?.map_or(0, |link| link.cut_seq);
        Ok(change_log::table
            .filter(change_log::seq.gt(cut))
            .filter(change_log::received_from.is_null().or(change_log::received_from.ne(peer)))
            .count()
            .fetch_one(self.conn)?)
    }

    /// Batches cut for a peer and not yet acknowledged.
    pub fn unacked_count(&mut self, peer: &str) -> Result<i64, StoreError> {
        Ok(fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .filter(fed_batches_out::acked_at.is_null())
            .count()
            .fetch_one(self.conn)?)
    }

    /// Keeps a batch just cut for a peer and moves the link's cursors: the
    /// cut cursor to `advance_cut_to` (the last change examined, which may
    /// lie beyond the batch's last change when later ones were not routed
    /// to this peer) and `next_seq` past this batch. Refused with a conflict
    /// when `seq` is not the link's `next_seq` (two cutters raced).
    pub fn save_outbound_batch(&mut self, batch: &NewOutboundBatch, advance_cut_to: i64) -> Result<(), StoreError> {
        let link = self.link(&batch.peer)?.ok_or_else(|| StoreError::NotFound(format!("link to {}", batch.peer)))?;
        if batch.seq != link.next_seq {
            return Err(StoreError::Conflict(format!(
                "batch {} for {} is not the next on the link (expected {})",
                batch.seq, batch.peer, link.next_seq
            )));
        }
        let now = crate::now();
        diesel::insert_into(fed_batches_out::table)
            .values((
                fed_batches_out::peer_region.eq(&batch.peer),
                fed_batches_out::seq.eq(batch.seq),
                fed_batches_out::batch_id.eq(&batch.batch_id),
                fed_batches_out::digest.eq(&batch.digest),
                fed_batches_out::manifest.eq(&batch.manifest),
                fed_batches_out::payload.eq(self.crypt().seal_bytes(crate::crypt::BATCH_PAYLOAD, &batch.payload)?),
                fed_batches_out::record_count.eq(batch.record_count),
                fed_batches_out::first_change_seq.eq(batch.first_change_seq),
                fed_batches_out::last_change_seq.eq(batch.last_change_seq),
                fed_batches_out::created_at.eq(now),
            ))
            .run(self.conn)?;
        let moved = diesel::update(
            fed_links::table.filter(fed_links::peer_region.eq(&batch.peer)).filter(fed_links::next_seq.eq(batch.seq)),
        )
        .set((
            fed_links::cut_seq.eq(advance_cut_to.max(link.cut_seq)),
            fed_links::next_seq.eq(batch.seq + 1),
            fed_links::updated_at.eq(now),
        ))
        .run(self.conn)?;
        if moved != 1 {
            return Err(StoreError::Conflict(format!(
                "link to {} moved while batch {} was cut",
                batch.peer, batch.seq
            )));
        }
        Ok(())
    }

    /// Moves a link's cut cursor when the examined changes made no batch
    /// (nothing in them is routed to this peer). Never moves it backwards.
    pub fn advance_cut(&mut self, peer: &str, to_seq: i64) -> Result<(), StoreError> {
        diesel::update(fed_links::table.filter(fed_links::peer_region.eq(peer)).filter(fed_links::cut_seq.lt(to_seq)))
            .set((fed_links::cut_seq.eq(to_seq), fed_links::updated_at.eq(crate::now())))
            .run(self.conn)?;
        Ok(())
    }

    /// Batches a peer has not acknowledged, oldest first (what to send).
    pub fn unacked_batches(&mut self, peer: &str, limit: i64) -> Result<Vec<OutboundBatch>, StoreError> {
        let batches = fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .filter(fed_batches_out::acked_at.is_null())
            .order(fed_batches_out::seq.asc())
            .limit(limit.clamp(1, 10_000))
            .select(OutboundBatch::as_select())
            .load(self.conn)?;
        batches.into_iter().map(|batch| self.open_batch(batch)).collect()
    }

    /// One outbound batch (a peer asking for a resend from a sequence).
    pub fn outbound_batch(&mut self, peer: &str, seq: i64) -> Result<Option<OutboundBatch>, StoreError> {
        let batch = fed_batches_out::table
            .find((peer, seq))
            .select(OutboundBatch::as_select())
            .get_result(self.conn)
            .optional()?;
        batch.map(|batch| self.open_batch(batch)).transpose()
    }

    /// The digest of one outbound batch, without reading its payload (the
    /// next batch chains to it).
    pub fn outbound_digest(&mut self, peer: &str, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(fed_batches_out::table.find((peer, seq)).select(fed_batches_out::digest).fetch_one(self.conn).optional()?)
    }

    /// Opens a kept batch's sealed payload (byte-identical to what was cut).
    fn open_batch(&self, batch: OutboundBatch) -> Result<OutboundBatch, StoreError> {
        let payload = self.crypt().open_bytes(crate::crypt::BATCH_PAYLOAD, &batch.payload)?;
        Ok(OutboundBatch { payload, ..batch })
    }

    /// Notes that a batch was sent (again).
    pub fn mark_batch_sent(&mut self, peer: &str, seq: i64) -> Result<(), StoreError> {
        diesel::update(fed_batches_out::table.find((peer, seq)))
            .set(fed_batches_out::sent_at.eq(crate::now()))
            .run(self.conn)?;
        Ok(())
    }

    /// Records a peer's acknowledgement of every batch up to `up_to_seq`
    /// (receipts acknowledge the chain up to a batch). Idempotent, and the
    /// link's acknowledged end never moves backwards: a late receipt for an
    /// older batch changes nothing. Resets the link's failure count.
    /// Returns how many batches it newly acknowledged.
    pub fn ack_batches(
        &mut self,
        peer: &str,
        up_to_seq: i64,
        digest_of_up_to: &str,
        receipt: &str,
    ) -> Result<usize, StoreError> {
        let now = crate::now();
        let acked = diesel::update(
            fed_batches_out::table
                .filter(fed_batches_out::peer_region.eq(peer))
                .filter(fed_batches_out::seq.le(up_to_seq))
                .filter(fed_batches_out::acked_at.is_null()),
        )
        .set(fed_batches_out::acked_at.eq(now))
        .run(self.conn)?;
        diesel::update(fed_batches_out::table.find((peer, up_to_seq)).filter(fed_batches_out::receipt.is_null()))
            .set(fed_batches_out::receipt.eq(receipt))
            .run(self.conn)?;
        self.advance_acked_end(peer, up_to_seq, digest_of_up_to, now)?;
        Ok(acked)
    }

    /// Moves the link's acknowledged end to `seq` (never backwards) and
    /// clears its failures: the link's side of an acknowledgement.
    fn advance_acked_end(&mut self, peer: &str, seq: i64, digest: &str, now: NaiveDateTime) -> Result<(), StoreError> {
        diesel::update(
            fed_links::table.filter(fed_links::peer_region.eq(peer)).filter(fed_links::last_acked_seq.lt(seq)),
        )
        .set((
            fed_links::last_acked_seq.eq(seq),
            fed_links::last_acked_digest.eq(digest),
            fed_links::last_acked_at.eq(now),
        ))
        .run(self.conn)?;
        diesel::update(fed_links::table.find(peer))
            .set((
                fed_links::failures.eq(0_i64),
                fed_links::last_error.eq(None::<String>),
                fed_links::updated_at.eq(now),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Records that batch `seq` was sent and acknowledged by a valid receipt
    /// (which names `parked` changes parked at the peer): what
    /// [`Tx::mark_batch_sent`], [`Tx::note_link_sent`], [`Tx::ack_batches`]
    /// and [`Tx::note_parked_at_peer`] do together, but rewriting the
    /// batch's row, which holds its whole payload, once instead of four
    /// times. Returns how many batches it newly acknowledged.
    pub fn acknowledge_sent_batch(
        &mut self,
        peer: &str,
        seq: i64,
        digest: &str,
        receipt: &str,
        parked: i64,
    ) -> Result<usize, StoreError> {
        let now = crate::now();
        let was_acked: Option<Option<NaiveDateTime>> = fed_batches_out::table
            .find((peer, seq))
            .select(fed_batches_out::acked_at)
            .fetch_one(self.conn)
            .optional()?;
        let Some(was_acked) = was_acked else {
            return Err(StoreError::NotFound(format!("batch {seq} to {peer}")));
        };
        let earlier = diesel::update(
            fed_batches_out::table
                .filter(fed_batches_out::peer_region.eq(peer))
                .filter(fed_batches_out::seq.lt(seq))
                .filter(fed_batches_out::acked_at.is_null()),
        )
        .set(fed_batches_out::acked_at.eq(now))
        .run(self.conn)?;
        let receipt_now: Option<String> = fed_batches_out::table
            .find((peer, seq))
            .select(fed_batches_out::receipt)
            .fetch_one::<Option<String>>(self.conn)?
            .or_else(|| Some(receipt.to_string()));
        diesel::update(fed_batches_out::table.find((peer, seq)))
            .set((
                fed_batches_out::sent_at.eq(now),
                fed_batches_out::acked_at.eq(was_acked.unwrap_or(now)),
                fed_batches_out::receipt.eq(receipt_now),
                fed_batches_out::parked_at_peer.eq(parked),
            ))
            .run(self.conn)?;
        self.note_link_sent(peer)?;
        self.advance_acked_end(peer, seq, digest, now)?;
        Ok(earlier + usize::from(was_acked.is_none()))
    }

    /// Remembers how many changes of an acknowledged batch the peer parked
    /// (from its receipt), so this side's status shows them too.
    pub fn note_parked_at_peer(&mut self, peer: &str, seq: i64, parked: i64) -> Result<(), StoreError> {
        diesel::update(fed_batches_out::table.find((peer, seq)))
            .set(fed_batches_out::parked_at_peer.eq(parked))
            .run(self.conn)?;
        Ok(())
    }

    /// What is waiting on a link, for status and metrics.
    pub fn link_backlog(&mut self, peer: &str) -> Result<LinkBacklog, StoreError> {
        let cut = self.link(peer)?.map_or(0, |link| link.cut_seq);
        let not_from_peer = change_log::received_from.is_null().or(change_log::received_from.ne(peer));
        let (unexamined, oldest_unexamined): (i64, Option<NaiveDateTime>) = change_log::table
            .filter(change_log::seq.gt(cut))
            .filter(not_from_peer)
            .select((diesel::dsl::count_star(), diesel::dsl::min(change_log::created_at)))
            .fetch_one(self.conn)?;
        let (unacked_batches, unacked_changes, oldest_unacked): (i64, Option<i64>, Option<NaiveDateTime>) =
            fed_batches_out::table
                .filter(fed_batches_out::peer_region.eq(peer))
                .filter(fed_batches_out::acked_at.is_null())
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                        "CAST(SUM(record_count) AS BIGINT)",
                    ),
                    diesel::dsl::min(fed_batches_out::created_at),
                ))
                .fetch_one(self.conn)?;
        let parked_at_peer: Option<i64> = fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                "CAST(SUM(parked_at_peer) AS BIGINT)",
            ))
            .fetch_one(self.conn)?;
        let last_sent_seq: Option<i64> = fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .filter(fed_batches_out::sent_at.is_not_null())
            .select(diesel::dsl::max(fed_batches_out::seq))
            .fetch_one(self.conn)?;
        let kept_batches: i64 =
            fed_batches_out::table.filter(fed_batches_out::peer_region.eq(peer)).count().fetch_one(self.conn)?;
        let oldest = match (oldest_unexamined, oldest_unacked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(LinkBacklog {
            unexamined,
            unacked_batches,
            unacked_changes: unacked_changes.unwrap_or(0),
            oldest_pending_at: oldest,
            parked_at_peer: parked_at_peer.unwrap_or(0),
            last_sent_seq: last_sent_seq.unwrap_or(0),
            kept_batches,
        })
    }

    /// Every peer's inbound chain end: (peer, last sequence applied, when).
    pub fn inbound_states(&mut self) -> Result<Vec<(String, i64, NaiveDateTime)>, StoreError> {
        Ok(fed_inbound::table
            .order(fed_inbound::peer_region.asc())
            .select((fed_inbound::peer_region, fed_inbound::last_seq, fed_inbound::updated_at))
            .fetch_all(self.conn)?)
    }

    /// What this node holds from a peer, for the peer's reconciliation: the
    /// end of the peer's chain as applied here and how many of the peer's
    /// changes this node's change log holds.
    pub fn received_from(&mut self, peer: &str) -> Result<(i64, String, i64), StoreError> {
        let (last_seq, last_digest) = self.inbound_state(peer)?;
        let count: i64 = change_log::table.filter(change_log::received_from.eq(peer)).count().fetch_one(self.conn)?;
        Ok((last_seq, last_digest, count))
    }

    /// Changes in the batches a peer acknowledged (the sending side of
    /// [`Tx::received_from`]).
    pub fn acked_change_count(&mut self, peer: &str) -> Result<i64, StoreError> {
        let sum: Option<i64> = fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .filter(fed_batches_out::acked_at.is_not_null())
            .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                "CAST(SUM(record_count) AS BIGINT)",
            ))
            .fetch_one(self.conn)?;
        Ok(sum.unwrap_or(0))
    }

    /// Rewinds a link to a peer that lost batches (restored from a backup):
    /// batches after `to_seq` count as unacknowledged again and are resent,
    /// byte for byte. Refused when a batch to resend is no longer kept.
    pub fn rewind_link(&mut self, peer: &str, to_seq: i64) -> Result<usize, StoreError> {
        let digest = if to_seq <= 0 {
            GENESIS_DIGEST.to_string()
        } else {
            self.outbound_digest(peer, to_seq)?
                .ok_or_else(|| StoreError::NotFound(format!("batch {to_seq} to {peer} is no longer kept")))?
        };
        let first_kept: Option<i64> = fed_batches_out::table
            .filter(fed_batches_out::peer_region.eq(peer))
            .filter(fed_batches_out::seq.gt(to_seq))
            .select(diesel::dsl::min(fed_batches_out::seq))
            .fetch_one(self.conn)?;
        if first_kept.is_some_and(|first| first != to_seq + 1) {
            return Err(StoreError::NotFound(format!("batch {} to {peer} is no longer kept", to_seq + 1)));
        }
        let rewound = diesel::update(
            fed_batches_out::table
                .filter(fed_batches_out::peer_region.eq(peer))
                .filter(fed_batches_out::seq.gt(to_seq)),
        )
        .set((fed_batches_out::acked_at.eq(None::<NaiveDateTime>), fed_batches_out::receipt.eq(None::<String>)))
        .run(self.conn)?;
        diesel::update(fed_links::table.find(peer))
            .set((
                fed_links::last_acked_seq.eq(to_seq.max(0)),
                fed_links::last_acked_digest.eq(digest),
                fed_links::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(rewound)
    }

    /// Deletes acknowledged batches of a peer except the last `keep_last`
    /// of them (kept for diagnosis); returns how many went.
    pub fn prune_acked_batches(&mut self, peer: &str, keep_last: i64) -> Result<usize, StoreError> {
        let last_acked = self.link(peer)?.map_or(0, |link| link.last_acked_seq);
        let below = last_acked - keep_last.max(0);
        Ok(diesel::delete(
            fed_batches_out::table
                .filter(fed_batches_out::peer_region.eq(peer))
                .filter(fed_batches_out::acked_at.is_not_null())
                .filter(fed_batches_out::seq.le(below)),
        )
        .run(self.conn)?)
    }

    // -------------------------------------------------------------- inbound

    /// The end of a peer's chain as applied here: (last sequence, its
    /// digest); `(0, GENESIS_DIGEST)` before the first batch.
    pub fn inbound_state(&mut self, peer: &str) -> Result<(i64, String), StoreError> {
        let row: Option<(i64, String)> = fed_inbound::table
            .find(peer)
            .select((fed_inbound::last_seq, fed_inbound::last_digest))
            .fetch_one(self.conn)
            .optional()?;
        Ok(row.unwrap_or_else(|| (0, GENESIS_DIGEST.to_string())))
    }

    /// Records an applied inbound batch and its receipt, and moves the
    /// peer's chain end. Refused with a conflict unless `seq` follows the
    /// chain end directly: the caller checked, this guards against two
    /// receivers applying the same batch at once.
    pub fn record_inbound_batch(
        &mut self,
        peer: &str,
        seq: i64,
        batch_id: &str,
        digest: &str,
        receipt: &str,
    ) -> Result<(), StoreError> {
        let (last_seq, _) = self.inbound_state(peer)?;
        if seq != last_seq + 1 {
            return Err(StoreError::Conflict(format!("batch {seq} from {peer} does not follow {last_seq}")));
        }
        let now = crate::now();
        diesel::insert_into(fed_batches_in::table)
            .values((
                fed_batches_in::peer_region.eq(peer),
                fed_batches_in::seq.eq(seq),
                fed_batches_in::batch_id.eq(batch_id),
                fed_batches_in::digest.eq(digest),
                fed_batches_in::receipt.eq(receipt),
                fed_batches_in::received_at.eq(now),
            ))
            .run(self.conn)
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("batch {seq} from {peer} was already applied")),
                other => other,
            })?;
        let moved = if last_seq == 0 {
            diesel::insert_into(fed_inbound::table)
                .values((
                    fed_inbound::peer_region.eq(peer),
                    fed_inbound::last_seq.eq(seq),
                    fed_inbound::last_digest.eq(digest),
                    fed_inbound::updated_at.eq(now),
                ))
                .run(self.conn)?
        } else {
            diesel::update(
                fed_inbound::table.filter(fed_inbound::peer_region.eq(peer)).filter(fed_inbound::last_seq.eq(last_seq)),
            )
            .set((fed_inbound::last_seq.eq(seq), fed_inbound::last_digest.eq(digest), fed_inbound::updated_at.eq(now)))
            .run(self.conn)?
        };
        if moved != 1 {
            return Err(StoreError::Conflict(format!("the chain from {peer} moved while batch {seq} was applied")));
        }
        Ok(())
    }

    /// The digest and receipt of an inbound batch already applied, so a
    /// replay is answered with the same receipt and a forged replay (same
    /// sequence, other bytes) is told apart.
    pub fn inbound_batch(&mut self, peer: &str, seq: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(fed_batches_in::table
            .find((peer, seq))
            .select((fed_batches_in::digest, fed_batches_in::receipt))
            .fetch_one(self.conn)
            .optional()?)
    }

    // ---------------------------------------------------------------- apply

    /// Applies a change that arrived from `from_peer`, keeping what `keep`
    /// allows, and appends it to the change log under its original id (with
    /// `received_from`) so it travels on. A change this node already has is
    /// [`ApplyOutcome::AlreadyApplied`] and writes nothing. A change the
    /// business rules refuse here is rolled back, appended all the same,
    /// and parked as a dead letter ([`ApplyOutcome::Parked`]). Database
    /// errors are returned, so the caller's batch transaction rolls back.
    pub fn apply_remote_change(
        &mut self,
        change: &RemoteChange,
        from_peer: &str,
        keep: RemoteKeep,
    ) -> Result<ApplyOutcome, StoreError> {
        let known: i64 = change_log::table.filter(change_log::id.eq(&change.id)).count().fetch_one(self.conn)?;
        if known > 0 {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        self.observe_remote_hlc(&change.hlc);
        let parked = self.apply_in_savepoint(change, from_peer, keep)?;
        self.log_remote_change(change, from_peer, keep, parked)
    }

    /// Applies a whole batch from `from_peer` with the same outcome, change
    /// for change, as [`Tx::apply_remote_change`] in order, but cheaper:
    /// the changes already applied here are found with one query, and the
    /// rest are applied together in one savepoint. Only when a business rule
    /// refuses one of them is that savepoint rolled back and the batch
    /// applied again change by change, each in its own savepoint, so the
    /// refused one is parked and the others are kept.
    pub fn apply_remote_changes(
        &mut self,
        changes: &[RemoteChange],
        from_peer: &str,
        keep: impl Fn(&RemoteChange) -> RemoteKeep,
    ) -> Result<Vec<ApplyOutcome>, StoreError> {
        let mut known = std::collections::HashSet::new();
        for chunk in changes.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
            let found: Vec<String> =
                change_log::table.filter(change_log::id.eq_any(&ids)).select(change_log::id).fetch_all(self.conn)?;
            known.extend(found);
        }
        // A change listed twice in one batch is applied once, like a replay.
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<bool> = changes.iter().map(|c| !known.contains(&c.id) && seen.insert(c.id.as_str())).collect();
        let together = self.savepoint(|tx| {
            let mut outcomes = Vec::with_capacity(changes.len());
            for (change, fresh) in changes.iter().zip(&fresh) {
                if !fresh {
                    outcomes.push(ApplyOutcome::AlreadyApplied);
                    continue;
                }
                tx.observe_remote_hlc(&change.hlc);
                match tx.apply_change(change, from_peer, keep(change)) {
                    Ok(()) => {}
                    Err(Refusal::Park(_)) => return Err(Together::Refused),
                    Err(Refusal::Store(error)) if business_reason(&error).is_some() => return Err(Together::Refused),
                    Err(Refusal::Store(error)) => return Err(Together::Store(error)),
                }
                outcomes.push(tx.log_remote_change(change, from_peer, keep(change), None)?);
            }
            Ok(outcomes)
        });
        match together {
            Ok(outcomes) => Ok(outcomes),
            Err(Together::Store(error)) => Err(error),
            Err(Together::Refused) => changes
                .iter()
                .zip(&fresh)
                .map(|(change, fresh)| match fresh {
                    true => {
                        self.observe_remote_hlc(&change.hlc);
                        let parked = self.apply_in_savepoint(change, from_peer, keep(change))?;
                        self.log_remote_change(change, from_peer, keep(change), parked)
                    }
                    false => Ok(ApplyOutcome::AlreadyApplied),
                })
                .collect(),
        }
    }

    /// Appends a received change to the change log under its original id
    /// (so it travels on) and, when a business rule refused it, parks it.
    fn log_remote_change(
        &mut self,
        change: &RemoteChange,
        from_peer: &str,
        keep: RemoteKeep,
        parked: Option<String>,
    ) -> Result<ApplyOutcome, StoreError> {
        diesel::insert_into(change_log::table)
            .values((
                change_log::id.eq(&change.id),
                change_log::hlc.eq(&change.hlc),
                change_log::origin_region.eq(&change.origin_region),
                change_log::entity.eq(&change.entity),
                change_log::entity_id.eq(&change.entity_id),
                change_log::op.eq(&change.op),
                change_log::person_id.eq(&change.person_id),
                change_log::home_region.eq(&change.home_region),
                change_log::payload.eq(self.seal_payload(change.payload.get())?),
                change_log::created_at.eq(crate::now()),
                change_log::received_from.eq(from_peer),
            ))
            .run(self.conn)?;
        match parked {
            None => Ok(ApplyOutcome::Applied),
            Some(reason) => {
                let text = serde_json::to_string(change).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                diesel::insert_into(fed_dead_letters::table)
                    .values((
                        fed_dead_letters::id.eq(rhip_core::new_id().to_string()),
                        fed_dead_letters::change_id.eq(&change.id),
                        fed_dead_letters::peer_region.eq(from_peer),
                        fed_dead_letters::entity.eq(&change.entity),
                        fed_dead_letters::op.eq(&change.op),
                        fed_dead_letters::keep.eq(keep.as_str()),
                        fed_dead_letters::change.eq(self.crypt().seal(crate::crypt::DEAD_LETTER_CHANGE, &text)?),
                        fed_dead_letters::reason.eq(&reason),
                        fed_dead_letters::parked_at.eq(crate::now()),
                        fed_dead_letters::attempts.eq(1_i64),
                    ))
                    .run(self.conn)?;
                tracing::warn!(change = %change.id, entity = %change.entity, op = %change.op, peer = from_peer, %reason, "remote change parked");
                Ok(ApplyOutcome::Parked(reason))
            }
        }
    }

    /// Moves this node's clock past a remote change's HLC, so local writes
    /// never sort before what they follow. A stamp beyond the allowed drift
    /// leaves the clock alone (the change is still applied; its stamp only
    /// orders it).
    fn observe_remote_hlc(&mut self, hlc: &str) {
        let Some(remote) = decode_hlc(hlc) else { return };
        let physical = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        if let Err(error) = self.inner.clock.observe(remote, physical) {
            tracing::warn!(%error, "remote change stamped beyond the allowed clock drift");
        }
    }

    /// Applies a change in a savepoint: `Ok(None)` applied, `Ok(Some(reason))`
    /// refused by a business rule (rolled back), `Err` the database failed.
    fn apply_in_savepoint(
        &mut self,
        change: &RemoteChange,
        from_peer: &str,
        keep: RemoteKeep,
    ) -> Result<Option<String>, StoreError> {
        match self.savepoint(|tx| tx.apply_change(change, from_peer, keep)) {
            Ok(()) => Ok(None),
            Err(Refusal::Park(reason)) => Ok(Some(reason)),
            Err(Refusal::Store(error)) => business_reason(&error).map_or(Err(error), |reason| Ok(Some(reason))),
        }
    }

    fn apply_change(&mut self, change: &RemoteChange, from_peer: &str, keep: RemoteKeep) -> Result<(), Refusal> {
        if decode_hlc(&change.hlc).is_none() {
            return park(format!("change {} has a malformed HLC {:?}", change.id, change.hlc));
        }
        if keep == RemoteKeep::None {
            return Ok(());
        }
        match (change.entity.as_str(), change.op.as_str()) {
            ("person", "create" | "update") => self.apply_person(change),
            ("person", "merge") => self.apply_merge(change),
            ("person", "unmerge") => self.apply_unmerge(change),
            ("encounter", "create" | "update") => self.apply_encounter(change),
            ("ehr_entry", "create" | "update") => self.apply_ehr_entry(change),
            ("document", "create") => self.apply_document(change, keep),
            ("document", "supersede") => self.apply_supersede(change),
            ("medication", "create") => self.apply_medication(change),
            ("diagnosis", "create") => self.apply_diagnosis(change),
            ("observation", "create") => self.apply_observation(change),
            ("facility", "create" | "update") => self.apply_facility(change),
            ("value_domain", "publish") => {
                let version: crate::ValueDomainVersion = Self::remote_payload(change)?;
                if version.published_by != "000000" {
                    return park(format!(
                        "value domain {} version {} was published by {}, not the national node",
                        version.domain, version.version, version.published_by
                    ));
                }
                self.store_value_domain(&version).map_err(Refusal::from)
            }
            ("audit_entry", "create") => self.apply_audit_entry(change),
            ("consent", "set") => Ok(self.apply_consent(&Self::remote_payload(change)?)?),
            ("issuer_key", "publish") => self.apply_issuer_key(change, from_peer),
            ("token_revocation", "revoke") => {
                let revocation: crate::TokenRevocation = Self::remote_payload(change)?;
                self.store_revocation(&revocation).map_err(Refusal::from)
            }
            ("allergy" | "person_contact" | "person_coverage", _) if keep == RemoteKeep::Index => Ok(()),
            ("allergy", "create" | "update") => self.apply_allergy(change),
            ("person_contact", "create" | "update") => self.apply_contact(change),
            ("person_coverage", "create" | "update") => self.apply_coverage(change),
            (entity, op) => park(format!("unknown change {entity}/{op}")),
        }
    }

    /// Stores an ancestor's token-signing key. It must come from the parent
    /// and be the key of a node above this one: a child cannot make its
    /// parent accept tokens of its choosing.
    fn apply_issuer_key(&mut self, change: &RemoteChange, from_peer: &str) -> Result<(), Refusal> {
        let key: crate::IssuerKey = Self::remote_payload(change)?;
        let me = self.node_region();
        let above = |region: &str| {
            rhip_core::RegionCode::parse(region).is_ok_and(|region| region != me && region.contains(&me))
        };
        if !above(from_peer) {
            return park(format!(
                "key {} of {} came from {from_peer}, which is not this node's parent",
                key.key_id, key.region
            ));
        }
        if !above(&key.region) || key.region != change.origin_region {
            return park(format!(
                "key {} of {} (published by {}) is not the key of a node above {me}",
                key.key_id, key.region, change.origin_region
            ));
        }
        if key.key_id != change.entity_id {
            return park(format!("key {} travels in change {} about {}", key.key_id, change.id, change.entity_id));
        }
        self.store_issuer_key(&key, from_peer).map_err(Refusal::from)
    }

    /// Stores an audit entry about one of this node's persons, recorded at
    /// another node (see [`Tx::append_audit`]).
    fn apply_audit_entry(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let entry: crate::AuditRecord = Self::remote_payload(change)?;
        if entry.id != change.entity_id {
            return park(format!(
                "audit entry {} travels in change {} about {}",
                entry.id, change.id, change.entity_id
            ));
        }
        let Some(named) = entry.person_id.clone() else {
            return park(format!("audit entry {} names no person", entry.id));
        };
        let Some(person) = self.resolve_person(&named)? else {
            return park(format!("person {named} is not known at {}", self.node_region()));
        };
        self.store_received_audit(&entry, &person, &change.origin_region).map_err(Refusal::from)
    }

    fn remote_payload<T: serde::de::DeserializeOwned>(change: &RemoteChange) -> Result<T, Refusal> {
        change
            .payload
            .parse()
            .map_err(|e| Refusal::Park(format!("malformed {} payload in change {}: {e}", change.entity, change.id)))
    }

    /// The local id of a person named by a remote change: the id itself, or
    /// the local person it is an alias of.
    fn resolve_person(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        let here: i64 = persons::table.filter(persons::id.eq(id)).count().fetch_one(self.conn)?;
        if here > 0 {
            return Ok(Some(id.to_string()));
        }
        Ok(person_aliases::table.find(id).select(person_aliases::local_id).fetch_one(self.conn).optional()?)
    }

    /// The local id of an active person a remote record belongs to; parks
    /// the change when the person is unknown here or merged away.
    fn active_person(&mut self, id: &str) -> Result<String, Refusal> {
        // One statement in the common case: the person is here under this id.
        let here: Option<(String, Option<String>)> =
            persons::table.find(id).select((persons::status, persons::merged_into)).fetch_one(self.conn).optional()?;
        let (local, status, merged_into) = match here {
            Some((status, merged_into)) => (id.to_string(), status, merged_into),
            None => {
                let alias: Option<String> =
                    person_aliases::table.find(id).select(person_aliases::local_id).fetch_one(self.conn).optional()?;
                let Some(local) = alias else {
                    return park(format!("person {id} is not known at {}", self.node_region()));
                };
                let (status, merged_into): (String, Option<String>) =
                    persons::table.find(&local).select((persons::status, persons::merged_into)).fetch_one(self.conn)?;
                (local, status, merged_into)
            }
        };
        if status == "merged" {
            return park(format!("person {id} was merged into {}", merged_into.unwrap_or_default()));
        }
        Ok(local)
    }

    fn require_encounter(&mut self, id: &Option<String>) -> Result<(), Refusal> {
        if let Some(id) = id {
            let here: i64 = encounters::table.filter(encounters::id.eq(id)).count().fetch_one(self.conn)?;
            if here == 0 {
                return park(format!("encounter {id} is not known at {}", self.node_region()));
            }
        }
        Ok(())
    }

    fn require_document(&mut self, id: &Option<String>) -> Result<(), Refusal> {
        if let Some(id) = id {
            let here: i64 = documents::table.filter(documents::id.eq(id)).count().fetch_one(self.conn)?;
            if here == 0 {
                return park(format!("document {id} is not known at {}", self.node_region()));
            }
        }
        Ok(())
    }

    fn apply_person(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let person: PersonRecord = Self::remote_payload(change)?;
        let incoming = DemographicsKey {
            from_home: change.origin_region == person.home_region,
            hlc: decode_hlc(&change.hlc).unwrap_or_default(),
            origin: change.origin_region.clone(),
        };
        let local = match self.resolve_person(&person.id)? {
            Some(local) => local,
            None => match self.same_person_here(&person)? {
                Some(local) => {
                    diesel::insert_into(person_aliases::table)
                        .values((
                            person_aliases::remote_id.eq(&person.id),
                            person_aliases::local_id.eq(&local),
                            person_aliases::created_at.eq(crate::now()),
                        ))
                        .run(self.conn)?;
                    // The resident's consent must follow the new id to the node that gave it.
                    self.republish_consent(&local)?;
                    local
                }
                None => return self.insert_remote_person(change, &person),
            },
        };
        let row: PersonRow = self.load_person_row(&local)?;
        if row.status == "merged" {
            return park(format!("person {} was merged into {}", person.id, row.merged_into.unwrap_or_default()));
        }
        let stored_origin = row.demographics_origin.clone().unwrap_or_else(|| row.origin_region.clone());
        let stored = DemographicsKey {
            from_home: stored_origin == row.home_region,
            hlc: decode_hlc(row.demographics_hlc.as_deref().unwrap_or(&row.hlc)).unwrap_or_default(),
            origin: stored_origin,
        };
        if incoming > stored {
            let hlc = if newer(&change.hlc, &row.hlc) { change.hlc.clone() } else { row.hlc.clone() };
            let sealed = self.seal_demographics(
                &person.name,
                person.birth_date.or(row.birth_date),
                person.id_number.as_deref().or(row.id_number.as_deref()),
                person.phone.as_deref(),
                person.address_line.as_deref(),
            )?;
            let updated = diesel::update(persons::table.find(&local))
                .set((
                    sealed,
                    persons::sex.eq(&person.sex),
                    persons::birth_date.eq(person.birth_date.or(row.birth_date)),
                    persons::ethnicity.eq(&person.ethnicity),
                    persons::marital_status.eq(&person.marital_status),
                    persons::address_region.eq(&person.address_region),
                    persons::primary_facility.eq(&person.primary_facility),
                    persons::primary_provider.eq(&person.primary_provider),
                    persons::demographics_hlc.eq(&change.hlc),
                    persons::demographics_origin.eq(&change.origin_region),
                    persons::hlc.eq(hlc),
                    persons::updated_at.eq(crate::now()),
                ))
                .run(self.conn);
            if let Err(error) = updated {
                return match StoreError::from(error) {
                    StoreError::Conflict(_) => park(format!(
                        "the citizen ID of person {} belongs to another person at {}",
                        person.id,
                        self.node_region()
                    )),
                    other => Err(other.into()),
                };
            }
        }
        self.add_remote_identifiers(&local, &person)
    }

    /// The local person a remote one is (same citizen ID, else one of the
    /// same identifiers), if any.
    fn same_person_here(&mut self, person: &PersonRecord) -> Result<Option<String>, StoreError> {
        if let Some(id_number) = &person.id_number {
            let found = self.person_by_citizen_id(id_number)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        for identifier in &person.identifiers {
            let found: Option<String> = person_identifiers::table
                .filter(person_identifiers::system.eq(&identifier.system))
                .filter(person_identifiers::value.eq(&identifier.value))
                .select(person_identifiers::person_id)
                .fetch_one(self.conn)
                .optional()?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn insert_remote_person(&mut self, change: &RemoteChange, person: &PersonRecord) -> Result<(), Refusal> {
        let now = crate::now();
        let non_resident = !person.home_region.starts_with(self.node_region().jurisdiction_prefix());
        let row = PersonRow {
            id: person.id.clone(),
            home_region: person.home_region.clone(),
            name: person.name.clone(),
            sex: person.sex.clone(),
            birth_date: person.birth_date,
            id_number: person.id_number.clone(),
            ethnicity: person.ethnicity.clone(),
            marital_status: person.marital_status.clone(),
            phone: person.phone.clone(),
            address_region: person.address_region.clone(),
            address_line: person.address_line.clone(),
            household_id: None,
            household_relation: person.household_relation.clone(),
            non_resident,
            // A merge travels as a change of its own.
            status: "active".into(),
            merged_into: None,
            origin_region: person.origin_region.clone(),
            hlc: change.hlc.clone(),
            created_at: person.created_at,
            updated_at: now,
            primary_facility: person.primary_facility.clone(),
            primary_provider: person.primary_provider.clone(),
            demographics_hlc: Some(change.hlc.clone()),
            demographics_origin: Some(change.origin_region.clone()),
            id_number_index: None,
            name_index: None,
        };
        diesel::insert_into(persons::table).values(&self.seal_person_row(row.clone())?).run(self.conn)?;
        self.remember_home_region(&row.id, &row.home_region);
        // `same_person_here` found none of these identifiers: they are free.
        for identifier in &person.identifiers {
            self.insert_remote_identifier(&row.id, identifier)?;
        }
        Ok(())
    }

    fn insert_remote_identifier(&mut self, local: &str, identifier: &Identifier) -> Result<(), StoreError> {
        diesel::insert_into(person_identifiers::table)
            .values((
                person_identifiers::id.eq(rhip_core::new_id().to_string()),
                person_identifiers::person_id.eq(local),
                person_identifiers::system.eq(&identifier.system),
                person_identifiers::value.eq(&identifier.value),
                person_identifiers::type_code.eq(&identifier.type_code),
                person_identifiers::created_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Adds the identifiers of a remote person that the local one lacks;
    /// one that belongs to another person here parks the change.
    fn add_remote_identifiers(&mut self, local: &str, person: &PersonRecord) -> Result<(), Refusal> {
        for identifier in &person.identifiers {
            let owner: Option<String> = person_identifiers::table
                .filter(person_identifiers::system.eq(&identifier.system))
                .filter(person_identifiers::value.eq(&identifier.value))
                .select(person_identifiers::person_id)
                .fetch_one(self.conn)
                .optional()?;
            match owner {
                Some(owner) if owner == local => {}
                Some(owner) => {
                    return park(format!(
                        "identifier {}|{} of person {} belongs to person {owner} at {}",
                        identifier.system,
                        identifier.value,
                        person.id,
                        self.node_region()
                    ))
                }
                None => self.insert_remote_identifier(local, identifier)?,
            }
        }
        Ok(())
    }

    fn merge_parties(&mut self, change: &RemoteChange) -> Result<(String, String, String), Refusal> {
        #[derive(Deserialize)]
        struct MergePayload {
            survivor: String,
            merged: String,
            merge: String,
        }
        let payload: MergePayload = Self::remote_payload(change)?;
        let region = self.node_region();
        let Some(survivor) = self.resolve_person(&payload.survivor)? else {
            return park(format!("person {} is not known at {region}", payload.survivor));
        };
        let Some(merged) = self.resolve_person(&payload.merged)? else {
            return park(format!("person {} is not known at {region}", payload.merged));
        };
        Ok((survivor, merged, payload.merge))
    }

    fn apply_merge(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let (survivor, merged, merge_id) = self.merge_parties(change)?;
        let known: i64 = person_merges::table.filter(person_merges::id.eq(&merge_id)).count().fetch_one(self.conn)?;
        if known > 0 {
            return Ok(());
        }
        let (status, merged_into): (String, Option<String>) =
            persons::table.find(&merged).select((persons::status, persons::merged_into)).fetch_one(self.conn)?;
        if status == "merged" {
            if merged_into.as_deref() == Some(survivor.as_str()) {
                return Ok(());
            }
            return park(format!("person {merged} was merged into {}", merged_into.unwrap_or_default()));
        }
        let survivor_status: (String, Option<String>) =
            persons::table.find(&survivor).select((persons::status, persons::merged_into)).fetch_one(self.conn)?;
        if survivor_status.0 == "merged" {
            return park(format!("person {survivor} was merged into {}", survivor_status.1.unwrap_or_default()));
        }
        let actor = format!("federation:{}", change.origin_region);
        self.merge_rows(&survivor, &merged, &merge_id, None, &actor, &change.hlc)?;
        Ok(())
    }

    fn apply_unmerge(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let (_, _, merge_id) = self.merge_parties(change)?;
        let undone: Option<Option<NaiveDateTime>> =
            person_merges::table.find(&merge_id).select(person_merges::undone_at).fetch_one(self.conn).optional()?;
        match undone {
            None => park(format!("merge {merge_id} is not known at {}", self.node_region())),
            Some(Some(_)) => Ok(()),
            Some(None) => {
                let actor = format!("federation:{}", change.origin_region);
                self.unmerge_rows(&merge_id, &actor, &change.hlc)?;
                Ok(())
            }
        }
    }

    fn apply_encounter(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: EncounterRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        // By id, else the same visit known here under another id: one statement.
        let existing: Option<EncounterRecord> = direct!(
            self.conn,
            encounters::table
                .filter(
                    encounters::id.eq(&record.id).or(encounters::facility_code
                        .eq(&record.facility_code)
                        .and(encounters::visit_number.eq(&record.visit_number))),
                )
                .select(EncounterRecord::as_select()),
            get_result
        )
        .optional()?;
        let Some(existing) = existing else {
            diesel::insert_into(encounters::table).values(&record).run(self.conn)?;
            return Ok(());
        };
        if !newer(&record.hlc, &existing.hlc) {
            return Ok(());
        }
        diesel::update(encounters::table.find(&existing.id))
            .set((
                encounters::status.eq(&record.status),
                encounters::encounter_type.eq(&record.encounter_type),
                encounters::admitted_at.eq(record.admitted_at),
                encounters::discharged_at.eq(record.discharged_at),
                encounters::department.eq(&record.department),
                encounters::location.eq(&record.location),
                encounters::prior_location.eq(&record.prior_location),
                encounters::attending.eq(&record.attending),
                encounters::admit_reason.eq(&record.admit_reason),
                encounters::hlc.eq(&record.hlc),
                encounters::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    fn apply_ehr_entry(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: EhrEntryRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        self.require_encounter(&record.encounter_id)?;
        self.require_document(&record.document_id)?;
        let stored: Option<String> =
            ehr_entries::table.find(&record.id).select(ehr_entries::hlc).fetch_one(self.conn).optional()?;
        match stored {
            None => {
                diesel::insert_into(ehr_entries::table).values(&record).run(self.conn)?;
            }
            Some(stored) if newer(&record.hlc, &stored) => {
                diesel::update(ehr_entries::table.find(&record.id))
                    .set((
                        ehr_entries::kind.eq(&record.kind),
                        ehr_entries::occurred_at.eq(record.occurred_at),
                        ehr_entries::facility_code.eq(&record.facility_code),
                        ehr_entries::summary.eq(&record.summary),
                        ehr_entries::encounter_id.eq(&record.encounter_id),
                        ehr_entries::document_id.eq(&record.document_id),
                        ehr_entries::hlc.eq(&record.hlc),
                    ))
                    .run(self.conn)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn apply_document(&mut self, change: &RemoteChange, keep: RemoteKeep) -> Result<(), Refusal> {
        let mut record: DocumentIndexRecord = Self::remote_payload(change)?;
        if let Some(person) = &record.person_id {
            record.person_id = Some(self.active_person(person)?);
        }
        self.require_encounter(&record.encounter_id)?;
        self.require_document(&record.supersedes)?;
        if let Some(cda_id) = &record.cda_id {
            if let Some(other) = self.document_by_cda_id(cda_id)? {
                if other.id != record.id {
                    return park(format!(
                        "document {} has CDA id {cda_id}, already stored at {} as document {}",
                        record.id,
                        self.node_region(),
                        other.id
                    ));
                }
            }
        }
        /// The one field of a document change's payload read here.
        #[derive(serde::Deserialize)]
        struct Carried {
            content_base64: Option<String>,
        }
        let carried = match keep {
            RemoteKeep::Full => change.payload.parse::<Carried>().ok().and_then(|c| c.content_base64),
            _ => None,
        };
        let content = match (keep, carried) {
            (RemoteKeep::Full, Some(encoded)) => {
                use base64::Engine;
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                    return park(format!("the content of document {} is not valid base64", record.id));
                };
                if hex::encode(Sha256::digest(&bytes)) != record.sha256 {
                    return park(format!("the content of document {} does not match its SHA-256", record.id));
                }
                Some(bytes)
            }
            _ => None,
        };
        let holder = if content.is_some() {
            None
        } else {
            Some(record.holder_region.clone().unwrap_or_else(|| change.origin_region.clone()))
        };
        let stored: Option<Option<String>> =
            documents::table.find(&record.id).select(documents::holder_region).fetch_one(self.conn).optional()?;
        match stored {
            None => {}
            // The bytes arrive for a document indexed here without them.
            Some(Some(_)) if content.is_some() => {
                let sealed = content
                    .as_deref()
                    .map(|c| self.crypt().seal_bytes(crate::crypt::DOCUMENT_CONTENT, c))
                    .transpose()?;
                diesel::update(documents::table.find(&record.id))
                    .set((documents::content.eq(&sealed), documents::holder_region.eq(None::<String>)))
                    .run(self.conn)?;
                return Ok(());
            }
            Some(_) => return Ok(()),
        }
        let content =
            content.as_deref().map(|c| self.crypt().seal_bytes(crate::crypt::DOCUMENT_CONTENT, c)).transpose()?;
        diesel::insert_into(documents::table)
            .values((
                documents::id.eq(&record.id),
                documents::person_id.eq(&record.person_id),
                documents::encounter_id.eq(&record.encounter_id),
                documents::type_code.eq(&record.type_code),
                documents::title.eq(&record.title),
                documents::effective_at.eq(record.effective_at),
                documents::author_facility.eq(&record.author_facility),
                documents::custodian.eq(&record.custodian),
                documents::confidentiality.eq(&record.confidentiality),
                documents::content_type.eq(&record.content_type),
                documents::sha256.eq(&record.sha256),
                documents::size_bytes.eq(record.size_bytes),
                documents::content.eq(&content),
                documents::supersedes.eq(&record.supersedes),
                documents::status.eq(&record.status),
                documents::source_region.eq(&record.source_region),
                documents::hlc.eq(&record.hlc),
                documents::created_at.eq(record.created_at),
                documents::cda_id.eq(&record.cda_id),
                documents::set_id.eq(&record.set_id),
                documents::version_number.eq(record.version_number),
                documents::type_system.eq(&record.type_system),
                documents::kind.eq(&record.kind),
                documents::holder_region.eq(&holder),
            ))
            .run(self.conn)?;
        Ok(())
    }

    fn apply_supersede(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        #[derive(Deserialize)]
        struct SupersedePayload {
            id: String,
            superseded_by: String,
        }
        let payload: SupersedePayload = Self::remote_payload(change)?;
        self.require_document(&Some(payload.id.clone()))?;
        self.require_document(&Some(payload.superseded_by.clone()))?;
        let status: String = documents::table.find(&payload.id).select(documents::status).fetch_one(self.conn)?;
        if status == "superseded" {
            return Ok(());
        }
        self.supersede_rows(&payload.id, &payload.superseded_by, &change.hlc)?;
        Ok(())
    }

    fn apply_medication(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: MedicationRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        self.require_encounter(&record.encounter_id)?;
        self.require_document(&record.document_id)?;
        let here: i64 = medications::table.filter(medications::id.eq(&record.id)).count().fetch_one(self.conn)?;
        if here == 0 {
            diesel::insert_into(medications::table).values(&record).run(self.conn)?;
        }
        Ok(())
    }

    fn apply_diagnosis(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: crate::records::DiagnosisRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        self.require_encounter(&record.encounter_id)?;
        self.require_document(&record.document_id)?;
        let here: i64 = diagnoses::table.filter(diagnoses::id.eq(&record.id)).count().fetch_one(self.conn)?;
        if here == 0 {
            self.store_diagnosis(&record)?;
        }
        Ok(())
    }

    fn apply_observation(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: crate::records::ObservationRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        self.require_encounter(&record.encounter_id)?;
        self.require_document(&record.document_id)?;
        let here: i64 = observations::table.filter(observations::id.eq(&record.id)).count().fetch_one(self.conn)?;
        if here == 0 {
            self.store_observation(&record, None)?;
        }
        Ok(())
    }

    fn apply_facility(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let record: FacilityRecord = Self::remote_payload(change)?;
        match self.get_facility(&record.code)? {
            None => {
                diesel::insert_into(facilities::table).values(&record).run(self.conn)?;
            }
            Some(stored) if newer(&record.hlc, &stored.hlc) => {
                diesel::update(facilities::table.find(&record.code))
                    .set((
                        facilities::name.eq(&record.name),
                        facilities::kind.eq(&record.kind),
                        facilities::region.eq(&record.region),
                        facilities::status.eq(&record.status),
                        facilities::hlc.eq(&record.hlc),
                        facilities::updated_at.eq(crate::now()),
                    ))
                    .run(self.conn)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn apply_allergy(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: AllergyRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        // The submission that brought it is archived at its origin, not here.
        record.submission_id = None;
        let stored: Option<(String, String)> = allergies::table
            .filter(
                allergies::id
                    .eq(&record.id)
                    .or(allergies::person_id.eq(&record.person_id).and(allergies::code.eq(&record.code))),
            )
            .select((allergies::id, allergies::hlc))
            .first(self.conn)
            .optional()?;
        match stored {
            None => {
                diesel::insert_into(allergies::table).values(&record).run(self.conn)?;
            }
            Some((id, hlc)) if newer(&record.hlc, &hlc) => {
                diesel::update(allergies::table.find(id))
                    .set((
                        allergies::code_system.eq(&record.code_system),
                        allergies::display.eq(&record.display),
                        allergies::severity.eq(&record.severity),
                        allergies::reaction.eq(&record.reaction),
                        allergies::facility_code.eq(&record.facility_code),
                        allergies::recorded_at.eq(record.recorded_at),
                        allergies::hlc.eq(&record.hlc),
                        allergies::updated_at.eq(crate::now()),
                    ))
                    .run(self.conn)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn apply_contact(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: ContactRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        record.submission_id = None;
        let name_index = self.crypt().contact_name_index(&record.name);
        let stored: Option<(String, String)> = person_contacts::table
            .filter(
                person_contacts::id.eq(&record.id).or(person_contacts::person_id
                    .eq(&record.person_id)
                    .and(person_contacts::name_index.eq(&name_index))
                    .and(person_contacts::relationship.eq(&record.relationship))),
            )
            .select((person_contacts::id, person_contacts::hlc))
            .first(self.conn)
            .optional()?;
        match stored {
            None => self.insert_contact_row(&record)?,
            Some((id, hlc)) if newer(&record.hlc, &hlc) => {
                let phone = self.crypt().seal_opt(crate::crypt::CONTACT_PHONE, record.phone.as_deref())?;
                diesel::update(person_contacts::table.find(id))
                    .set((
                        person_contacts::phone.eq(&phone),
                        person_contacts::facility_code.eq(&record.facility_code),
                        person_contacts::hlc.eq(&record.hlc),
                        person_contacts::updated_at.eq(crate::now()),
                    ))
                    .run(self.conn)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn apply_coverage(&mut self, change: &RemoteChange) -> Result<(), Refusal> {
        let mut record: CoverageRecord = Self::remote_payload(change)?;
        record.person_id = self.active_person(&record.person_id)?;
        record.submission_id = None;
        let stored: Option<(String, String)> = person_coverages::table
            .filter(
                person_coverages::id.eq(&record.id).or(person_coverages::person_id
                    .eq(&record.person_id)
                    .and(person_coverages::plan.eq(&record.plan))
                    .and(person_coverages::member_id.eq(&record.member_id))),
            )
            .select((person_coverages::id, person_coverages::hlc))
            .first(self.conn)
            .optional()?;
        match stored {
            None => {
                diesel::insert_into(person_coverages::table).values(&record).run(self.conn)?;
            }
            Some((id, hlc)) if newer(&record.hlc, &hlc) => {
                diesel::update(person_coverages::table.find(id))
                    .set((
                        person_coverages::company.eq(&record.company),
                        person_coverages::facility_code.eq(&record.facility_code),
                        person_coverages::hlc.eq(&record.hlc),
                        person_coverages::updated_at.eq(crate::now()),
                    ))
                    .run(self.conn)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    // --------------------------------------------------------- dead letters

    /// Parked changes, oldest first; resolved ones too when asked.
    pub fn dead_letters(&mut self, include_resolved: bool, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let mut select = fed_dead_letters::table.into_boxed();
        if !include_resolved {
            select = select.filter(fed_dead_letters::resolved_at.is_null());
        }
        let letters: Vec<DeadLetter> = select
            .order((fed_dead_letters::parked_at.asc(), fed_dead_letters::id.asc()))
            .limit(limit.clamp(1, 10_000))
            .select(DeadLetter::as_select())
            .load(self.conn)?;
        let crypt = self.crypt();
        letters
            .into_iter()
            .map(|letter| {
                Ok(DeadLetter { change: crypt.open(crate::crypt::DEAD_LETTER_CHANGE, &letter.change)?, ..letter })
            })
            .collect()
    }

    /// How many parked changes wait (for status and metrics).
    pub fn dead_letter_count(&mut self) -> Result<i64, StoreError> {
        Ok(fed_dead_letters::table.filter(fed_dead_letters::resolved_at.is_null()).count().fetch_one(self.conn)?)
    }

    /// Tries the oldest unresolved parked changes again (they are already in
    /// the change log, so nothing is appended): an applied one is marked
    /// resolved, a still refused one counts the attempt and keeps the new
    /// reason. Returns each dead letter's id with what happened.
    pub fn retry_dead_letters(&mut self, limit: i64) -> Result<Vec<(String, ApplyOutcome)>, StoreError> {
        let letters = self.dead_letters(false, limit)?;
        let mut outcomes = Vec::with_capacity(letters.len());
        for letter in letters {
            let now = crate::now();
            let parked = match serde_json::from_str::<RemoteChange>(&letter.change) {
                Ok(change) => self.apply_in_savepoint(&change, &letter.peer_region, RemoteKeep::parse(&letter.keep))?,
                Err(error) => Some(format!("the parked change cannot be read: {error}")),
            };
            match parked {
                None => {
                    diesel::update(fed_dead_letters::table.find(&letter.id))
                        .set((
                            fed_dead_letters::attempts.eq(letter.attempts + 1),
                            fed_dead_letters::last_attempt_at.eq(now),
                            fed_dead_letters::resolved_at.eq(now),
                        ))
                        .run(self.conn)?;
                    outcomes.push((letter.id, ApplyOutcome::Applied));
                }
                Some(reason) => {
                    diesel::update(fed_dead_letters::table.find(&letter.id))
                        .set((
                            fed_dead_letters::attempts.eq(letter.attempts + 1),
                            fed_dead_letters::last_attempt_at.eq(now),
                            fed_dead_letters::reason.eq(&reason),
                        ))
                        .run(self.conn)?;
                    outcomes.push((letter.id, ApplyOutcome::Parked(reason)));
                }
            }
        }
        Ok(outcomes)
    }

    /// Where the original bytes of a document indexed without them can be
    /// fetched (`None` when they are stored here or the document is unknown).
    pub fn document_holder(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(documents::table
            .find(id)
            .select(documents::holder_region)
            .fetch_one::<Option<String>>(self.conn)
            .optional()?
            .flatten())
    }

    /// The person a document is about, if the document is known here (for
    /// auditing a federated read).
    pub fn document_person(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(documents::table
            .find(id)
            .select(documents::person_id)
            .fetch_one::<Option<String>>(self.conn)
            .optional()?
            .flatten())
    }

    /// The local EMPI id a remote person id stands for here (itself, or the
    /// local person it is an alias of), if known.
    pub fn local_person_id(&mut self, remote_id: &str) -> Result<Option<String>, StoreError> {
        self.resolve_person(remote_id)
    }
}
