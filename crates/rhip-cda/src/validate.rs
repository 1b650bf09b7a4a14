//! Validation of a read document: is it a complete, known shared document about an
//! identifiable patient? [`validate`] returns every problem at once (an empty list means
//! valid), each with the element path and what was expected, so that a hospital can fix
//! all of them in one round.

use chrono::NaiveDate;
use rhip_core::{check_against_id, CitizenId, Discrepancy, Sex};

use crate::model::{Body, ClinicalDocument, Code, Entry, Interval, Ts};
use crate::problem::Problem;
use crate::registry::{self, DocumentType};

/// OID of the GB/T 2261.1 sex code table as used in WS/T 500 headers (生理性别代码表).
pub const GBT2261_1_OID: &str = "2.16.156.10011.2.3.3.4";
/// OID of HL7 AdministrativeGender (`M`, `F`, `UN`).
pub const HL7_ADMINISTRATIVE_GENDER_OID: &str = "2.16.840.1.113883.5.1";

/// Header elements every document needs, whatever its type (DESIGN §5: patient, author,
/// custodian, document type, effective time; plus the id and confidentiality of CDA R2).
const BASE_HEADER: [&str; 7] =
    ["id", "code", "effectiveTime", "confidentialityCode", "recordTarget/patientRole/id", "author", "custodian"];

