//! CDA R2 documents in and out.
//!
//! In: a document is read with hostile-input limits, validated against the
//! type registry (rhip-cda), then — in one transaction — its patient is
//! linked to a person by the same rules as HL7 ingest, its encounter found
//! or created, the original bytes stored with the index entry, and its coded
//! entries (diagnoses, results, medications, immunizations) extracted into
//! EMRD/EHRD. The same document twice is recognised by its CDA id; a
//! replacement (relatedDocument RPLC) supersedes its parent, which stays
//! retrievable. Bad input changes nothing.
//!
//! Out: an EHR summary of a person and an EMR document for an encounter,
//! generated from stored data with rhip-cda's writer.

use crate::error::ApiError;
use chrono::NaiveDateTime;
use rhip_api_types::FieldProblem;
use rhip_cda::{ClinicalDocument, InstanceId, Limits, Organization, Timestamp, Value};
use rhip_core::{
    CitizenId, EhrEntryKind, EncounterType, Identifier, PersonDemographics, RegionCode, Sex, OID_CITIZEN_ID,
};
use rhip_store::{
    DemographicsChange, DocumentIndexRecord, EncounterRecord, NewDiagnosis, NewDocument, NewEhrEntry, NewEncounter,
    NewMedication, NewObservation, PersonRecord, StoreError, Tx,
};

/// OID of institution (organisation) codes, as CDA ids of hospitals and nodes.
pub const OID_INSTITUTION: &str = "2.16.156.10011.1.5";
/// OID of outpatient visit numbers.
const OID_OUTPATIENT_NUMBER: &str = "2.16.156.10011.1.11";
/// OID of inpatient numbers.
const OID_INPATIENT_NUMBER: &str = "2.16.156.10011.1.12";
/// OID of document serial numbers, as the root of ids of documents RHIP writes.
const OID_DOCUMENT_SERIAL: &str = "2.16.156.10011.1.1";

/// Reading limits of `POST /api/v1/documents`: the reader's ceilings, with
/// its size limit the HTTP body limit (`api.max_document_bytes`).
pub fn limits(max_bytes: usize) -> Limits {
    Limits { max_bytes, ..Limits::default() }
}

/// What became of a submitted document.
#[derive(Debug)]
pub struct Stored {
    /// The index entry.
    pub record: DocumentIndexRecord,
    /// True when the same document had been stored before (nothing new was written).
    pub repeated: bool,
}

/// Reads and validates a document; every problem names the element by its path.
pub fn check(bytes: &[u8], limits: &Limits, today: chrono::NaiveDate) -> Result<ClinicalDocument, ApiError> {
    let document = rhip_cda::read(bytes, limits).map_err(|rejected| problems(rejected.problems))?;
    let mut found = rhip_cda::validate(&document, today);
    let Some(patient) = &document.patient else { return Err(problems(found)) };
    if patient.ids.iter().all(|id| !id.is_present()) && found.is_empty() {
        found.push(rhip_cda::Problem {
            path: "/ClinicalDocument/recordTarget/patientRole/id".into(),
            expected: "at least one patient identifier".into(),
        });
    }
    if found.is_empty() {
        Ok(document)
    } else {
        Err(problems(found))
    }
}

fn problems(found: Vec<rhip_cda::Problem>) -> ApiError {
    ApiError::fields(found.into_iter().map(|p| FieldProblem { field: p.path, message: p.expected }).collect())
}

