//! Validation problems, each with the path of the element and what was expected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rhip_cda::write::{ehr_summary, emr_encounter};
use rhip_cda::{read, validate, Body, ClinicalDocument, Code, Limits, Problem, Ts};
use rhip_core::EncounterType;
use support::*;

/// A valid C0002 outpatient document, read back.
fn outpatient() -> ClinicalDocument {
    let document = read(&emr_encounter(&encounter_document(EncounterType::Outpatient)), &Limits::default()).unwrap();
    assert_eq!(validate(&document, today()), Vec::<Problem>::new());
    document
}

/// The one problem at `path`, failing with all problems otherwise.
fn problem_at<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
    let matching: Vec<_> = problems.iter().filter(|problem| problem.path == path).collect();
    assert_eq!(matching.len(), 1, "expected one problem at {path}, got {problems:#?}");
    matching[0]
}

/// The path of the citizen ID's extension (the first of the patient's two ids).
const CITIZEN_ID: &str = "/ClinicalDocument/recordTarget/patientRole/id[1]/@extension";

#[test]
fn citizen_id_checksum_is_checked() {
    let mut document = outpatient();
    let patient = document.patient.as_mut().unwrap();
    let id = patient.ids[0].extension.as_mut().unwrap();
    let last = if id.ends_with('0') { '1' } else { '0' };
    id.pop();
    id.push(last);
    let problems = validate(&document, today());
    assert!(problem_at(&problems, CITIZEN_ID).expected.contains("GB 11643"), "{problems:?}");
}

#[test]
fn citizen_id_must_agree_with_birth_time_and_sex() {
    let mut document = outpatient();
    let patient = document.patient.as_mut().unwrap();
    patient.birth_time = Some(Ts::of(at("19920301")));
    patient.gender.as_mut().unwrap().code = Some("1".into());
    let problems = validate(&document, today());
    let birth = problem_at(&problems, "/ClinicalDocument/recordTarget/patientRole/patient/birthTime/@value");
    assert!(birth.expected.contains("agreement with the citizen ID"), "{birth}");
    let sex = problem_at(&problems, "/ClinicalDocument/recordTarget/patientRole/patient/administrativeGenderCode");
    assert!(sex.expected.contains("implied by the citizen ID"), "{sex}");
}

#[test]
fn gender_codes_of_both_value_domains_are_accepted_and_others_are_not() {
    let mut document = outpatient();
    let gender_path = "/ClinicalDocument/recordTarget/patientRole/patient/administrativeGenderCode";
    document.patient.as_mut().unwrap().gender = Some(Code::new("F", rhip_cda::HL7_ADMINISTRATIVE_GENDER_OID, "Female"));
    assert_eq!(validate(&document, today()), Vec::<Problem>::new());
    document.patient.as_mut().unwrap().gender = Some(Code::new("X", "1.2.3", "?"));
    let problems = validate(&document, today());
    assert!(problem_at(&problems, gender_path).expected.contains("GB/T 2261.1"));
    document.patient.as_mut().unwrap().gender = None;
    let problems = validate(&document, today());
    assert!(problem_at(&problems, gender_path).expected.contains("sex code"));
}

#[test]
fn dates_must_parse_and_not_lie_in_the_future() {
    let mut document = outpatient();
    document.effective_time = Some(Ts::of(at("20270101")));
    document.patient.as_mut().unwrap().birth_time = Some(Ts { raw: "1992-02-29".into(), value: None });
    let problems = validate(&document, today());
    assert!(problem_at(&problems, "/ClinicalDocument/effectiveTime/@value").expected.contains("not in the future"));
    let birth = problem_at(&problems, "/ClinicalDocument/recordTarget/patientRole/patient/birthTime/@value");
    assert!(birth.expected.contains("an HL7 TS"), "{birth}");
    // An entry's time is reported at the entry's path.
    let mut document = outpatient();
    if let Body::Structured(sections) = &mut document.body {
        for section in sections.iter_mut() {
            for entry in section.entries.iter_mut() {
                if let rhip_cda::Entry::Diagnosis(diagnosis) = entry {
                    diagnosis.effective_time.value = Some(Ts::of(at("20301231")));
                }
            }
        }
    }
    let problems = validate(&document, today());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].path.ends_with("/entry/observation/effectiveTime/@value"), "{problems:?}");
    assert!(problems[0].path.starts_with("/ClinicalDocument/component/structuredBody/component["));
}

#[test]
fn required_header_elements_are_named() {
    let mut document = outpatient();
    document.custodian = None;
    document.authors.clear();
    document.encounter = None;
    document.confidentiality_code = None;
    document.patient.as_mut().unwrap().ids.clear();
    let problems = validate(&document, today());
    for path in [
        "/ClinicalDocument/custodian",
        "/ClinicalDocument/author",
        "/ClinicalDocument/componentOf/encompassingEncounter",
        "/ClinicalDocument/confidentialityCode",
        "/ClinicalDocument/recordTarget/patientRole/id",
    ] {
        problem_at(&problems, path);
    }
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn required_sections_are_named_by_loinc_code() {
    let mut document = outpatient();
    if let Body::Structured(sections) = &mut document.body {
        sections.retain(|section| section.code.as_ref().and_then(|c| c.code.as_deref()) != Some("10154-3"));
    }
    let problems = validate(&document, today());
    let problem = problem_at(&problems, "/ClinicalDocument/component/structuredBody");
    assert!(problem.expected.contains("LOINC 10154-3 (CHIEF COMPLAINT), required by C0002"), "{problem}");
    document.body = Body::Absent;
    let problems = validate(&document, today());
    problem_at(&problems, "/ClinicalDocument/component/structuredBody");
}

#[test]
fn unknown_type_is_reported_at_the_code_and_template_ids_also_identify_a_type() {
    let mut document = outpatient();
    document.code = Some(Code::new("34133-9", "2.16.840.1.113883.6.1", "Summary of episode note"));
    // Still known by its template id.
    assert_eq!(validate(&document, today()), Vec::<Problem>::new());
    document.template_ids.clear();
    let problems = validate(&document, today());
    assert!(problem_at(&problems, "/ClinicalDocument/code").expected.contains("found code 34133-9"));
}

#[test]
fn a_document_edited_as_text_reports_the_same_paths() {
    let xml = String::from_utf8(ehr_summary(&summary())).unwrap();
    let broken =
        xml.replacen("<effectiveTime value=\"20261120100000+0800\"/>", "<effectiveTime value=\"yesterday\"/>", 1);
    let document = read(broken.as_bytes(), &Limits::default()).unwrap();
    let problems = validate(&document, today());
    let problem = problem_at(&problems, "/ClinicalDocument/effectiveTime/@value");
    assert!(problem.expected.contains("found 'yesterday'"), "{problem}");
}

#[test]
fn problems_serialise_for_api_answers() {
    let problem = Problem::new("/ClinicalDocument/id", "the document id");
    assert_eq!(
        serde_json::to_string(&problem).unwrap(),
        r#"{"path":"/ClinicalDocument/id","expected":"the document id"}"#
    );
    let rejected = read(b"<a/>", &Limits::default()).unwrap_err();
    assert!(rejected.to_string().starts_with("CDA document refused: /a: root element ClinicalDocument"));
}
