//! Person merges (ADT^A40) and their undoing.
//!
//! A merge moves everything of the merged person (identifiers, encounters,
//! diagnoses, results, documents, EHR entries, submissions, and the allergies,
//! contacts and insurance the survivor does not already have under the same
//! key: those stay with the merged person) to the survivor,
//! marks the merged person `merged` with a pointer to the survivor, and keeps
//! the list of what moved so `unmerge` can move exactly that back.

use crate::conn::Direct;
use crate::schema::{
    allergies, diagnoses, documents, ehr_entries, encounters, observations, person_contacts, person_coverages,
    person_identifiers, person_merges, persons, submissions,
};
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// What a merge moved, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// Identifier row ids.
    pub identifiers: Vec<String>,
    /// Encounter ids.
    pub encounters: Vec<String>,
    /// Diagnosis ids.
    pub diagnoses: Vec<String>,
    /// Observation ids.
    pub observations: Vec<String>,
    /// Document ids.
    pub documents: Vec<String>,
    /// EHR entry ids.
    pub ehr_entries: Vec<String>,
    /// Submission ids.
    pub submissions: Vec<String>,
    /// Allergy ids.
    #[serde(default)]
    pub allergies: Vec<String>,
    /// Contact ids.
    #[serde(default)]
    pub contacts: Vec<String>,
    /// Insurance ids.
    #[serde(default)]
    pub coverages: Vec<String>,
}

/// A recorded merge.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = person_merges)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MergeRecord {
    /// Merge id.
    pub id: String,
    /// The person that remains.
    pub survivor_id: String,
    /// The person merged into it.
    pub merged_id: String,
    /// The submission that asked for it.
    pub submission_id: Option<String>,
    /// Who asked.
    pub actor: String,
    /// What moved (JSON of [`Moved`]).
    pub moved: String,
    /// When.
    pub merged_at: NaiveDateTime,
    /// When it was undone.
    pub undone_at: Option<NaiveDateTime>,
    /// Who undid it.
    pub undone_by: Option<String>,
}

macro_rules! move_rows {
    ($conn:expr, $table:ident, $from:expr, $to:expr) => {{
        let ids: Vec<String> = $table::table.filter($table::person_id.eq($from)).select($table::id).load($conn)?;
        if !ids.is_empty() {
            diesel::update($table::table.filter($table::id.eq_any(&ids)))
                .set($table::person_id.eq($to))
                .execute($conn)?;
        }
        ids
    }};
}

/// Moves the rows of `$from` whose unique key (`$key`, a tuple of columns)
/// `$to` does not already have; returns their ids.
macro_rules! move_unless_known {
    ($conn:expr, $table:ident, $key:expr, $key_type:ty, $from:expr, $to:expr) => {{
        let known: std::collections::HashSet<$key_type> =
            $table::table.filter($table::person_id.eq($to)).select($key).load($conn)?.into_iter().collect();
        let rows: Vec<(String, $key_type)> =
            $table::table.filter($table::person_id.eq($from)).select(($table::id, $key)).load($conn)?;
        let ids: Vec<String> = rows.into_iter().filter(|(_, key)| !known.contains(key)).map(|(id, _)| id).collect();
        if !ids.is_empty() {
            diesel::update($table::table.filter($table::id.eq_any(&ids)))
                .set($table::person_id.eq($to))
                .execute($conn)?;
        }
        ids
    }};
}

macro_rules! move_back {
    ($conn:expr, $table:ident, $ids:expr, $to:expr) => {{
        if !$ids.is_empty() {
            diesel::update($table::table.filter($table::id.eq_any($ids)))
                .set($table::person_id.eq($to))
                .execute($conn)?;
        }
    }};
}