/// Checks a document read by [`crate::read`]; `today` bounds every date (nothing may lie in
/// the future) and is passed in so that results do not depend on the clock.
///
/// Checks: the required header elements (the base set plus those of the document's type),
/// that the type is in the [`registry`] (by `code`/`codeSystem` or `templateId`), that
/// its required sections are present (by LOINC code), that every date parses and is not in
/// the future, that a citizen ID passes GB 11643 and agrees with birth time and sex, and
/// that the sex code is in a known value domain.
pub fn validate(document: &ClinicalDocument, today: NaiveDate) -> Vec<Problem> {
    let mut problems = Vec::new();
    let document_type = registry::of_document(document);
    let mut required: Vec<&str> = BASE_HEADER.to_vec();
    if let Some(document_type) = document_type {
        for element in &document_type.required_header {
            if !required.contains(&element.as_str()) {
                required.push(element);
            }
        }
    }
    for element in required {
        if let Some(expected) = missing_header_element(document, element) {
            problems.push(Problem::new(format!("/ClinicalDocument/{element}"), expected));
        }
    }
    match document_type {
        Some(document_type) => check_sections(document, document_type, &mut problems),
        None => {
            if let Some(code) = document.code.as_ref().filter(|code| code.code.is_some()) {
                problems.push(Problem::new(
                    "/ClinicalDocument/code",
                    format!(
                        "a registered document type (WS/T 500 C0001…C0053 in {}, or WS/T 483 EHR types in {}); \
                         found code {} in code system {}",
                        rhip_core::OID_DOCUMENT_TYPE_CODE_SYSTEM,
                        registry::EHR_CODE_SYSTEM,
                        code.code.as_deref().unwrap_or_default(),
                        code.code_system.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    check_times(document, today, &mut problems);
    check_patient(document, today, &mut problems);
    problems
}

/// Says what is expected when a required header element is missing; `None` when present.
fn missing_header_element(document: &ClinicalDocument, element: &str) -> Option<&'static str> {
    let patient = document.patient.as_ref();
    let present = match element {
        "id" => document.id.as_ref().is_some_and(|id| id.is_present()),
        "code" => document.code.as_ref().is_some_and(|code| code.code.is_some()),
        "effectiveTime" => document.effective_time.is_some(),
        "confidentialityCode" => document.confidentiality_code.as_ref().is_some_and(|code| code.code.is_some()),
        "recordTarget/patientRole/id" => patient.is_some_and(|p| p.ids.iter().any(|id| id.is_present())),
        "recordTarget/patientRole/patient/name" => {
            patient.and_then(|p| p.name.as_ref()).is_some_and(|name| !name.text.is_empty())
        }
        "recordTarget/patientRole/patient/administrativeGenderCode" => {
            patient.and_then(|p| p.gender.as_ref()).is_some_and(|gender| gender.code.is_some())
        }
        "recordTarget/patientRole/patient/birthTime" => patient.is_some_and(|p| p.birth_time.is_some()),
        "author" => !document.authors.is_empty(),
        "custodian" => document.custodian.is_some(),
        "componentOf/encompassingEncounter" => document.encounter.is_some(),
        _ => return Some("a header element this version of RHIP knows how to check"),
    };
    if present {
        return None;
    }
    Some(match element {
        "id" => "the document id (an II with a root)",
        "code" => "the document type code (@code and @codeSystem)",
        "effectiveTime" => "the time the document was created (an HL7 TS in @value)",
        "confidentialityCode" => "a confidentiality code (N, R or V)",
        "recordTarget/patientRole/id" => "at least one patient identifier (citizen ID, health record number, …)",
        "recordTarget/patientRole/patient/name" => "the patient's name",
        "recordTarget/patientRole/patient/administrativeGenderCode" => "the patient's sex code",
        "recordTarget/patientRole/patient/birthTime" => "the patient's birth date (an HL7 TS in @value)",
        "author" => "an author (who or what wrote the document)",
        "custodian" => "a custodian organisation (who keeps the document)",
        _ => "the visit the document belongs to (encompassingEncounter)",
    })
}

/// Every section the type requires must be present, found by its LOINC code anywhere in
/// the body.
fn check_sections(document: &ClinicalDocument, document_type: &DocumentType, problems: &mut Vec<Problem>) {
    if !matches!(document.body, Body::Structured(_)) {
        problems.push(Problem::new(
            "/ClinicalDocument/component/structuredBody",
            format!("a structured body with the sections required by {} {}", document_type.code, document_type.title),
        ));
        return;
    }
    let sections = document.all_sections();
    for required in &document_type.required_sections {
        let present = sections
            .iter()
            .any(|section| section.code.as_ref().and_then(|code| code.code.as_deref()) == Some(required.code.as_str()));
        if !present {
            problems.push(Problem::new(
                "/ClinicalDocument/component/structuredBody",
                format!(
                    "a section coded LOINC {} ({}), required by {} {}",
                    required.code, required.name, document_type.code, document_type.title
                ),
            ));
        }
    }
}

/// Checks that one time parses and, when `no_future`, is not after `today`.
fn check_time(path: String, time: Option<&Ts>, today: NaiveDate, no_future: bool, problems: &mut Vec<Problem>) {
    let Some(time) = time else { return };
    match time.value {
        None => problems
            .push(Problem::new(path, format!("an HL7 TS (YYYYMMDD[HHMM[SS]][+ZZZZ]) in @value; found '{}'", time.raw))),
        Some(value) => {
            let date = value.with_offset().map_or(value.date(), |instant| instant.naive_utc().date());
            if no_future && date > today {
                problems.push(Problem::new(
                    path,
                    format!("a time not in the future (today is {today}); found '{}'", time.raw),
                ));
            }
        }
    }
}

/// Checks an interval: every part parses; the point and the start are not in the future
/// (a planned end, such as the end of a course of medication, may be).
fn check_interval(path: &str, interval: &Interval, today: NaiveDate, problems: &mut Vec<Problem>) {
    check_time(format!("{path}/@value"), interval.value.as_ref(), today, true, problems);
    check_time(format!("{path}/low/@value"), interval.low.as_ref(), today, true, problems);
    check_time(format!("{path}/high/@value"), interval.high.as_ref(), today, false, problems);
}

/// All dates of the header and the entries.
fn check_times(document: &ClinicalDocument, today: NaiveDate, problems: &mut Vec<Problem>) {
    check_time(
        "/ClinicalDocument/effectiveTime/@value".into(),
        document.effective_time.as_ref(),
        today,
        true,
        problems,
    );
    if let Some(patient) = &document.patient {
        let path = "/ClinicalDocument/recordTarget/patientRole/patient/birthTime/@value";
        check_time(path.into(), patient.birth_time.as_ref(), today, true, problems);
    }
    let author_count = document.authors.len();
    for (index, author) in document.authors.iter().enumerate() {
        let step = if author_count > 1 { format!("author[{}]", index + 1) } else { "author".to_owned() };
        check_time(format!("/ClinicalDocument/{step}/time/@value"), author.time.as_ref(), today, true, problems);
    }
    if let Some(encounter) = &document.encounter {
        let path = "/ClinicalDocument/componentOf/encompassingEncounter/effectiveTime";
        check_time(format!("{path}/@value"), encounter.effective_time.value.as_ref(), today, true, problems);
        check_time(format!("{path}/low/@value"), encounter.effective_time.low.as_ref(), today, true, problems);
        check_time(format!("{path}/high/@value"), encounter.effective_time.high.as_ref(), today, true, problems);
    }
    for entry in document.entries() {
        let (path, interval) = match entry {
            Entry::Diagnosis(diagnosis) => (&diagnosis.path, &diagnosis.effective_time),
            Entry::Observation(observation) => (&observation.path, &observation.effective_time),
            Entry::Medication(medication) | Entry::Immunization(medication) => {
                (&medication.path, &medication.effective_time)
            }
        };
        check_interval(&format!("{path}/effectiveTime"), interval, today, problems);
    }
}

/// Reads a sex code of either accepted value domain.
fn sex_of(code: &Code) -> Option<Sex> {
    let value = code.code.as_deref()?.trim();
    let system = code.code_system.as_deref().map(str::trim);
    match (value, system) {
        ("0" | "1" | "2" | "9", None | Some(GBT2261_1_OID)) => Sex::from_code(value).ok(),
        ("M", None | Some(HL7_ADMINISTRATIVE_GENDER_OID)) => Some(Sex::Male),
        ("F", None | Some(HL7_ADMINISTRATIVE_GENDER_OID)) => Some(Sex::Female),
        ("UN", None | Some(HL7_ADMINISTRATIVE_GENDER_OID)) => Some(Sex::NotStated),
        _ => None,
    }
}

/// The sex code's value domain, the citizen ID's checksum and its agreement with the
/// birth time and sex.
fn check_patient(document: &ClinicalDocument, today: NaiveDate, problems: &mut Vec<Problem>) {
    let Some(patient) = &document.patient else { return };
    let role = "/ClinicalDocument/recordTarget/patientRole";
    let gender_path = format!("{role}/patient/administrativeGenderCode");
    let sex = patient.gender.as_ref().filter(|gender| gender.code.is_some()).and_then(|gender| {
        let sex = sex_of(gender);
        if sex.is_none() {
            problems.push(Problem::new(
                gender_path.clone(),
                format!(
                    "a sex code of GB/T 2261.1 (0, 1, 2, 9 in {GBT2261_1_OID}) or HL7 AdministrativeGender \
                     (M, F, UN in {HL7_ADMINISTRATIVE_GENDER_OID}); found '{}' in {}",
                    gender.code.as_deref().unwrap_or_default(),
                    gender.code_system.as_deref().unwrap_or("(no code system)")
                ),
            ));
        }
        sex
    });
    let id_count = patient.ids.len();
    let Some((index, id)) =
        patient.ids.iter().enumerate().find(|(_, id)| id.root.as_deref() == Some(rhip_core::OID_CITIZEN_ID))
    else {
        return;
    };
    let step = if id_count > 1 { format!("id[{}]", index + 1) } else { "id".to_owned() };
    let id_path = format!("{role}/{step}/@extension");
    let Some(number) = id.extension.as_deref() else {
        if id.null_flavor.is_none() {
            problems.push(Problem::new(id_path, "the citizen ID number in @extension"));
        }
        return;
    };
    let citizen_id = match CitizenId::parse_as_of(number, today) {
        Ok(citizen_id) => citizen_id,
        Err(error) => {
            problems.push(Problem::new(id_path, format!("a valid GB 11643 citizen ID: {error}")));
            return;
        }
    };
    let birth_date = patient.birth_time.as_ref().and_then(|time| time.value).map(|value| value.date());
    for discrepancy in check_against_id(&citizen_id, birth_date, sex) {
        let path = match discrepancy {
            Discrepancy::BirthDate { .. } => format!("{role}/patient/birthTime/@value"),
            Discrepancy::Sex { .. } => gender_path.clone(),
        };
        problems.push(Problem::new(path, format!("agreement with the citizen ID: {discrepancy}")));
    }
}
