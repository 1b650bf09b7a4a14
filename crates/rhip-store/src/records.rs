//! EMRD and EHRD repositories: encounters, diagnoses, results, and the EHR
//! index a resident's lifetime record is read from (documents: `documents.rs`).

use crate::conn::Direct;
use crate::schema::{ehr_entries, encounters};
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rhip_core::{EhrEntryKind, EncounterType};
use serde::{Deserialize, Serialize};

/// An encounter to store.
#[derive(Clone, Debug)]
pub struct NewEncounter {
    /// The patient.
    pub person_id: String,
    /// Where it happened.
    pub facility_code: String,
    /// The facility's visit number (unique per facility).
    pub visit_number: String,
    /// Outpatient, inpatient, ...
    pub encounter_type: EncounterType,
    /// `in_progress`, `finished`, `cancelled`.
    pub status: String,
    /// Admission or visit start.
    pub admitted_at: Option<NaiveDateTime>,
    /// Discharge or visit end.
    pub discharged_at: Option<NaiveDateTime>,
    /// Department name.
    pub department: Option<String>,
    /// Bed or ward.
    pub location: Option<String>,
    /// Where the patient was before a transfer.
    pub prior_location: Option<String>,
    /// Attending clinician.
    pub attending: Option<String>,
    /// Why the patient came (HL7 PV2-3).
    pub admit_reason: Option<String>,
}

/// A stored encounter.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = encounters)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EncounterRecord {
    /// Encounter id.
    pub id: String,
    /// The patient.
    pub person_id: String,
    /// Facility code.
    pub facility_code: String,
    /// Facility's visit number.
    pub visit_number: String,
    /// Encounter type.
    pub encounter_type: String,
    /// Status.
    pub status: String,
    /// Start.
    pub admitted_at: Option<NaiveDateTime>,
    /// End.
    pub discharged_at: Option<NaiveDateTime>,
    /// Department.
    pub department: Option<String>,
    /// Bed or ward.
    pub location: Option<String>,
    /// Attending clinician.
    pub attending: Option<String>,
    /// Node where it was recorded.
    pub source_region: String,
    /// Location before the last transfer.
    pub prior_location: Option<String>,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First stored.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Why the patient came (HL7 PV2-3).
    pub admit_reason: Option<String>,
}

/// An EHR index entry to store.
#[derive(Clone, Debug)]
pub struct NewEhrEntry {
    /// The resident.
    pub person_id: String,
    /// What kind of event.
    pub kind: EhrEntryKind,
    /// When it happened.
    pub occurred_at: NaiveDateTime,
    /// Facility where it happened.
    pub facility_code: Option<String>,
    /// One line for lists.
    pub summary: String,
    /// Encounter it indexes.
    pub encounter_id: Option<String>,
    /// Document it indexes.
    pub document_id: Option<String>,
}

/// A stored EHR index entry.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = ehr_entries)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EhrEntryRecord {
    /// Entry id.
    pub id: String,
    /// The resident.
    pub person_id: String,
    /// Kind (snake_case of `EhrEntryKind`).
    pub kind: String,
    /// When it happened.
    pub occurred_at: NaiveDateTime,
    /// Facility.
    pub facility_code: Option<String>,
    /// Node where it was recorded.
    pub source_region: String,
    /// One line for lists.
    pub summary: String,
    /// Encounter it indexes.
    pub encounter_id: Option<String>,
    /// Document it indexes.
    pub document_id: Option<String>,
    /// Hybrid-logical-clock time.
    pub hlc: String,
    /// Stored at.
    pub created_at: NaiveDateTime,
}

