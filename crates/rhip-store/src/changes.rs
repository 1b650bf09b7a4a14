//! The transactional outbox: every write that must travel appends a change
//! here in its own transaction, so nothing is sent that was not committed and
//! nothing committed is lost while a peer is down. Payloads carry personal
//! data, so they are sealed in the row and opened when read
//! ([`Tx::open_changes`]).

use crate::conn::Direct;
use crate::schema::change_log;
use crate::{StoreError, Tx};
use diesel::prelude::*;

/// One change of the outbox, its payload opened.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRecord {
    /// Local order of the outbox, assigned at insert.
    pub seq: i64,
    /// Federation-wide id of the change (applied once per node).
    pub id: String,
    /// Hybrid-logical-clock time of the change.
    pub hlc: String,
    /// Region of the node where the change was made.
    pub origin_region: String,
    /// What kind of record changed (`person`, `facility`, ...).
    pub entity: String,
    /// Id of the record that changed.
    pub entity_id: String,
    /// `create`, `update`, `merge`, ...
    pub op: String,
    /// The person the change is about, for routing to the home county.
    pub person_id: Option<String>,
    /// That person's home region.
    pub home_region: Option<String>,
    /// The record as JSON (opened; sealed in the row).
    pub payload: String,
    /// When it was recorded.
    pub created_at: chrono::NaiveDateTime,
    /// The peer region this change arrived from (`None`: made here), so it
    /// is never sent back that way.
    pub received_from: Option<String>,
}

/// A change-log row as stored: its payload sealed in the binary format
/// (rows written while the column held text keep the text format, which
/// opens all the same).
#[derive(Queryable, Selectable)]
#[diesel(table_name = change_log)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct ChangeRow {
    seq: i64,
    id: String,
    hlc: String,
    origin_region: String,
    entity: String,
    entity_id: String,
    op: String,
    person_id: Option<String>,
    home_region: Option<String>,
    payload: Vec<u8>,
    created_at: chrono::NaiveDateTime,
    received_from: Option<String>,
}

impl Tx<'_> {
    /// Appends a change to the outbox (call inside the write it describes).
    pub(crate) fn record_change(
        &mut self,
        entity: &str,
        entity_id: &str,
        op: &str,
        person: Option<(&str, &str)>,
        hlc: &str,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.record_routed_change(entity, entity_id, op, person.map(|p| p.0), person.map(|p| p.1), hlc, payload)
    }

    /// Like [`Tx::record_change`], for a change that is routed toward a
    /// region without being about a person (a token revocation goes toward
    /// the node that issued the token).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_routed_change(
        &mut self,
        entity: &str,
        entity_id: &str,
        op: &str,
        person_id: Option<&str>,
        home_region: Option<&str>,
        hlc: &str,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        diesel::insert_into(change_log::table)
            .values((
                change_log::id.eq(rhip_core::new_id().to_string()),
                change_log::hlc.eq(hlc),
                change_log::origin_region.eq(self.node_region().as_str()),
                change_log::entity.eq(entity),
                change_log::entity_id.eq(entity_id),
                change_log::op.eq(op),
                change_log::person_id.eq(person_id),
                change_log::home_region.eq(home_region),
                change_log::payload.eq(self.seal_payload(&payload.to_string())?),
                change_log::created_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Changes after `after_seq`, oldest first (the federation reads these).
    pub fn changes_after(&mut self, after_seq: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        let changes = change_log::table
            .filter(change_log::seq.gt(after_seq))
            .order(change_log::seq.asc())
            .limit(limit)
            .select(ChangeRow::as_select())
            .load(self.conn)?;
        self.open_changes(changes)
    }

    /// Opens the sealed payloads of change-log rows just read.
    pub(crate) fn open_changes(&self, rows: Vec<ChangeRow>) -> Result<Vec<ChangeRecord>, StoreError> {
        let crypt = self.crypt();
        rows.into_iter()
            .map(|row| {
                let payload = crypt.open_bytes(crate::crypt::CHANGE_PAYLOAD, &row.payload)?;
                let payload = String::from_utf8(payload)
                    .map_err(|e| StoreError::Corrupt(format!("change {}: payload is not UTF-8: {e}", row.id)))?;
                Ok(ChangeRecord {
                    seq: row.seq,
                    id: row.id,
                    hlc: row.hlc,
                    origin_region: row.origin_region,
                    entity: row.entity,
                    entity_id: row.entity_id,
                    op: row.op,
                    person_id: row.person_id,
                    home_region: row.home_region,
                    payload,
                    created_at: row.created_at,
                    received_from: row.received_from,
                })
            })
            .collect()
    }

    /// Seals a change payload for its row, in the binary format (no base64:
    /// the change log is most of what a node writes).
    pub(crate) fn seal_payload(&self, payload: &str) -> Result<Vec<u8>, StoreError> {
        self.crypt().seal_bytes(crate::crypt::CHANGE_PAYLOAD, payload.as_bytes())
    }
}
