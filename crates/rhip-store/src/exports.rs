//! Reads for de-identified exports (`rhip export deidentified`,
//! `GET /api/v1/exports/deidentified`): active persons of a region's subtree,
//! a page at a time by EMPI id, and the clinical rows of a page in one query
//! per kind (no query per person).
//!
//! Only what an export may carry is selected: a person's sex, birth date and
//! home region, never a name, citizen ID, phone or address; encounters
//! without visit numbers, facility codes, departments or clinicians (the
//! facility's kind instead); diagnosis and result codes without display
//! texts or values; EHR entry kinds without summaries. Nothing here writes.

use crate::conn::Direct;
use crate::schema::{diagnoses, ehr_entries, encounters, facilities, observations, persons};
use crate::{DbConn, Scope, StoreError, Tx};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use rhip_core::RegionCode;

/// Most persons per page.
const PAGE_MAX: i64 = 5_000;

/// A person's quasi-identifiers as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ExportPerson {
    /// EMPI id (only ever turned into a pseudonym).
    pub id: String,
    /// GB/T 2261.1 sex code.
    pub sex: String,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// Home region code.
    pub home_region: String,
}

/// An encounter as an export sees it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ExportEncounterRow {
    /// Encounter id (to attach diagnoses; never exported).
    pub id: String,
    /// The patient.
    pub person_id: String,
    /// Encounter type.
    pub encounter_type: String,
    /// Status.
    pub status: String,
    /// Admission or visit start.
    pub admitted_at: Option<NaiveDateTime>,
    /// Kind of the facility, when it is in the registry.
    pub facility_kind: Option<String>,
}

/// A diagnosis as an export sees it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ExportDiagnosisRow {
    /// The patient.
    pub person_id: String,
    /// Its encounter.
    pub encounter_id: String,
    /// Code system.
    pub code_system: String,
    /// Code.
    pub code: String,
    /// Diagnosis type.
    pub diagnosis_type: Option<String>,
}

/// A result as an export sees it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ExportObservationRow {
    /// The patient.
    pub person_id: String,
    /// Code system.
    pub code_system: String,
    /// Code.
    pub code: String,
    /// When observed.
    pub observed_at: Option<NaiveDateTime>,
    /// Abnormal flag.
    pub abnormal_flag: Option<String>,
    /// Its encounter, for consent.
    pub encounter_id: Option<String>,
}

/// An EHR entry as an export sees it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ExportEhrRow {
    /// The patient.
    pub person_id: String,
    /// Entry kind.
    pub kind: String,
    /// When it happened.
    pub occurred_at: NaiveDateTime,
    /// Its encounter, for consent.
    pub encounter_id: Option<String>,
}

/// The clinical rows of a page of persons, each list ordered by person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportClinical {
    /// Encounters.
    pub encounters: Vec<ExportEncounterRow>,
    /// Diagnoses attached to an encounter.
    pub diagnoses: Vec<ExportDiagnosisRow>,
    /// Results.
    pub observations: Vec<ExportObservationRow>,
    /// EHR entries.
    pub ehr_entries: Vec<ExportEhrRow>,
}

impl Tx<'_> {
    /// Makes this transaction one read-only snapshot, so an export's two
    /// passes (counting the classes, then writing the records) see the same
    /// persons. Call it first in the transaction. On PostgreSQL this is
    /// `REPEATABLE READ`; SQLite's read transaction is a snapshot already.
    pub fn export_snapshot(&mut self) -> Result<(), StoreError> {
        if let DbConn::Pg(conn) = &mut *self.conn {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(conn)?;
        }
        Ok(())
    }

    /// The next page of active persons whose home region lies in the scope's
    /// region subtree, after `after` in EMPI id order. Exports are by region:
    /// a facility's or a person's scope reads nothing.
    pub fn export_persons(
        &mut self,
        scope: &Scope,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExportPerson>, StoreError> {
        let region: RegionCode = match scope {
            Scope::Node => self.node_region(),
            Scope::Region(region) => *region,
            Scope::Facility(_) | Scope::Person(_) => return Ok(Vec::new()),
        };
        let mut query = persons::table
            .filter(persons::status.eq("active"))
            .filter(persons::home_region.like(format!("{}%", region.jurisdiction_prefix())))
            .select((persons::id, persons::sex, persons::birth_date, persons::home_region))
            .order(persons::id)
            .limit(limit.clamp(1, PAGE_MAX))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(persons::id.gt(after.to_string()));
        }
        Ok(query.load(self.conn)?)
    }

    /// The clinical rows of `person_ids` (a page from
    /// [`export_persons`](Tx::export_persons)): one query per kind.
    pub fn export_clinical(&mut self, person_ids: &[String]) -> Result<ExportClinical, StoreError> {
        if person_ids.is_empty() {
            return Ok(ExportClinical::default());
        }
        let encounters = encounters::table
            .left_join(facilities::table.on(facilities::code.eq(encounters::facility_code)))
            .filter(encounters::person_id.eq_any(person_ids))
            .select((
                encounters::id,
                encounters::person_id,
                encounters::encounter_type,
                encounters::status,
                encounters::admitted_at,
                facilities::kind.nullable(),
            ))
            .order((encounters::person_id, encounters::id))
            .fetch_all(self.conn)?;
        let diagnoses = diagnoses::table
            .filter(diagnoses::person_id.eq_any(person_ids))
            .filter(diagnoses::encounter_id.is_not_null())
            .select((
                diagnoses::person_id,
                diagnoses::encounter_id.assume_not_null(),
                diagnoses::code_system,
                diagnoses::code,
                diagnoses::diagnosis_type,
            ))
            .order((diagnoses::person_id, diagnoses::id))
            .fetch_all(self.conn)?;
        let observations = observations::table
            .filter(observations::person_id.eq_any(person_ids))
            .select((
                observations::person_id,
                observations::code_system,
                observations::code,
                observations::observed_at,
                observations::abnormal_flag,
                observations::encounter_id,
            ))
            .order((observations::person_id, observations::id))
            .fetch_all(self.conn)?;
        let ehr_entries = ehr_entries::table
            .filter(ehr_entries::person_id.eq_any(person_ids))
            .filter(ehr_entries::kind.ne_all(["encounter", "lab_report"]))
            .select((ehr_entries::person_id, ehr_entries::kind, ehr_entries::occurred_at, ehr_entries::encounter_id))
            .order((ehr_entries::person_id, ehr_entries::id))
            .fetch_all(self.conn)?;
        Ok(ExportClinical { encounters, diagnoses, observations, ehr_entries })
    }
}