impl Tx<'_> {
    /// Stores an encounter and records the change.
    pub fn insert_encounter(&mut self, new: &NewEncounter) -> Result<EncounterRecord, StoreError> {
        let now = crate::now();
        let record = EncounterRecord {
            id: rhip_core::new_id().to_string(),
            person_id: new.person_id.clone(),
            facility_code: new.facility_code.clone(),
            visit_number: new.visit_number.clone(),
            encounter_type: new.encounter_type.as_str().to_string(),
            status: new.status.clone(),
            admitted_at: new.admitted_at,
            discharged_at: new.discharged_at,
            department: new.department.clone(),
            location: new.location.clone(),
            attending: new.attending.clone(),
            source_region: self.node_region().as_str().to_string(),
            prior_location: new.prior_location.clone(),
            hlc: self.tick().encode(),
            created_at: now,
            updated_at: now,
            admit_reason: new.admit_reason.clone(),
        };
        diesel::insert_into(encounters::table).values(&record).run(self.conn)?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("encounter", &record.id, "create", Some((&record.person_id, &home)), &record.hlc, &payload)?;
        Ok(record)
    }

    /// Stores an EHR index entry and records the change.
    pub fn insert_ehr_entry(&mut self, new: &NewEhrEntry) -> Result<EhrEntryRecord, StoreError> {
        let record = EhrEntryRecord {
            id: rhip_core::new_id().to_string(),
            person_id: new.person_id.clone(),
            kind: new.kind.as_str().to_string(),
            occurred_at: new.occurred_at,
            facility_code: new.facility_code.clone(),
            source_region: self.node_region().as_str().to_string(),
            summary: new.summary.clone(),
            encounter_id: new.encounter_id.clone(),
            document_id: new.document_id.clone(),
            hlc: self.tick().encode(),
            created_at: crate::now(),
        };
        diesel::insert_into(ehr_entries::table).values(&record).run(self.conn)?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("ehr_entry", &record.id, "create", Some((&record.person_id, &home)), &record.hlc, &payload)?;
        Ok(record)
    }

    /// A person's EHR index, newest first.
    pub fn ehr_entries_for(&mut self, person_id: &str, limit: i64) -> Result<Vec<EhrEntryRecord>, StoreError> {
        Ok(ehr_entries::table
            .filter(ehr_entries::person_id.eq(person_id))
            .order((ehr_entries::occurred_at.desc(), ehr_entries::id.desc()))
            .limit(limit.clamp(1, 10_000))
            .select(EhrEntryRecord::as_select())
            .load(self.conn)?)
    }

    /// A person's encounters, newest first.
    pub fn encounters_for(&mut self, person_id: &str) -> Result<Vec<EncounterRecord>, StoreError> {
        Ok(encounters::table
            .filter(encounters::person_id.eq(person_id))
            .order(encounters::created_at.desc())
            .select(EncounterRecord::as_select())
            .load(self.conn)?)
    }

    /// A person's home region (remembered for the transaction), for
    /// decisions that depend on where the person lives.
    pub fn home_region_of(&mut self, person_id: &str) -> Result<String, StoreError> {
        use crate::schema::persons;
        if let Some(home) = self.memo.home_regions.get(person_id) {
            return Ok(home.clone());
        }
        let home: String = persons::table
            .find(person_id)
            .select(persons::home_region)
            .fetch_one(self.conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("person {person_id}")))?;
        self.remember_home_region(person_id, &home);
        Ok(home)
    }

    /// Notes a person's home region for the rest of this transaction.
    pub(crate) fn remember_home_region(&mut self, person_id: &str, home_region: &str) {
        self.memo.home_regions.insert(person_id.to_string(), home_region.to_string());
    }
}

/// Changes to an encounter sent by a later message.
#[derive(Clone, Debug, Default)]
pub struct EncounterChanges {
    /// New status.
    pub status: Option<String>,
    /// Encounter type (class) if sent.
    pub encounter_type: Option<EncounterType>,
    /// Admission time if sent.
    pub admitted_at: Option<NaiveDateTime>,
    /// Discharge time: `Some(None)` clears it (a cancelled discharge).
    pub discharged_at: Option<Option<NaiveDateTime>>,
    /// Department if sent.
    pub department: Option<String>,
    /// Location if sent.
    pub location: Option<String>,
    /// Prior location if sent.
    pub prior_location: Option<String>,
    /// Attending clinician if sent.
    pub attending: Option<String>,
    /// Admit reason if sent.
    pub admit_reason: Option<String>,
}

/// A diagnosis of an encounter.
#[derive(Clone, Debug)]
pub struct NewDiagnosis {
    /// The encounter.
    pub encounter_id: Option<String>,
    /// The patient.
    pub person_id: String,
    /// Coding system (`ICD10`, ...).
    pub code_system: String,
    /// Code.
    pub code: String,
    /// Text.
    pub display: Option<String>,
    /// Admitting, working, final.
    pub diagnosis_type: Option<String>,
    /// When diagnosed.
    pub diagnosed_at: Option<NaiveDateTime>,
    /// The document it was extracted from.
    pub document_id: Option<String>,
}

