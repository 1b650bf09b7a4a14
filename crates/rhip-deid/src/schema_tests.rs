//! Keeps `schemas/exports/deidentified-export.schema.json` and the Rust types
//! in step: a header and records with every optional part set and unset must
//! validate, and lines that break the format's promises must not.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rhip_core::RegionCode;
use serde_json::{json, Value};

use crate::content::{Diagnosis, Encounter, KeepAll, LabResult, Service, SourceContent};
use crate::format::HeaderFacts;
use crate::kanon::{Census, QuasiIdentifiers, K};

const SCHEMA: &str = include_str!("../../../schemas/exports/deidentified-export.schema.json");

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    assert_eq!(schema["$schema"], json!("https://json-schema.org/draft/2020-12/schema"));
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(validator: &jsonschema::Validator, line: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(line).unwrap();
    validator.iter_errors(&value).map(|e| e.to_string()).collect()
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
}

/// A header and records of an export with content of every kind.
fn lines() -> Vec<String> {
    let region = RegionCode::parse("330106").unwrap();
    let generated = DateTime::parse_from_rfc3339("2025-06-01T02:00:00Z").unwrap().with_timezone(&Utc);
    let mut census = Census::new(region, generated);
    let young = QuasiIdentifiers { sex: "2", birth_date: NaiveDate::from_ymd_opt(1980, 5, 6), home_region: "330106" };
    let old = QuasiIdentifiers { sex: "1", birth_date: NaiveDate::from_ymd_opt(1930, 1, 1), home_region: "330106" };
    let unknown = QuasiIdentifiers { sex: "0", birth_date: None, home_region: "330106" };
    for person in [young, old, unknown].iter().cycle().take(6) {
        census.add(person);
    }
    let mut plan = census.plan(K::new(2).unwrap());
    let facts = HeaderFacts { node_region: region };
    let mut lines = vec![plan.header(&facts, &KeepAll).to_line().unwrap()];
    let content = SourceContent {
        encounters: vec![Encounter {
            encounter_type: "inpatient".into(),
            status: "finished".into(),
            admitted_at: Some(at("2024-03-01 00:00")),
            facility_kind: Some("hospital".into()),
            diagnoses: vec![
                Diagnosis { system: "ICD10".into(), code: "I10".into(), role: Some("A".into()) },
                Diagnosis { system: "ICD10".into(), code: "E11.9".into(), role: None },
            ],
        }],
        results: vec![
            LabResult {
                system: "LN".into(),
                code: "718-7".into(),
                observed_at: Some(at("2024-03-02 01:30")),
                abnormal_flag: Some("L".into()),
            },
            LabResult { system: "LN".into(), code: "6690-2".into(), observed_at: None, abnormal_flag: None },
        ],
        services: vec![Service { kind: "immunization".into(), occurred_at: at("2024-03-10 01:00") }],
    };
    let hash = |id: &str| format!("{:0>64}", id);
    for (i, person) in [young, old, unknown].iter().cycle().take(6).enumerate() {
        let content = if i == 0 { content.clone() } else { SourceContent::default() };
        if let Some(record) = plan.record(&i.to_string(), person, content, &hash, &KeepAll) {
            lines.push(record.to_line().unwrap());
        }
    }
    lines
}

#[test]
fn every_line_of_an_export_validates() {
    let validator = validator();
    let lines = lines();
    assert_eq!(lines.len(), 7);
    for line in &lines {
        assert_eq!(errors(&validator, line), Vec::<String>::new(), "{line}");
    }
    assert!(lines[1].contains("\"diagnoses\":[{"), "{}", lines[1]);
    assert!(lines.iter().any(|l| l.contains("\"age_band\":\"90+\"")));
}

#[test]
fn lines_that_break_the_promises_do_not_validate() {
    let validator = validator();
    let lines = lines();
    let record = &lines[1];
    for (what, from, to) in [
        ("a name", "\"type\":\"person\"", "\"type\":\"person\",\"name\":\"张三\""),
        ("a county region", "\"region\":\"330100\"", "\"region\":\"330106\""),
        ("an uppercase pseudonym", "\"pseudonym\":\"0000", "\"pseudonym\":\"AAAA"),
        ("a year and a band", "\"age_band\":null", "\"age_band\":\"90+\""),
        ("a day", "\"month\":\"2024-03\"", "\"month\":\"2024-03-01\""),
        ("a free-text code", "\"code\":\"I10\"", "\"code\":\"said he was dizzy\""),
    ] {
        let changed = record.replacen(from, to, 1);
        assert_ne!(&changed, record, "{what}: nothing replaced");
        assert!(!errors(&validator, &changed).is_empty(), "{what} validates: {changed}");
    }
    let header = lines[0].replace("\"k\":2", "\"k\":1");
    assert!(!errors(&validator, &header).is_empty(), "k = 1 validates");
}
