//! CDA R2 documents that hospitals post after a visit (`POST /api/v1/documents`):
//! a WS/T 500 discharge summary (C0053) after a stay, an outpatient record
//! (C0002) after some visits. They are written by `rhip_cda::write`, so they
//! are the documents the node itself would generate, and they name the same
//! visit number as the HL7 messages of the visit, so the node files them
//! under the encounter those messages made.

use chrono::NaiveDateTime;
use rhip_cda::write::{
    DiagnosisInput, EncounterDocument, EncounterInput, HeaderInput, PatientInput, ResultInput, ResultValue,
};
use rhip_cda::{Code, InstanceId, Organization, Precision, Quantity, ReferenceRange, Timestamp};
use rhip_core::EncounterType;

use crate::clinical::{Diagnosis, Test};
use crate::population::Resident;

/// WS/T 500 document serial numbers (文档流水号).
const OID_DOCUMENT_SERIAL: &str = "2.16.156.10011.1.1";
/// Institution codes (医疗卫生机构代码).
const OID_INSTITUTION: &str = "2.16.156.10011.1.5";
/// Outpatient numbers (门(急)诊号).
const OID_OUTPATIENT_NUMBER: &str = "2.16.156.10011.1.11";
/// Inpatient numbers (住院号).
const OID_INPATIENT_NUMBER: &str = "2.16.156.10011.1.12";
/// LOINC.
const LOINC: &str = "2.16.840.1.113883.6.1";
/// China Standard Time, the zone of every synthetic time.
const CST_SECONDS: i32 = 8 * 3600;

/// What a document says about one visit.
pub(crate) struct VisitFacts<'a> {
    pub(crate) document_id: &'a str,
    pub(crate) resident: &'a Resident,
    pub(crate) facility_code: &'a str,
    pub(crate) facility_name: &'a str,
    pub(crate) doctor: &'a str,
    pub(crate) kind: EncounterType,
    pub(crate) visit_number: &'a str,
    pub(crate) start: NaiveDateTime,
    pub(crate) end: Option<NaiveDateTime>,
    pub(crate) diagnosis: crate::clinical::Diagnosis,
    pub(crate) results: Vec<(Test, String, &'static str)>,
}

fn timestamp(at: NaiveDateTime) -> Timestamp {
    Timestamp { local: at, precision: Precision::Second, offset_seconds: Some(CST_SECONDS) }
}

fn quantity(value: &str, unit: &str) -> Quantity {
    Quantity { value: value.to_owned(), unit: Some(unit.to_owned()) }
}

/// The WS/T 500 type code the document of `kind` is written as.
pub(crate) fn type_code(kind: EncounterType) -> &'static str {
    rhip_cda::write::emr_type_for(kind)
}

/// The document's bytes (UTF-8 XML).
pub(crate) fn encounter_document(facts: &VisitFacts<'_>) -> Vec<u8> {
    let organization = Organization {
        ids: vec![InstanceId::new(OID_INSTITUTION, facts.facility_code)],
        name: Some(facts.facility_name.to_owned()),
    };
    let resident = facts.resident;
    let visit_root = if facts.kind == EncounterType::Inpatient { OID_INPATIENT_NUMBER } else { OID_OUTPATIENT_NUMBER };
    let effective = facts.end.unwrap_or(facts.start);
    let diagnosis: Diagnosis = facts.diagnosis;
    let document = EncounterDocument {
        header: HeaderInput {
            id: InstanceId::new(OID_DOCUMENT_SERIAL, facts.document_id),
            effective_time: timestamp(effective),
            custodian: organization.clone(),
            author_organization: organization.clone(),
            author_name: Some(facts.doctor.to_owned()),
        },
        patient: PatientInput {
            citizen_id: Some(resident.citizen_id.as_str().to_owned()),
            other_ids: Vec::new(),
            name: resident.name(),
            sex: resident.sex,
            birth_date: resident.birth_date,
            county: Some(resident.home_region),
            street: Some(resident.address_line.clone()),
        },
        encounter: EncounterInput {
            id: InstanceId::new(visit_root, facts.visit_number),
            kind: facts.kind,
            start: timestamp(facts.start),
            end: facts.end.map(timestamp),
            facility: organization,
        },
        chief_complaint: Some(crate::clinical::complaint(diagnosis)),
        diagnoses: vec![DiagnosisInput::icd10(diagnosis.code, diagnosis.name, Some(timestamp(effective)))],
        results: facts
            .results
            .iter()
            .map(|(test, value, flag)| ResultInput {
                code: Code::new(test.code, LOINC, test.name),
                value: ResultValue::Quantity(quantity(value, test.unit)),
                reference_range: Some(ReferenceRange {
                    low: Some(quantity(&format!("{:.prec$}", test.low, prec = test.decimals), test.unit)),
                    high: Some(quantity(&format!("{:.prec$}", test.high, prec = test.decimals), test.unit)),
                    text: None,
                }),
                flag: Some((*flag).to_owned()),
                time: Some(timestamp(facts.start)),
            })
            .collect(),
        medications: Vec::new(),
    };
    rhip_cda::write::emr_encounter(&document)
}