/// A result (lab or exam observation).
#[derive(Clone, Debug)]
pub struct NewObservation {
    /// The patient.
    pub person_id: String,
    /// The encounter, when known.
    pub encounter_id: Option<String>,
    /// The report (order) it belongs to.
    pub report_id: Option<String>,
    /// Coding system of the test.
    pub code_system: String,
    /// Test code.
    pub code: String,
    /// Test name.
    pub display: Option<String>,
    /// Value as text.
    pub value: Option<String>,
    /// HL7 value type (NM, ST, CE, ...).
    pub value_type: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Reference range.
    pub reference_range: Option<String>,
    /// Abnormal flags.
    pub abnormal_flag: Option<String>,
    /// Result status (F, C, P, ...).
    pub status: String,
    /// When observed.
    pub observed_at: Option<NaiveDateTime>,
    /// The submission that brought it.
    pub submission_id: Option<String>,
    /// The document it was extracted from.
    pub document_id: Option<String>,
}

/// A stored observation (and the payload of its change).
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = crate::schema::observations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ObservationRecord {
    /// Id.
    pub id: String,
    /// The patient.
    pub person_id: String,
    /// The encounter.
    pub encounter_id: Option<String>,
    /// The report.
    pub report_id: Option<String>,
    /// Coding system.
    pub code_system: String,
    /// Code.
    pub code: String,
    /// Name.
    pub display: Option<String>,
    /// Value.
    pub value: Option<String>,
    /// Value type.
    pub value_type: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Reference range.
    pub reference_range: Option<String>,
    /// Abnormal flags.
    pub abnormal_flag: Option<String>,
    /// Status.
    pub status: String,
    /// Observed at.
    pub observed_at: Option<NaiveDateTime>,
    /// The document it was extracted from.
    pub document_id: Option<String>,
}

/// A stored diagnosis (and the payload of its change).
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = crate::schema::diagnoses)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct DiagnosisRecord {
    /// Id.
    pub id: String,
    /// Encounter.
    pub encounter_id: Option<String>,
    /// Patient.
    pub person_id: String,
    /// Coding system.
    pub code_system: String,
    /// Code.
    pub code: String,
    /// Text.
    pub display: Option<String>,
    /// Type.
    pub diagnosis_type: Option<String>,
    /// When.
    pub diagnosed_at: Option<NaiveDateTime>,
    /// The document it was extracted from.
    pub document_id: Option<String>,
}