/// Stores a checked document submitted by `facility`; `Ok(Err(_))` is a
/// refusal (nothing written), `Err(_)` a storage failure.
pub fn store(
    tx: &mut Tx<'_>,
    document: &ClinicalDocument,
    bytes: &[u8],
    facility: &str,
) -> Result<Result<Stored, ApiError>, StoreError> {
    // The submitting hospital must be the document's author or custodian.
    let organizations = document
        .authors
        .iter()
        .filter_map(|author| author.organization.as_ref())
        .chain(document.custodian.as_ref())
        .collect::<Vec<_>>();
    if !organizations.iter().any(|organization| names_facility(organization, facility)) {
        return Ok(Err(ApiError::field(
            "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id",
            format!("the author or custodian organisation must be the submitting facility {facility}"),
        )));
    }
    let cda_id = document.id.as_ref().map(instance_key);
    if let Some((existing, same_bytes)) = already_stored(tx, document, bytes)? {
        return Ok(if same_bytes {
            Ok(Stored { record: existing, repeated: true })
        } else {
            Err(ApiError::Conflict(format!(
                "document {} is already stored with other content ({}); a new version needs a new id and a \
                 relatedDocument typeCode=\"RPLC\"",
                existing.cda_id.as_deref().unwrap_or_default(),
                existing.id
            )))
        });
    }
    let Some(patient) = &document.patient else {
        return Ok(Err(ApiError::field("/ClinicalDocument/recordTarget", "a patient")));
    };
    let facts = match demographics(patient, facility) {
        Ok(facts) => facts,
        Err(problem) => return Ok(Err(problem)),
    };
    let Some(doc_type) = rhip_cda::registry::of_document(document) else {
        return Ok(Err(ApiError::field("/ClinicalDocument/code", "a registered document type")));
    };
    tx.lock_for(&format!("{facility}|{}", facts.id_number.as_ref().map_or("", |id| id.as_str())))?;
    let person = tx.link_person(&facts, DemographicsChange::FillGaps, None)?.person_id;
    let encounter = match &document.encounter {
        Some(encounter) => encounter_of(tx, &person, facility, encounter)?,
        None => None,
    };
    let supersedes = match document.related_documents.iter().find(|related| related.type_code == "RPLC") {
        Some(related) => {
            let mut parent = None;
            for id in related.parent_ids.iter().filter(|id| id.is_present()) {
                parent = tx.document_by_cda_id(&instance_key(id))?;
                if parent.is_some() {
                    break;
                }
            }
            parent.map(|parent| parent.id)
        }
        None => None,
    };
    let effective_at = document.effective_time.as_ref().and_then(|ts| ts.value.as_ref()).map(utc);
    let record = tx.insert_document(&NewDocument {
        person_id: Some(person.clone()),
        encounter_id: encounter.as_ref().map(|e| e.id.clone()),
        type_code: doc_type.code.clone(),
        type_system: Some(doc_type.code_system.clone()),
        kind: match doc_type.kind {
            rhip_cda::registry::Kind::Emr => "emr".into(),
            rhip_cda::registry::Kind::Ehr => "ehr".into(),
        },
        title: document.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| doc_type.title.clone()),
        effective_at: effective_at.unwrap_or_else(now),
        author_facility: Some(facility.to_string()),
        custodian: document.custodian.as_ref().and_then(organization_code),
        confidentiality: document
            .confidentiality_code
            .as_ref()
            .and_then(|code| code.code.clone())
            .unwrap_or_else(|| "N".into()),
        content_type: "application/xml".into(),
        cda_id,
        set_id: document.set_id.as_ref().map(instance_key),
        version_number: document.version_number,
        supersedes: supersedes.clone(),
        content: bytes.to_vec(),
    })?;
    if let Some(old) = &supersedes {
        tx.supersede_document(old, &record.id)?;
    }
    extract(tx, document, &record, &person, encounter.as_ref(), facility)?;
    if supersedes.is_none() {
        tx.insert_ehr_entry(&NewEhrEntry {
            person_id: person.clone(),
            kind: EhrEntryKind::Document,
            occurred_at: record.effective_at,
            facility_code: Some(facility.to_string()),
            summary: format!("{} {}", doc_type.code, record.title),
            encounter_id: record.encounter_id.clone(),
            document_id: Some(record.id.clone()),
        })?;
    }
    Ok(Ok(Stored { record, repeated: false }))
}

