//! The writer's output: valid against the CDA R2 schema (when xmllint is installed), valid
//! by RHIP's own validation, and read back into the same data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use rhip_cda::write::{ehr_summary, emr_encounter, emr_type_for, AdministrationInput, DiagnosisInput, ResultValue};
use rhip_cda::{read, registry, validate, ClinicalDocument, Limits, Value};
use rhip_core::EncounterType;
use support::*;

/// Runs `xmllint --schema` on a document; `false` (with a message) when xmllint is absent.
fn schema_valid(name: &str, bytes: &[u8]) -> bool {
    let schema = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/cda/infrastructure/cda/CDA.xsd"));
    if Command::new("xmllint").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but xmllint is absent");
        println!("skipped: xmllint absent (install libxml2-utils)");
        return false;
    }
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join(format!("{name}.xml"));
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new("xmllint").arg("--noout").arg("--schema").arg(schema).arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "{name} is not schema-valid:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(bytes)
    );
    true
}

/// Reads a written document back, asserting it validates with no problems.
fn read_back(bytes: &[u8]) -> ClinicalDocument {
    let document = read(bytes, &Limits::default()).unwrap_or_else(|rejected| panic!("{rejected}"));
    let problems = validate(&document, today());
    assert!(problems.is_empty(), "{problems:#?}\n{}", String::from_utf8_lossy(bytes));
    document
}

/// Checks that the patient read back is the one written.
fn assert_same_patient(document: &ClinicalDocument, input: &rhip_cda::write::PatientInput) {
    let patient = document.patient.as_ref().unwrap();
    assert_eq!(patient.citizen_id(), input.citizen_id.as_deref());
    assert_eq!(patient.name.as_ref().unwrap().text, input.name);
    assert_eq!(patient.gender.as_ref().unwrap().code.as_deref(), Some(input.sex.code()));
    assert_eq!(patient.birth_time.as_ref().unwrap().value.unwrap().date(), input.birth_date);
    for other in &input.other_ids {
        assert!(patient.ids.contains(other));
    }
    if let Some(street) = &input.street {
        assert_eq!(patient.addresses[0].part("streetAddressLine"), Some(street.as_str()));
    }
    if let Some(county) = input.county {
        assert_eq!(patient.addresses[0].part("county"), Some(county.name().unwrap_or(county.as_str())));
    }
}

/// Checks diagnoses (code and time) read back.
fn assert_same_diagnoses(document: &ClinicalDocument, input: &[DiagnosisInput]) {
    let read: Vec<_> =
        document.diagnoses().into_iter().map(|d| (d.code.clone(), d.effective_time.value.clone())).collect();
    let written: Vec<_> = input.iter().map(|d| (d.code.clone(), d.time.map(rhip_cda::Ts::of))).collect();
    assert_eq!(read, written);
}

/// Checks medications or immunizations read back.
fn assert_same_administrations(read: Vec<&rhip_cda::Medication>, input: &[AdministrationInput]) {
    assert_eq!(read.len(), input.len());
    for (read, input) in read.iter().zip(input) {
        assert_eq!(read.name.as_deref(), Some(input.name.as_str()));
        assert_eq!(read.code, input.code);
        assert_eq!(read.dose, input.dose);
        assert_eq!(read.route, input.route);
        assert_eq!(read.effective_time.low.as_ref().and_then(|t| t.value), input.start);
        assert_eq!(read.effective_time.high.as_ref().and_then(|t| t.value), input.end);
    }
}

/// Checks results read back.
fn assert_same_results(document: &ClinicalDocument, input: &[rhip_cda::write::ResultInput]) {
    let observations = document.observations();
    assert_eq!(observations.len(), input.len());
    for (read, input) in observations.iter().zip(input) {
        assert_eq!(read.code.as_ref(), Some(&input.code));
        match (&read.value, &input.value) {
            (Some(Value::Quantity(read)), ResultValue::Quantity(written)) => assert_eq!(read, written),
            (Some(Value::Coded(read)), ResultValue::Coded(written)) => assert_eq!(read, written),
            (Some(Value::Text(read)), ResultValue::Text(written)) => assert_eq!(read, written),
            (read, written) => panic!("value {read:?} read back for {written:?}"),
        }
        assert_eq!(
            read.reference_range.as_ref().map(|r| (&r.low, &r.high)),
            input.reference_range.as_ref().map(|r| (&r.low, &r.high))
        );
        assert_eq!(read.interpretation.as_ref().and_then(|c| c.code.as_deref()), input.flag.as_deref());
        assert_eq!(read.effective_time.value.as_ref().and_then(|t| t.value), input.time);
    }
}

#[test]
fn ehr_summary_is_schema_valid_valid_and_round_trips() {
    let input = summary();
    let bytes = ehr_summary(&input);
    schema_valid("ehr_summary", &bytes);
    let document = read_back(&bytes);
    let document_type = registry::of_document(&document).unwrap();
    assert_eq!(document_type.code, registry::EHR_SUMMARY_CODE);
    assert_eq!(document.title.as_deref(), Some("个人健康档案摘要"));
    assert_same_patient(&document, &input.patient);
    assert_same_diagnoses(&document, &input.problems);
    assert_same_results(&document, &input.results);
    assert_same_administrations(document.medications(), &input.medications);
    assert_same_administrations(document.immunizations(), &input.immunizations);
    assert_eq!(document.custodian.as_ref().unwrap().name, input.header.custodian.name);
    assert_eq!(document.authors[0].organization.as_ref().unwrap().ids, input.header.author_organization.ids);
}