impl Tx<'_> {
    /// The encounter a facility knows by this visit number.
    pub fn find_encounter(
        &mut self,
        facility_code: &str,
        visit_number: &str,
    ) -> Result<Option<EncounterRecord>, StoreError> {
        Ok(encounters::table
            .filter(encounters::facility_code.eq(facility_code))
            .filter(encounters::visit_number.eq(visit_number))
            .select(EncounterRecord::as_select())
            .get_result(self.conn)
            .optional()?)
    }

    /// One encounter by id (callers check the person's scope).
    pub fn encounter_by_id(&mut self, id: &str) -> Result<Option<EncounterRecord>, StoreError> {
        Ok(encounters::table.find(id).select(EncounterRecord::as_select()).get_result(self.conn).optional()?)
    }

    /// Applies a later message's changes to an encounter and records the change.
    pub fn update_encounter(&mut self, id: &str, changes: &EncounterChanges) -> Result<EncounterRecord, StoreError> {
        let current: EncounterRecord =
            encounters::table.find(id).select(EncounterRecord::as_select()).get_result(self.conn)?;
        let record = EncounterRecord {
            status: changes.status.clone().unwrap_or(current.status),
            encounter_type: changes.encounter_type.map_or(current.encounter_type, |t| t.as_str().to_string()),
            admitted_at: changes.admitted_at.or(current.admitted_at),
            discharged_at: changes.discharged_at.unwrap_or(current.discharged_at),
            department: changes.department.clone().or(current.department),
            location: changes.location.clone().or(current.location),
            prior_location: changes.prior_location.clone().or(current.prior_location),
            attending: changes.attending.clone().or(current.attending),
            admit_reason: changes.admit_reason.clone().or(current.admit_reason),
            hlc: self.tick().encode(),
            updated_at: crate::now(),
            ..current
        };
        diesel::update(encounters::table.find(id))
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
                encounters::updated_at.eq(record.updated_at),
            ))
            .run(self.conn)?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("encounter", id, "update", Some((&record.person_id, &home)), &record.hlc, &payload)?;
        Ok(record)
    }

    /// Stores a diagnosis unless the encounter (or, without one, the person's
    /// problem list) already has the same code and type.
    pub fn insert_diagnosis(&mut self, new: &NewDiagnosis) -> Result<bool, StoreError> {
        use crate::schema::diagnoses;
        let mut same = diagnoses::table
            .filter(diagnoses::person_id.eq(&new.person_id))
            .filter(diagnoses::code_system.eq(&new.code_system))
            .filter(diagnoses::code.eq(&new.code))
            .into_boxed();
        // Same encounter; without one (a document's problem list), same person and no encounter.
        same = match &new.encounter_id {
            Some(encounter) => same.filter(diagnoses::encounter_id.eq(encounter.clone())),
            None => same.filter(diagnoses::encounter_id.is_null()),
        };
        same = match &new.diagnosis_type {
            Some(kind) => same.filter(diagnoses::diagnosis_type.eq(kind.clone())),
            None => same.filter(diagnoses::diagnosis_type.is_null()),
        };
        let existing: i64 = same.count().get_result(self.conn)?;
        if existing > 0 {
            return Ok(false);
        }
        let record = DiagnosisRecord {
            id: rhip_core::new_id().to_string(),
            encounter_id: new.encounter_id.clone(),
            person_id: new.person_id.clone(),
            code_system: new.code_system.clone(),
            code: new.code.clone(),
            display: new.display.clone(),
            diagnosis_type: new.diagnosis_type.clone(),
            diagnosed_at: new.diagnosed_at,
            document_id: new.document_id.clone(),
        };
        self.store_diagnosis(&record)?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hlc = self.tick().encode();
        self.record_change("diagnosis", &record.id, "create", Some((&record.person_id, &home)), &hlc, &payload)?;
        Ok(true)
    }

    /// Stores a result and records the change.
    pub fn insert_observation(&mut self, new: &NewObservation) -> Result<(), StoreError> {
        let record = ObservationRecord {
            id: rhip_core::new_id().to_string(),
            person_id: new.person_id.clone(),
            encounter_id: new.encounter_id.clone(),
            report_id: new.report_id.clone(),
            code_system: new.code_system.clone(),
            code: new.code.clone(),
            display: new.display.clone(),
            value: new.value.clone(),
            value_type: new.value_type.clone(),
            unit: new.unit.clone(),
            reference_range: new.reference_range.clone(),
            abnormal_flag: new.abnormal_flag.clone(),
            status: new.status.clone(),
            observed_at: new.observed_at,
            document_id: new.document_id.clone(),
        };
        self.store_observation(&record, new.submission_id.as_deref())?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hlc = self.tick().encode();
        self.record_change("observation", &record.id, "create", Some((&record.person_id, &home)), &hlc, &payload)?;
        Ok(())
    }

    /// Writes a diagnosis row (made here or received from a peer).
    pub(crate) fn store_diagnosis(&mut self, record: &DiagnosisRecord) -> Result<(), StoreError> {
        use crate::schema::diagnoses;
        diesel::insert_into(diagnoses::table)
            .values((record, diagnoses::created_at.eq(crate::now())))
            .run(self.conn)?;
        Ok(())
    }

    /// Writes an observation row (made here or received from a peer).
    pub(crate) fn store_observation(
        &mut self,
        record: &ObservationRecord,
        submission_id: Option<&str>,
    ) -> Result<(), StoreError> {
        use crate::schema::observations;
        diesel::insert_into(observations::table)
            .values((record, observations::created_at.eq(crate::now()), observations::submission_id.eq(submission_id)))
            .run(self.conn)?;
        Ok(())
    }

    /// A person's results, newest first.
    pub fn observations_for(&mut self, person_id: &str, limit: i64) -> Result<Vec<ObservationRecord>, StoreError> {
        use crate::schema::observations;
        Ok(observations::table
            .filter(observations::person_id.eq(person_id))
            .order((observations::observed_at.desc(), observations::id.desc()))
            .limit(limit.clamp(1, 10_000))
            .select(ObservationRecord::as_select())
            .load(self.conn)?)
    }

    /// Diagnoses of a person, newest first.
    pub fn diagnoses_for(&mut self, person_id: &str) -> Result<Vec<DiagnosisRecord>, StoreError> {
        use crate::schema::diagnoses;
        Ok(diagnoses::table
            .filter(diagnoses::person_id.eq(person_id))
            .order(diagnoses::created_at.desc())
            .select(DiagnosisRecord::as_select())
            .load(self.conn)?)
    }
}