/// Writes the coded entries of a document into EMRD and EHRD.
fn extract(
    tx: &mut Tx<'_>,
    document: &ClinicalDocument,
    record: &DocumentIndexRecord,
    person: &str,
    encounter: Option<&EncounterRecord>,
    facility: &str,
) -> Result<(), StoreError> {
    let encounter_id = encounter.map(|e| e.id.clone());
    for diagnosis in document.diagnoses() {
        let Some(code) = diagnosis.code.code.clone() else { continue };
        tx.insert_diagnosis(&NewDiagnosis {
            encounter_id: encounter_id.clone(),
            person_id: person.to_string(),
            code_system: diagnosis.code.code_system.clone().unwrap_or_else(|| rhip_cda::write::ICD10_WS500.into()),
            code,
            display: diagnosis.code.display_name.clone(),
            diagnosis_type: None,
            diagnosed_at: diagnosis.effective_time.start().and_then(|ts| ts.value.as_ref()).map(utc),
            document_id: Some(record.id.clone()),
        })?;
    }
    for observation in document.observations() {
        let Some(code) = observation.code.as_ref().filter(|c| c.code.is_some()) else { continue };
        let (value, value_type, unit) = match &observation.value {
            Some(Value::Quantity(q)) => (Some(q.value.clone()), "NM", q.unit.clone()),
            Some(Value::Coded(c)) => (c.display_name.clone().or_else(|| c.code.clone()), "CE", None),
            Some(Value::Text(text)) => (Some(text.clone()), "ST", None),
            Some(Value::Integer(n)) | Some(Value::Real(n)) => (Some(n.clone()), "NM", None),
            Some(Value::Time(ts)) => (Some(ts.raw.clone()), "TS", None),
            Some(Value::Boolean(b)) => (Some(b.clone()), "ST", None),
            Some(Value::Other { .. }) | None => (None, "ST", None),
        };
        let reference_range = observation.reference_range.as_ref().map(|range| match (&range.low, &range.high) {
            (Some(low), Some(high)) => format!("{}-{}", low.value, high.value),
            (Some(low), None) => format!(">={}", low.value),
            (None, Some(high)) => format!("<={}", high.value),
            (None, None) => range.text.clone().unwrap_or_default(),
        });
        tx.insert_observation(&NewObservation {
            person_id: person.to_string(),
            encounter_id: encounter_id.clone(),
            report_id: Some(format!("document|{}", record.id)),
            code_system: code.code_system.clone().unwrap_or_default(),
            code: code.code.clone().unwrap_or_default(),
            display: code.display_name.clone(),
            value,
            value_type: Some(value_type.into()),
            unit,
            reference_range,
            abnormal_flag: observation.interpretation.as_ref().and_then(|c| c.code.clone()),
            status: "F".into(),
            observed_at: observation.effective_time.start().and_then(|ts| ts.value.as_ref()).map(utc),
            submission_id: None,
            document_id: Some(record.id.clone()),
        })?;
    }
    for medication in document.medications() {
        let name = medication
            .name
            .clone()
            .or_else(|| medication.code.as_ref().and_then(|c| c.display_name.clone().or_else(|| c.code.clone())));
        let Some(name) = name else { continue };
        tx.insert_medication(&NewMedication {
            person_id: person.to_string(),
            encounter_id: encounter_id.clone(),
            document_id: Some(record.id.clone()),
            code_system: medication.code.as_ref().and_then(|c| c.code_system.clone()),
            code: medication.code.as_ref().and_then(|c| c.code.clone()),
            name,
            dose: medication.dose.as_ref().map(|d| d.value.clone()),
            dose_unit: medication.dose.as_ref().and_then(|d| d.unit.clone()),
            route: medication.route.as_ref().and_then(|r| r.display_name.clone().or_else(|| r.code.clone())),
            started_at: medication.effective_time.start().and_then(|ts| ts.value.as_ref()).map(utc),
            ended_at: medication.effective_time.high.as_ref().and_then(|ts| ts.value.as_ref()).map(utc),
        })?;
    }
    for immunization in document.immunizations() {
        let vaccine = immunization
            .name
            .clone()
            .or_else(|| immunization.code.as_ref().and_then(|c| c.display_name.clone().or_else(|| c.code.clone())))
            .unwrap_or_else(|| "疫苗".into());
        tx.insert_ehr_entry(&NewEhrEntry {
            person_id: person.to_string(),
            kind: EhrEntryKind::Immunization,
            occurred_at: immunization
                .effective_time
                .start()
                .and_then(|ts| ts.value.as_ref())
                .map(utc)
                .unwrap_or(record.effective_at),
            facility_code: Some(facility.to_string()),
            summary: format!("预防接种 {vaccine}"),
            encounter_id: encounter_id.clone(),
            document_id: Some(record.id.clone()),
        })?;
    }
    Ok(())
}

