//! The submission archive: every HL7 message (and later document) received,
//! raw, with the answer it got. A processed message has a dedup key (sending
//! facility | MSH-10) held unique by the database, so a resend finds the
//! stored answer instead of being applied twice. The raw bytes, the answer,
//! the problems and the Z-segments carry the patient's data and are sealed
//! in the row (`crypt`).

use crate::conn::Direct;
use crate::schema::submissions;
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rhip_core::RegionCode;
use serde::Serialize;

/// A submission to archive.
#[derive(Clone, Debug, Default)]
pub struct NewSubmission {
    /// `mllp` or `http`.
    pub channel: String,
    /// `hl7v2` (later `cda`).
    pub kind: String,
    /// MSH-4 (empty when unreadable).
    pub sending_facility: String,
    /// MSH-10 (empty when unknown).
    pub control_id: String,
    /// e.g. `ADT^A01`.
    pub message_type: Option<String>,
    /// MSH-12.
    pub version: Option<String>,
    /// Set for processed messages (AA, AE): resends find this row.
    pub dedup_key: Option<String>,
    /// Region of the registered sending facility.
    pub region: Option<String>,
    /// `AA`, `AE` or `AR`.
    pub outcome: String,
    /// Problems as JSON, when any.
    pub errors: Option<String>,
    /// The person the message was about, once linked.
    pub person_id: Option<String>,
    /// Bytes as received.
    pub raw: Vec<u8>,
    /// Bytes of the answer.
    pub ack: Vec<u8>,
    /// Unknown Z-segments, kept verbatim.
    pub z_segments: Option<String>,
}

/// An archived submission without its bytes.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = submissions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct SubmissionRecord {
    /// Submission id.
    pub id: String,
    /// `mllp` or `http`.
    pub channel: String,
    /// `hl7v2`.
    pub kind: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-10.
    pub control_id: String,
    /// Message type.
    pub message_type: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Region of the sending facility.
    pub region: Option<String>,
    /// When it arrived (UTC).
    pub received_at: NaiveDateTime,
    /// `AA`, `AE` or `AR`.
    pub outcome: String,
    /// Problems as JSON.
    pub errors: Option<String>,
    /// Linked person.
    pub person_id: Option<String>,
    /// Unknown Z-segments kept from the message, separated by `\r`.
    pub z_segments: Option<String>,
}

/// Filters for listing submissions.
#[derive(Clone, Debug, Default)]
pub struct SubmissionQuery {
    /// Only this sending facility.
    pub facility: Option<String>,
    /// Only facilities of this region's subtree.
    pub region: Option<RegionCode>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// At or after.
    pub from: Option<NaiveDateTime>,
    /// Before.
    pub to: Option<NaiveDateTime>,
    /// Page size.
    pub limit: i64,
}

impl Tx<'_> {
    /// The stored answer of an earlier submission with this dedup key.
    pub fn find_answer(&mut self, dedup_key: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let found: Option<(String, Vec<u8>)> = submissions::table
            .filter(submissions::dedup_key.eq(dedup_key))
            .select((submissions::id, submissions::ack))
            .fetch_one(self.conn)
            .optional()?;
        found.map(|(id, ack)| Ok((id, self.crypt().open_bytes(crate::crypt::SUBMISSION_ACK, &ack)?))).transpose()
    }

    /// Archives a submission; a second one with the same dedup key is a conflict.
    pub fn insert_submission(&mut self, id: &str, new: &NewSubmission) -> Result<(), StoreError> {
        let crypt = self.crypt();
        let errors = crypt.seal_opt(crate::crypt::SUBMISSION_ERRORS, new.errors.as_deref())?;
        let raw = crypt.seal_bytes(crate::crypt::SUBMISSION_RAW, &new.raw)?;
        let ack = crypt.seal_bytes(crate::crypt::SUBMISSION_ACK, &new.ack)?;
        let z_segments = crypt.seal_opt(crate::crypt::SUBMISSION_Z_SEGMENTS, new.z_segments.as_deref())?;
        diesel::insert_into(submissions::table)
            .values((
                submissions::id.eq(id),
                submissions::channel.eq(&new.channel),
                submissions::kind.eq(&new.kind),
                submissions::sending_facility.eq(&new.sending_facility),
                submissions::control_id.eq(&new.control_id),
                submissions::message_type.eq(&new.message_type),
                submissions::version.eq(&new.version),
                submissions::dedup_key.eq(&new.dedup_key),
                submissions::region.eq(&new.region),
                submissions::received_at.eq(crate::now()),
                submissions::outcome.eq(&new.outcome),
                submissions::errors.eq(&errors),
                submissions::person_id.eq(&new.person_id),
                submissions::raw.eq(&raw),
                submissions::ack.eq(&ack),
                submissions::z_segments.eq(&z_segments),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Records the answer of a submission archived before its content was
    /// applied (records it brought refer to it).
    pub fn complete_submission(
        &mut self,
        id: &str,
        outcome: &str,
        errors: Option<&str>,
        person_id: Option<&str>,
        ack: &[u8],
    ) -> Result<(), StoreError> {
        let errors = self.crypt().seal_opt(crate::crypt::SUBMISSION_ERRORS, errors)?;
        let ack = self.crypt().seal_bytes(crate::crypt::SUBMISSION_ACK, ack)?;
        diesel::update(submissions::table.find(id))
            .set((
                submissions::outcome.eq(outcome),
                submissions::errors.eq(&errors),
                submissions::person_id.eq(person_id),
                submissions::ack.eq(&ack),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Lists submissions, newest first.
    pub fn list_submissions(&mut self, query: &SubmissionQuery) -> Result<Vec<SubmissionRecord>, StoreError> {
        let mut select = submissions::table.into_boxed();
        if let Some(facility) = &query.facility {
            select = select.filter(submissions::sending_facility.eq(facility.clone()));
        }
        if let Some(region) = &query.region {
            select = select.filter(submissions::region.like(format!("{}%", region.jurisdiction_prefix())));
        }
        if let Some(outcome) = &query.outcome {
            select = select.filter(submissions::outcome.eq(outcome.clone()));
        }
        if let Some(from) = query.from {
            select = select.filter(submissions::received_at.ge(from));
        }
        if let Some(to) = query.to {
            select = select.filter(submissions::received_at.lt(to));
        }
        let mut records: Vec<SubmissionRecord> = select
            .order((submissions::received_at.desc(), submissions::id.desc()))
            .limit(query.limit.clamp(1, 10_000))
            .select(SubmissionRecord::as_select())
            .load(self.conn)?;
        let crypt = self.crypt();
        for record in &mut records {
            crypt.open_in_place(crate::crypt::SUBMISSION_ERRORS, &mut record.errors)?;
            crypt.open_in_place(crate::crypt::SUBMISSION_Z_SEGMENTS, &mut record.z_segments)?;
        }
        Ok(records)
    }
}
