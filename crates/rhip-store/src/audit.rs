//! The audit log: who read or changed which personal data, when, why and
//! with what outcome. Rows are never updated, and deleted only once archived
//! (database triggers refuse anything else); `audit_chain.rs` chains, seals
//! and archives them.

use crate::conn::Direct;
use crate::schema::audit_log;
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// One access to record.
#[derive(Clone, Debug, Default)]
pub struct NewAuditEntry {
    /// Token subject, user name or `node` for the node itself.
    pub actor: String,
    /// Role the actor acted in.
    pub role: Option<String>,
    /// Region of the actor's authority.
    pub actor_region: Option<String>,
    /// Facility of the actor.
    pub facility_code: Option<String>,
    /// `read`, `search`, `create`, `authenticate`, ...
    pub action: String,
    /// `person`, `ehr`, `documents`, `facility`, ...
    pub resource_type: String,
    /// Id of the resource, if one.
    pub resource_id: Option<String>,
    /// The person whose data was touched (never a citizen ID).
    pub person_id: Option<String>,
    /// Stated purpose of use.
    pub purpose: Option<String>,
    /// `success`, `denied` or `error`.
    pub outcome: String,
    /// HTTP status answered.
    pub http_status: Option<i32>,
    /// Request id, to join with logs.
    pub request_id: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// Short free text (reason of a denial, number of results).
    pub detail: Option<String>,
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditRecord {
    /// Position in this node's log.
    pub seq: i64,
    /// Entry id.
    pub id: String,
    /// When it happened (UTC).
    pub occurred_at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// In which role.
    pub role: Option<String>,
    /// With authority over which region.
    pub actor_region: Option<String>,
    /// From which facility.
    pub facility_code: Option<String>,
    /// Did what.
    pub action: String,
    /// To what kind of record.
    pub resource_type: String,
    /// To which record.
    pub resource_id: Option<String>,
    /// About whom.
    pub person_id: Option<String>,
    /// Why.
    pub purpose: Option<String>,
    /// With what outcome.
    pub outcome: String,
    /// HTTP status answered.
    pub http_status: Option<i32>,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// Free text.
    pub detail: Option<String>,
    /// The node that recorded it, when it was received from there (it was
    /// about a person whose home is this node); `None`: recorded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_region: Option<String>,
}

/// Filters for reading the audit log; all given filters must match.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Entries about this person.
    pub person_id: Option<String>,
    /// Entries by this actor.
    pub actor: Option<String>,
    /// Entries by actors of this facility.
    pub facility_code: Option<String>,
    /// Entries with this outcome.
    pub outcome: Option<String>,
    /// Entries of this action (`read`, `connect`, `federation_apply`, ...).
    pub action: Option<String>,
    /// At or after.
    pub from: Option<NaiveDateTime>,
    /// Before.
    pub to: Option<NaiveDateTime>,
    /// Page size.
    pub limit: i64,
}

impl Tx<'_> {
    /// Appends one entry. An entry about a person whose home is another node
    /// also becomes an `audit_entry` change (the entry itself, its `seq`
    /// left 0: a position is local), which travels to that node, so the
    /// resident's access log there shows it.
    pub fn append_audit(&mut self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let record = AuditRecord {
            seq: 0,
            id: rhip_core::new_id().to_string(),
            occurred_at: crate::now(),
            actor: entry.actor.clone(),
            role: entry.role.clone(),
            actor_region: entry.actor_region.clone(),
            facility_code: entry.facility_code.clone(),
            action: entry.action.clone(),
            resource_type: entry.resource_type.clone(),
            resource_id: entry.resource_id.clone(),
            person_id: entry.person_id.clone(),
            purpose: entry.purpose.clone(),
            outcome: entry.outcome.clone(),
            http_status: entry.http_status,
            request_id: entry.request_id.clone(),
            source_ip: entry.source_ip.clone(),
            detail: entry.detail.clone(),
            origin_region: None,
        };
        self.insert_audit(&record)?;
        let Some(person_id) = &record.person_id else { return Ok(()) };
        let home = match self.home_region_of(person_id) {
            Ok(home) => home,
            // An id that names nobody here (a guess, a typo) has no home to tell.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        if home == self.node_region().as_str() {
            return Ok(());
        }
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hlc = self.tick().encode();
        self.record_change("audit_entry", &record.id, "create", Some((person_id, &home)), &hlc, &payload)
    }

    /// Stores an entry received from `origin_region` about a person of this
    /// node (`person_id`: the local id it resolved to); chained and sealed
    /// here like the node's own entries. A replay changes nothing.
    pub fn store_received_audit(
        &mut self,
        entry: &AuditRecord,
        person_id: &str,
        origin_region: &str,
    ) -> Result<(), StoreError> {
        let here: i64 = audit_log::table.filter(audit_log::id.eq(&entry.id)).count().fetch_one(self.conn)?;
        if here > 0 {
            return Ok(());
        }
        let received = AuditRecord {
            person_id: Some(person_id.to_string()),
            origin_region: Some(origin_region.to_string()),
            ..entry.clone()
        };
        self.insert_audit(&received)
    }

    /// Inserts every column but `seq`, which the database assigns.
    fn insert_audit(&mut self, entry: &AuditRecord) -> Result<(), StoreError> {
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::id.eq(&entry.id),
                audit_log::occurred_at.eq(entry.occurred_at),
                audit_log::actor.eq(&entry.actor),
                audit_log::role.eq(&entry.role),
                audit_log::actor_region.eq(&entry.actor_region),
                audit_log::facility_code.eq(&entry.facility_code),
                audit_log::action.eq(&entry.action),
                audit_log::resource_type.eq(&entry.resource_type),
                audit_log::resource_id.eq(&entry.resource_id),
                audit_log::person_id.eq(&entry.person_id),
                audit_log::purpose.eq(&entry.purpose),
                audit_log::outcome.eq(&entry.outcome),
                audit_log::http_status.eq(entry.http_status),
                audit_log::request_id.eq(&entry.request_id),
                audit_log::source_ip.eq(&entry.source_ip),
                audit_log::detail.eq(&entry.detail),
                audit_log::origin_region.eq(&entry.origin_region),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Reads entries, newest first.
    pub fn query_audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut select = audit_log::table.into_boxed();
        if let Some(person) = &query.person_id {
            select = select.filter(audit_log::person_id.eq(person.clone()));
        }
        if let Some(actor) = &query.actor {
            select = select.filter(audit_log::actor.eq(actor.clone()));
        }
        if let Some(facility) = &query.facility_code {
            select = select.filter(audit_log::facility_code.eq(facility.clone()));
        }
        if let Some(outcome) = &query.outcome {
            select = select.filter(audit_log::outcome.eq(outcome.clone()));
        }
        if let Some(action) = &query.action {
            select = select.filter(audit_log::action.eq(action.clone()));
        }
        if let Some(from) = query.from {
            select = select.filter(audit_log::occurred_at.ge(from));
        }
        if let Some(to) = query.to {
            select = select.filter(audit_log::occurred_at.lt(to));
        }
        Ok(select
            .order(audit_log::seq.desc())
            .limit(query.limit.clamp(1, 10_000))
            .select(AuditRecord::as_select())
            .load(self.conn)?)
    }
}