/// The encounter of `encompassingEncounter`: found by facility and visit
/// number, created (and indexed in the EHR) when new.
fn encounter_of(
    tx: &mut Tx<'_>,
    person: &str,
    facility: &str,
    encounter: &rhip_cda::Encounter,
) -> Result<Option<EncounterRecord>, StoreError> {
    let Some(visit_number) = encounter.ids.iter().find_map(|id| id.extension.clone()) else { return Ok(None) };
    if let Some(existing) = tx.find_encounter(facility, &visit_number)? {
        return Ok(Some(existing));
    }
    let kind = encounter
        .code
        .as_ref()
        .and_then(|c| c.code.as_deref())
        .map(|code| match code {
            "IMP" | "ACUTE" | "NONAC" => EncounterType::Inpatient,
            "EMER" => EncounterType::Emergency,
            "OBSENC" => EncounterType::Observation,
            "HH" => EncounterType::HomeVisit,
            _ => EncounterType::Outpatient,
        })
        .unwrap_or(EncounterType::Outpatient);
    let start = encounter.effective_time.start().and_then(|ts| ts.value.as_ref()).map(utc);
    let end = encounter.effective_time.high.as_ref().and_then(|ts| ts.value.as_ref()).map(utc);
    let record = tx.insert_encounter(&NewEncounter {
        person_id: person.to_string(),
        facility_code: facility.to_string(),
        visit_number,
        encounter_type: kind,
        status: if end.is_some() { "finished".into() } else { "in_progress".into() },
        admitted_at: start,
        discharged_at: end,
        department: None,
        location: encounter.facility_name.clone(),
        prior_location: None,
        attending: None,
        admit_reason: None,
    })?;
    tx.insert_ehr_entry(&NewEhrEntry {
        person_id: person.to_string(),
        kind: EhrEntryKind::Encounter,
        occurred_at: start.unwrap_or_else(now),
        facility_code: Some(facility.to_string()),
        summary: format!("{} 就诊", kind.name_zh()),
        encounter_id: Some(record.id.clone()),
        document_id: None,
    })?;
    Ok(Some(record))
}