#[test]
fn empty_summary_says_none_in_every_section() {
    let mut input = summary();
    input.basic_information.clear();
    input.problems.clear();
    input.encounters.clear();
    input.results.clear();
    input.medications.clear();
    input.immunizations.clear();
    let bytes = ehr_summary(&input);
    schema_valid("empty_summary", &bytes);
    let document = read_back(&bytes);
    let sections = document.all_sections();
    assert_eq!(sections.len(), 6);
    assert!(sections.iter().all(|section| section.text == "无" && section.entries.is_empty()));
}

#[test]
fn encounter_documents_get_their_ws500_type_and_round_trip() {
    for (kind, code) in [
        (EncounterType::Outpatient, "C0002"),
        (EncounterType::Emergency, "C0002"),
        (EncounterType::Observation, "C0003"),
        (EncounterType::Inpatient, "C0053"),
    ] {
        assert_eq!(emr_type_for(kind), code);
        let input = encounter_document(kind);
        let bytes = emr_encounter(&input);
        schema_valid(&format!("encounter_{code}"), &bytes);
        let document = read_back(&bytes);
        let document_type = registry::of_document(&document).unwrap();
        assert_eq!(document_type.code, code);
        let codes: Vec<_> = document.all_sections().iter().filter_map(|s| s.code.as_ref()?.code.clone()).collect();
        for required in &document_type.required_sections {
            assert!(codes.contains(&required.code), "{code} lacks {}", required.code);
        }
        let encounter = document.encounter.as_ref().unwrap();
        assert_eq!(encounter.ids, vec![input.encounter.id.clone()]);
        assert_eq!(encounter.effective_time.low.as_ref().and_then(|t| t.value), Some(input.encounter.start));
        assert_eq!(encounter.effective_time.high.as_ref().and_then(|t| t.value), input.encounter.end);
        assert_eq!(encounter.facility_name, input.encounter.facility.name);
        assert_same_patient(&document, &input.patient);
        assert_same_diagnoses(&document, &input.diagnoses);
        assert_same_results(&document, &input.results);
        assert_same_administrations(document.medications(), &input.medications);
        assert_eq!(document.authors[0].name.as_ref().unwrap().text, "测试医生丙");
        let complaint = document
            .all_sections()
            .into_iter()
            .find(|s| s.code.as_ref().and_then(|c| c.code.as_deref()) == Some("10154-3"));
        if let Some(complaint) = complaint {
            assert_eq!(complaint.text, "咳嗽、发热3天");
        }
    }
}

#[test]
fn written_documents_also_read_when_transcoded_to_gb18030() {
    let bytes = emr_encounter(&encounter_document(EncounterType::Outpatient));
    let text = String::from_utf8(bytes).unwrap().replacen("encoding=\"UTF-8\"", "encoding=\"GB18030\"", 1);
    let (encoded, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable);
    let document = read(&encoded, &Limits::default()).unwrap();
    assert_eq!(document.patient.unwrap().name.unwrap().text, "测试乙");
}

/// Text that survives XML and whitespace collapsing unchanged: no leading, trailing or
/// repeated whitespace; Chinese, GB18030-only (CJK extension A/B) and ASCII characters and
/// the XML special characters.
fn clean_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[测试甲乙丙丁号路㐀㐁𠀀𠀁]",
            "[a-zA-Z0-9]",
            Just("&".to_owned()),
            Just("<".to_owned()),
            Just("\"".to_owned())
        ],
        1..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_summary_round_trips(
        name in clean_text(),
        street in clean_text(),
        diagnoses in proptest::collection::vec(("[A-Z][0-9]{2}(\\.[0-9])?", clean_text()), 0..4),
        values in proptest::collection::vec(("[0-9]{1,3}\\.[0-9]{1,2}", prop_oneof![Just("H"), Just("L"), Just("N")]), 0..4),
        vaccines in proptest::collection::vec(clean_text(), 0..3),
        days in 0u32..20_000,
    ) {
        let mut input = summary();
        let birth = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(u64::from(days));
        let sequence = 100 + (days % 800) as u16;
        input.patient = patient(&name, birth, sequence);
        input.patient.street = Some(street);
        input.problems = diagnoses.iter().map(|(code, text)| DiagnosisInput::icd10(code, text, None)).collect();
        input.results = values.iter().map(|(value, flag)| glucose(value, flag)).collect();
        input.immunizations = vaccines
            .iter()
            .map(|name| AdministrationInput { name: name.clone(), ..hepatitis_b_vaccine() })
            .collect();
        let bytes = ehr_summary(&input);
        let document = read_back(&bytes);
        assert_same_patient(&document, &input.patient);
        assert_same_diagnoses(&document, &input.problems);
        assert_same_results(&document, &input.results);
        assert_same_administrations(document.medications(), &input.medications);
        assert_same_administrations(document.immunizations(), &input.immunizations);
    }
}
