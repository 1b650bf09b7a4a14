//! Synthetic inputs for the writer tests: invented names (测试甲…), synthetic citizen IDs
//! with a valid check digit, made-up facilities. No real person's data.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use rhip_cda::write::{
    AdministrationInput, DiagnosisInput, EhrSummary, EncounterDocument, EncounterInput, HeaderInput, PatientInput,
    ResultInput, ResultValue,
};
use rhip_cda::{Code, InstanceId, Organization, Quantity, ReferenceRange, Timestamp};
use rhip_core::{CitizenId, EncounterType, RegionCode, Sex};

/// The day the tests pretend it is.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

/// A timestamp with +08:00.
pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// A synthetic patient; `sequence` parity gives the sex as in GB 11643.
pub fn patient(name: &str, birth: NaiveDate, sequence: u16) -> PatientInput {
    let county = RegionCode::parse("110105").unwrap();
    let id = CitizenId::generate(county, birth, sequence);
    PatientInput {
        citizen_id: Some(id.as_str().to_owned()),
        other_ids: vec![InstanceId::new("2.16.156.10011.1.2", format!("HR{sequence:06}"))],
        name: name.to_owned(),
        sex: if sequence % 2 == 1 { Sex::Male } else { Sex::Female },
        birth_date: birth,
        county: Some(county),
        street: Some("测试路1号".to_owned()),
    }
}

/// The county node writing a document.
pub fn node() -> Organization {
    Organization {
        ids: vec![InstanceId::new("2.16.156.10011.1.5", "RHIP-110105")],
        name: Some("朝阳区卫生健康委员会区域平台".to_owned()),
    }
}

/// A synthetic hospital.
pub fn hospital() -> Organization {
    Organization {
        ids: vec![InstanceId::new("2.16.156.10011.1.5", "H0001")],
        name: Some("测试第一人民医院".to_owned()),
    }
}

/// A lab result with unit, range and flag.
pub fn glucose(value: &str, flag: &str) -> ResultInput {
    ResultInput {
        code: Code::new("14749-6", "2.16.840.1.113883.6.1", "葡萄糖"),
        value: ResultValue::Quantity(Quantity { value: value.to_owned(), unit: Some("mmol/L".to_owned()) }),
        reference_range: Some(ReferenceRange {
            low: Some(Quantity { value: "3.9".into(), unit: Some("mmol/L".into()) }),
            high: Some(Quantity { value: "6.1".into(), unit: Some("mmol/L".into()) }),
            text: None,
        }),
        flag: Some(flag.to_owned()),
        time: Some(at("20260301083000+0800")),
    }
}

/// A medication.
pub fn metformin() -> AdministrationInput {
    AdministrationInput {
        code: Some(Code::new("A10BA02", "2.16.840.1.113883.6.73", "二甲双胍")),
        name: "盐酸二甲双胍片".to_owned(),
        dose: Some(Quantity { value: "0.5".into(), unit: Some("g".into()) }),
        route: Some(Code::new("PO", "2.16.840.1.113883.5.112", "口服")),
        start: Some(at("20260301")),
        end: Some(at("20261231")),
    }
}

/// An immunization.
pub fn hepatitis_b_vaccine() -> AdministrationInput {
    AdministrationInput {
        code: Some(Code::new("0201", "2.16.156.10011.2.3.3.13", "乙肝疫苗")),
        name: "重组乙型肝炎疫苗(酿酒酵母)".to_owned(),
        dose: Some(Quantity { value: "10".into(), unit: Some("ug".into()) }),
        route: Some(Code::new("IM", "2.16.840.1.113883.5.112", "肌内注射")),
        start: Some(at("19900401")),
        end: None,
    }
}

/// A full summary for 测试甲 (with a GB18030-only character in the street name).
pub fn summary() -> EhrSummary {
    let mut patient = patient("测试甲", NaiveDate::from_ymd_opt(1980, 5, 17).unwrap(), 123);
    patient.street = Some("测试路㐀号".to_owned());
    EhrSummary {
        header: HeaderInput {
            id: InstanceId::new("2.16.156.10011.1.1", "DOC-0001"),
            effective_time: at("20261120100000+0800"),
            custodian: node(),
            author_organization: node(),
            author_name: None,
        },
        patient,
        basic_information: vec!["ABO血型: A型".into(), "药物过敏史: 青霉素".into()],
        problems: vec![
            DiagnosisInput::icd10("I10", "特发性(原发性)高血压", Some(at("20200101"))),
            DiagnosisInput::icd10("E11.9", "2型糖尿病，不伴有并发症", None),
        ],
        encounters: vec![EncounterInput {
            id: InstanceId::new("2.16.156.10011.1.11", "MZ0001"),
            kind: EncounterType::Outpatient,
            start: at("20260301080000+0800"),
            end: None,
            facility: hospital(),
        }],
        results: vec![glucose("7.80", "H")],
        medications: vec![metformin()],
        immunizations: vec![hepatitis_b_vaccine()],
    }
}

/// An encounter document of the given kind for 测试乙.
pub fn encounter_document(kind: EncounterType) -> EncounterDocument {
    EncounterDocument {
        header: HeaderInput {
            id: InstanceId::new("2.16.156.10011.1.1", "DOC-0002"),
            effective_time: at("20260305170000+0800"),
            custodian: node(),
            author_organization: hospital(),
            author_name: Some("测试医生丙".into()),
        },
        patient: patient("测试乙", NaiveDate::from_ymd_opt(1992, 2, 29).unwrap(), 246),
        encounter: EncounterInput {
            id: InstanceId::new("2.16.156.10011.1.12", "ZY0001"),
            kind,
            start: at("20260301080000+0800"),
            end: Some(at("20260305160000+0800")),
            facility: hospital(),
        },
        chief_complaint: Some("咳嗽、发热3天".into()),
        diagnoses: vec![DiagnosisInput::icd10("J18.9", "肺炎", Some(at("20260301")))],
        results: vec![
            glucose("5.60", "N"),
            ResultInput {
                code: Code::new("6690-2", "2.16.840.1.113883.6.1", "白细胞计数"),
                value: ResultValue::Quantity(Quantity { value: "12.3".into(), unit: Some("10*9/L".into()) }),
                reference_range: None,
                flag: Some("H".into()),
                time: None,
            },
            ResultInput {
                code: Code::new("600-7", "2.16.840.1.113883.6.1", "血培养"),
                value: ResultValue::Text("未见细菌生长 (5天)".into()),
                reference_range: None,
                flag: None,
                time: None,
            },
        ],
        medications: vec![metformin()],
    }
}