/// The CDA patient as DID demographics (the citizen ID was validated with the document).
fn demographics(patient: &rhip_cda::Patient, facility: &str) -> Result<PersonDemographics, ApiError> {
    let path = "/ClinicalDocument/recordTarget/patientRole";
    let id_number = match patient.citizen_id() {
        Some(id) => Some(
            CitizenId::parse(id)
                .map_err(|e| ApiError::field(&format!("{path}/id[@root='{OID_CITIZEN_ID}']"), e.to_string()))?,
        ),
        None => None,
    };
    let identifiers = patient
        .ids
        .iter()
        .filter(|id| id.root.as_deref() != Some(OID_CITIZEN_ID))
        .filter_map(|id| match (&id.root, &id.extension) {
            (Some(root), Some(extension)) if !extension.trim().is_empty() => {
                Some(Identifier { system: root.clone(), value: extension.clone(), type_code: None })
            }
            // An identifier without its assigning authority is the submitting hospital's, as in HL7 ingest.
            (None, Some(extension)) if !extension.trim().is_empty() => {
                Some(Identifier { system: facility.to_string(), value: extension.clone(), type_code: None })
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    if id_number.is_none() && identifiers.is_empty() {
        return Err(ApiError::field(&format!("{path}/id"), "a citizen ID or an identifier with root and extension"));
    }
    let name = patient
        .name
        .as_ref()
        .map(|name| {
            if name.family.is_empty() && name.given.is_empty() {
                name.text.trim().to_string()
            } else {
                format!("{}{}", name.family.join(""), name.given.join(""))
            }
        })
        .unwrap_or_default();
    let sex = patient
        .gender
        .as_ref()
        .and_then(|g| g.code.as_deref())
        .map(|code| Sex::from_code(code).or_else(|_| Sex::from_hl7(code)).unwrap_or(Sex::Unknown))
        .unwrap_or(Sex::Unknown);
    let home = patient.addresses.iter().find(|a| a.use_code.as_deref() == Some("H")).or(patient.addresses.first());
    let address_region = home.and_then(|address| {
        address.parts.iter().find_map(|part| {
            RegionCode::parse(part.value.trim()).ok().filter(|region| region.tier() == rhip_core::Tier::County)
        })
    });
    let address_line = home.and_then(|address| address.part("streetAddressLine").map(str::to_string));
    let phone = patient
        .telecoms
        .iter()
        .find_map(|t| t.value.strip_prefix("tel:").map(|v| v.trim().to_string()))
        .filter(|v| !v.is_empty());
    Ok(PersonDemographics {
        name,
        sex,
        birth_date: patient.birth_time.as_ref().and_then(|ts| ts.value.as_ref()).map(|ts| ts.date()),
        id_number,
        ethnicity: None,
        marital_status: None,
        phone,
        address_region,
        address_line,
        identifiers,
    })
}

/// The stored copy of this very document (same CDA id, same bytes), if any:
/// the answer to a resend that lost a race with its twin.
pub fn stored_twin(
    tx: &mut Tx<'_>,
    document: &ClinicalDocument,
    bytes: &[u8],
) -> Result<Option<DocumentIndexRecord>, StoreError> {
    Ok(already_stored(tx, document, bytes)?.and_then(|(existing, same_bytes)| same_bytes.then_some(existing)))
}

/// The stored document with this document's CDA id, and whether its bytes are these.
fn already_stored(
    tx: &mut Tx<'_>,
    document: &ClinicalDocument,
    bytes: &[u8],
) -> Result<Option<(DocumentIndexRecord, bool)>, StoreError> {
    let Some(key) = document.id.as_ref().map(instance_key) else { return Ok(None) };
    let Some(existing) = tx.document_by_cda_id(&key)? else { return Ok(None) };
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let same_bytes = existing.sha256 == digest;
    Ok(Some((existing, same_bytes)))
}

/// `root|extension` (or the root alone) of a CDA instance identifier.
fn instance_key(id: &InstanceId) -> String {
    match (&id.root, &id.extension) {
        (Some(root), Some(extension)) => format!("{root}|{extension}"),
        (Some(root), None) => root.clone(),
        (None, Some(extension)) => format!("|{extension}"),
        (None, None) => String::new(),
    }
}

fn names_facility(organization: &Organization, facility: &str) -> bool {
    organization.ids.iter().any(|id| id.extension.as_deref() == Some(facility) || id.root.as_deref() == Some(facility))
}

fn organization_code(organization: &Organization) -> Option<String> {
    organization.ids.iter().find_map(|id| id.extension.clone().or_else(|| id.root.clone()))
}

/// A CDA time as the naive UTC time the store keeps (local when no offset was sent).
fn utc(ts: &Timestamp) -> NaiveDateTime {
    ts.with_offset().map_or(ts.local, |instant| instant.naive_utc())
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A stored time as a CDA timestamp (seconds, no offset: the store keeps naive times).
fn timestamp(at: NaiveDateTime) -> Timestamp {
    Timestamp { local: at, precision: rhip_cda::Precision::Second, offset_seconds: None }
}

/// The input of a generated document's patient.
fn patient_input(person: &PersonRecord) -> rhip_cda::write::PatientInput {
    rhip_cda::write::PatientInput {
        citizen_id: person.id_number.clone(),
        other_ids: person
            .identifiers
            .iter()
            .map(|identifier| InstanceId::new(identifier.system.clone(), identifier.value.clone()))
            .collect(),
        name: person.name.clone(),
        sex: Sex::from_code(&person.sex).unwrap_or(Sex::Unknown),
        birth_date: person.birth_date.unwrap_or_default(),
        county: person.address_region.as_deref().and_then(|code| RegionCode::parse(code).ok()),
        street: person.address_line.clone(),
    }
}

fn organization(code: &str, name: Option<String>) -> Organization {
    Organization { ids: vec![InstanceId::new(OID_INSTITUTION, code)], name }
}

fn diagnosis_input(diagnosis: &rhip_store::DiagnosisRecord) -> rhip_cda::write::DiagnosisInput {
    let mut input = rhip_cda::write::DiagnosisInput::icd10(
        &diagnosis.code,
        diagnosis.display.as_deref().unwrap_or(&diagnosis.code),
        diagnosis.diagnosed_at.map(timestamp),
    );
    if !diagnosis.code_system.is_empty() && diagnosis.code_system != "I10" && diagnosis.code_system != "ICD10" {
        input.code.code_system = Some(diagnosis.code_system.clone());
    }
    input
}

fn result_input(observation: &rhip_store::ObservationRecord) -> rhip_cda::write::ResultInput {
    let numeric = observation.value.as_deref().map(|v| v.trim().parse::<f64>().is_ok()).unwrap_or(false);
    let value = match (&observation.value, numeric) {
        (Some(value), true) => rhip_cda::write::ResultValue::Quantity(rhip_cda::Quantity {
            value: value.trim().to_string(),
            unit: observation.unit.clone(),
        }),
        (Some(value), false) => rhip_cda::write::ResultValue::Text(value.clone()),
        (None, _) => rhip_cda::write::ResultValue::Text(String::new()),
    };
    let reference_range = observation.reference_range.as_deref().and_then(|range| {
        let (low, high) = range.split_once('-')?;
        let quantity = |v: &str| {
            (!v.trim().is_empty())
                .then(|| rhip_cda::Quantity { value: v.trim().to_string(), unit: observation.unit.clone() })
        };
        Some(rhip_cda::ReferenceRange { low: quantity(low), high: quantity(high), text: None })
    });
    rhip_cda::write::ResultInput {
        code: rhip_cda::Code::new(
            observation.code.clone(),
            if observation.code_system.is_empty() {
                "2.16.840.1.113883.6.1".into()
            } else {
                observation.code_system.clone()
            },
            observation.display.clone().unwrap_or_else(|| observation.code.clone()),
        ),
        value,
        reference_range,
        flag: observation.abnormal_flag.clone().filter(|f| !f.trim().is_empty()),
        time: observation.observed_at.map(timestamp),
    }
}

fn encounter_input(encounter: &EncounterRecord) -> rhip_cda::write::EncounterInput {
    let kind = EncounterType::parse(&encounter.encounter_type).unwrap_or(EncounterType::Outpatient);
    let root = if kind == EncounterType::Inpatient { OID_INPATIENT_NUMBER } else { OID_OUTPATIENT_NUMBER };
    rhip_cda::write::EncounterInput {
        id: InstanceId::new(root, encounter.visit_number.clone()),
        kind,
        start: timestamp(encounter.admitted_at.unwrap_or(encounter.created_at)),
        end: encounter.discharged_at.map(timestamp),
        facility: organization(&encounter.facility_code, None),
    }
}

fn medication_input(medication: &rhip_store::MedicationRecord) -> rhip_cda::write::AdministrationInput {
    rhip_cda::write::AdministrationInput {
        code: match (&medication.code, &medication.code_system) {
            (Some(code), Some(system)) => {
                Some(rhip_cda::Code::new(code.clone(), system.clone(), medication.name.clone()))
            }
            _ => None,
        },
        name: medication.name.clone(),
        dose: medication
            .dose
            .as_ref()
            .map(|dose| rhip_cda::Quantity { value: dose.clone(), unit: medication.dose_unit.clone() }),
        route: None,
        start: medication.started_at.map(timestamp),
        end: medication.ended_at.map(timestamp),
    }
}

/// The EHR summary (`EHR90`) of a person from what this node stores and
/// the reader's consent lens shows.
pub fn summary_xml(
    tx: &mut Tx<'_>,
    person: &PersonRecord,
    node: RegionCode,
    node_name: &str,
    lens: &crate::consent::Lens,
) -> Result<Vec<u8>, StoreError> {
    let diagnoses = lens.diagnoses(tx.diagnoses_for(&person.id)?);
    let encounters = lens.encounters(tx.encounters_for(&person.id)?);
    let observations = lens.observations(tx.observations_for(&person.id, 500)?);
    let medications = lens.medications(tx.medications_for(&person.id)?);
    let immunizations = lens
        .ehr_entries(tx.ehr_entries_for(&person.id, 1000)?)
        .into_iter()
        .filter(|entry| entry.kind == EhrEntryKind::Immunization.as_str())
        .collect::<Vec<_>>();
    let node_org = organization(node.as_str(), Some(node_name.to_string()));
    let mut basic_information = vec![format!("姓名 {}", person.name)];
    if let Some(birth) = person.birth_date {
        basic_information.push(format!("出生日期 {birth}"));
    }
    basic_information.push(format!("户籍/常住地 {}", person.home_region));
    let summary = rhip_cda::write::EhrSummary {
        header: rhip_cda::write::HeaderInput {
            id: InstanceId::new(OID_DOCUMENT_SERIAL, rhip_core::new_id().to_string()),
            effective_time: timestamp(now()),
            custodian: node_org.clone(),
            author_organization: node_org,
            author_name: None,
        },
        patient: patient_input(person),
        basic_information,
        problems: diagnoses.iter().map(diagnosis_input).collect(),
        encounters: encounters.iter().map(encounter_input).collect(),
        results: observations.iter().map(result_input).collect(),
        medications: medications.iter().map(medication_input).collect(),
        immunizations: immunizations
            .iter()
            .map(|entry| rhip_cda::write::AdministrationInput {
                code: None,
                name: entry.summary.trim_start_matches("预防接种 ").to_string(),
                dose: None,
                route: None,
                start: Some(timestamp(entry.occurred_at)),
                end: None,
            })
            .collect(),
    };
    Ok(rhip_cda::write::ehr_summary(&summary))
}

/// The WS/T 500 EMR document of one encounter (as received over HL7 v2 or otherwise).
pub fn encounter_xml(
    tx: &mut Tx<'_>,
    person: &PersonRecord,
    encounter: &EncounterRecord,
) -> Result<Vec<u8>, StoreError> {
    let diagnoses = tx.diagnoses_for(&person.id)?;
    let observations = tx.observations_for(&person.id, 10_000)?;
    let medications = tx.medications_for(&person.id)?;
    let facility_name = tx.get_facility(&encounter.facility_code)?.map(|f| f.name);
    let facility = organization(&encounter.facility_code, facility_name);
    let document = rhip_cda::write::EncounterDocument {
        header: rhip_cda::write::HeaderInput {
            id: InstanceId::new(OID_DOCUMENT_SERIAL, rhip_core::new_id().to_string()),
            effective_time: timestamp(
                encounter.discharged_at.or(encounter.admitted_at).unwrap_or(encounter.created_at),
            ),
            custodian: facility.clone(),
            author_organization: facility,
            author_name: encounter.attending.clone(),
        },
        patient: patient_input(person),
        encounter: rhip_cda::write::EncounterInput {
            facility: organization(&encounter.facility_code, None),
            ..encounter_input(encounter)
        },
        chief_complaint: None,
        diagnoses: diagnoses
            .iter()
            .filter(|d| d.encounter_id.as_deref() == Some(encounter.id.as_str()))
            .map(diagnosis_input)
            .collect(),
        results: observations
            .iter()
            .filter(|o| o.encounter_id.as_deref() == Some(encounter.id.as_str()))
            .map(result_input)
            .collect(),
        medications: medications
            .iter()
            .filter(|m| m.encounter_id.as_deref() == Some(encounter.id.as_str()))
            .map(medication_input)
            .collect(),
    };
    Ok(rhip_cda::write::emr_encounter(&document))
}