impl Tx<'_> {
    /// Merges `merged_id` into `survivor_id` and records what moved.
    pub fn merge_persons(
        &mut self,
        survivor_id: &str,
        merged_id: &str,
        submission_id: Option<&str>,
        actor: &str,
    ) -> Result<MergeRecord, StoreError> {
        let merge_id = rhip_core::new_id().to_string();
        let hlc = self.tick().encode();
        let record = self.merge_rows(survivor_id, merged_id, &merge_id, submission_id, actor, &hlc)?;
        let home: String = persons::table.find(survivor_id).select(persons::home_region).fetch_one(self.conn)?;
        let payload = serde_json::json!({ "survivor": survivor_id, "merged": merged_id, "merge": record.id });
        self.record_change("person", merged_id, "merge", Some((survivor_id, &home)), &hlc, &payload)?;
        Ok(record)
    }

    /// The rows of a merge without its change-log row: shared by a merge made
    /// here and one applied from another node (which keeps that node's merge
    /// id and HLC, so both nodes can undo it by the same id).
    pub(crate) fn merge_rows(
        &mut self,
        survivor_id: &str,
        merged_id: &str,
        merge_id: &str,
        submission_id: Option<&str>,
        actor: &str,
        hlc: &str,
    ) -> Result<MergeRecord, StoreError> {
        if survivor_id == merged_id {
            return Err(StoreError::Conflict("a person cannot be merged into itself".into()));
        }
        let merged_status: Option<String> =
            persons::table.find(merged_id).select(persons::status).fetch_one(self.conn).optional()?;
        match merged_status.as_deref() {
            None => return Err(StoreError::NotFound(format!("person {merged_id}"))),
            Some("merged") => return Err(StoreError::Conflict(format!("person {merged_id} is already merged"))),
            Some(_) => {}
        }
        let moved = Moved {
            identifiers: move_rows!(self.conn, person_identifiers, merged_id, survivor_id),
            encounters: move_rows!(self.conn, encounters, merged_id, survivor_id),
            diagnoses: move_rows!(self.conn, diagnoses, merged_id, survivor_id),
            observations: move_rows!(self.conn, observations, merged_id, survivor_id),
            documents: {
                let ids: Vec<String> = documents::table
                    .filter(documents::person_id.eq(merged_id))
                    .select(documents::id)
                    .fetch_all(self.conn)?;
                if !ids.is_empty() {
                    diesel::update(documents::table.filter(documents::id.eq_any(&ids)))
                        .set(documents::person_id.eq(survivor_id))
                        .run(self.conn)?;
                }
                ids
            },
            ehr_entries: move_rows!(self.conn, ehr_entries, merged_id, survivor_id),
            submissions: {
                let ids: Vec<String> = submissions::table
                    .filter(submissions::person_id.eq(merged_id))
                    .select(submissions::id)
                    .fetch_all(self.conn)?;
                if !ids.is_empty() {
                    diesel::update(submissions::table.filter(submissions::id.eq_any(&ids)))
                        .set(submissions::person_id.eq(survivor_id))
                        .run(self.conn)?;
                }
                ids
            },
            allergies: move_unless_known!(self.conn, allergies, allergies::code, String, merged_id, survivor_id),
            contacts: move_unless_known!(
                self.conn,
                person_contacts,
                (person_contacts::name_index, person_contacts::relationship),
                (Option<String>, String),
                merged_id,
                survivor_id
            ),
            coverages: move_unless_known!(
                self.conn,
                person_coverages,
                (person_coverages::plan, person_coverages::member_id),
                (String, String),
                merged_id,
                survivor_id
            ),
        };
        diesel::update(persons::table.find(merged_id))
            .set((
                persons::status.eq("merged"),
                persons::merged_into.eq(survivor_id),
                persons::hlc.eq(hlc),
                persons::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        let record = MergeRecord {
            id: merge_id.to_string(),
            survivor_id: survivor_id.to_string(),
            merged_id: merged_id.to_string(),
            submission_id: submission_id.map(str::to_string),
            actor: actor.to_string(),
            moved: serde_json::to_string(&moved).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            merged_at: crate::now(),
            undone_at: None,
            undone_by: None,
        };
        diesel::insert_into(person_merges::table)
            .values((
                person_merges::id.eq(&record.id),
                person_merges::survivor_id.eq(&record.survivor_id),
                person_merges::merged_id.eq(&record.merged_id),
                person_merges::submission_id.eq(&record.submission_id),
                person_merges::actor.eq(&record.actor),
                person_merges::moved.eq(&record.moved),
                person_merges::merged_at.eq(record.merged_at),
            ))
            .run(self.conn)?;
        Ok(record)
    }

    /// Undoes a merge: moves back exactly what it moved and reactivates the person.
    pub fn unmerge(&mut self, merge_id: &str, actor: &str) -> Result<MergeRecord, StoreError> {
        let hlc = self.tick().encode();
        let record = self.unmerge_rows(merge_id, actor, &hlc)?;
        let back = record.merged_id.as_str();
        let home: String = persons::table.find(back).select(persons::home_region).fetch_one(self.conn)?;
        let payload = serde_json::json!({ "survivor": record.survivor_id, "merged": back, "merge": merge_id });
        self.record_change("person", back, "unmerge", Some((back, &home)), &hlc, &payload)?;
        Ok(record)
    }

    /// The rows of an unmerge without its change-log row (see [`Tx::merge_rows`]).
    pub(crate) fn unmerge_rows(&mut self, merge_id: &str, actor: &str, hlc: &str) -> Result<MergeRecord, StoreError> {
        let record: MergeRecord = person_merges::table
            .find(merge_id)
            .select(MergeRecord::as_select())
            .get_result(self.conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("merge {merge_id}")))?;
        if record.undone_at.is_some() {
            return Err(StoreError::Conflict(format!("merge {merge_id} was already undone")));
        }
        let moved: Moved = serde_json::from_str(&record.moved).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let back = record.merged_id.as_str();
        move_back!(self.conn, person_identifiers, &moved.identifiers, back);
        move_back!(self.conn, encounters, &moved.encounters, back);
        move_back!(self.conn, diagnoses, &moved.diagnoses, back);
        move_back!(self.conn, observations, &moved.observations, back);
        move_back!(self.conn, ehr_entries, &moved.ehr_entries, back);
        move_back!(self.conn, allergies, &moved.allergies, back);
        move_back!(self.conn, person_contacts, &moved.contacts, back);
        move_back!(self.conn, person_coverages, &moved.coverages, back);
        if !moved.documents.is_empty() {
            diesel::update(documents::table.filter(documents::id.eq_any(&moved.documents)))
                .set(documents::person_id.eq(back))
                .run(self.conn)?;
        }
        if !moved.submissions.is_empty() {
            diesel::update(submissions::table.filter(submissions::id.eq_any(&moved.submissions)))
                .set(submissions::person_id.eq(back))
                .run(self.conn)?;
        }
        diesel::update(persons::table.find(back))
            .set((
                persons::status.eq("active"),
                persons::merged_into.eq(None::<String>),
                persons::hlc.eq(hlc),
                persons::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        let now = crate::now();
        diesel::update(person_merges::table.find(merge_id))
            .set((person_merges::undone_at.eq(now), person_merges::undone_by.eq(actor)))
            .run(self.conn)?;
        Ok(MergeRecord { undone_at: Some(now), undone_by: Some(actor.to_string()), ..record })
    }

    /// Merges involving a person (as survivor or merged), newest first.
    pub fn merges_of(&mut self, person_id: &str) -> Result<Vec<MergeRecord>, StoreError> {
        Ok(person_merges::table
            .filter(person_merges::survivor_id.eq(person_id).or(person_merges::merged_id.eq(person_id)))
            .order(person_merges::merged_at.desc())
            .select(MergeRecord::as_select())
            .load(self.conn)?)
    }
}
