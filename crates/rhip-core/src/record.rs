//! The kinds of records the platform holds: lifetime health-record (EHR) entries,
//! encounter types, the WS/T 500 shared EMR document types, and the national health OIDs.
//!
//! These are the vocabularies that the HL7 and CDA crates map incoming data onto and that
//! statistics count by, so they are fixed here, once, below every other crate.

use std::sync::LazyLock;

use crate::names::{named_enum, UnknownNameError};
use crate::reference::{self, field, leak};

named_enum! {
    /// The kind of an entry in a resident's lifetime health record (EHRD): the national
    /// basic public health service items plus the index of care received anywhere.
    pub enum EhrEntryKind {
        /// Personal basic information (个人基本信息表).
        BasicInfo => "basic_info",
        /// A health examination (健康体检).
        HealthExam => "health_exam",
        /// A hypertension patient follow-up (高血压患者随访).
        HypertensionFollowUp => "hypertension_follow_up",
        /// A type 2 diabetes patient follow-up (2型糖尿病患者随访).
        DiabetesFollowUp => "diabetes_follow_up",
        /// An immunization (预防接种).
        Immunization => "immunization",
        /// Maternal health care (孕产妇健康管理).
        MaternalHealth => "maternal_health",
        /// Child health care (儿童健康管理).
        ChildHealth => "child_health",
        /// Elderly care (老年人健康管理).
        ElderlyCare => "elderly_care",
        /// An encounter at a facility (就诊记录).
        Encounter => "encounter",
        /// A laboratory report (检验报告).
        LabReport => "lab_report",
        /// An examination (imaging, ECG, …) report (检查报告).
        ExamReport => "exam_report",
        /// Any other shared document (共享文档).
        Document => "document",
    }
    error: UnknownNameError, |found, expected| UnknownNameError { what: "EHR entry kind", found, expected }
}

impl EhrEntryKind {
    /// The Chinese name, as shown in the resident portal and the console.
    pub fn name_zh(&self) -> &'static str {
        match self {
            EhrEntryKind::BasicInfo => "个人基本信息",
            EhrEntryKind::HealthExam => "健康体检",
            EhrEntryKind::HypertensionFollowUp => "高血压患者随访",
            EhrEntryKind::DiabetesFollowUp => "2型糖尿病患者随访",
            EhrEntryKind::Immunization => "预防接种",
            EhrEntryKind::MaternalHealth => "孕产妇健康管理",
            EhrEntryKind::ChildHealth => "儿童健康管理",
            EhrEntryKind::ElderlyCare => "老年人健康管理",
            EhrEntryKind::Encounter => "就诊记录",
            EhrEntryKind::LabReport => "检验报告",
            EhrEntryKind::ExamReport => "检查报告",
            EhrEntryKind::Document => "共享文档",
        }
    }
}

named_enum! {
    /// The setting of an encounter, for the EMRD and for statistics.
    pub enum EncounterType {
        /// An outpatient visit (门诊).
        Outpatient => "outpatient",
        /// An emergency visit (急诊).
        Emergency => "emergency",
        /// An inpatient stay (住院).
        Inpatient => "inpatient",
        /// Emergency observation (急诊留观).
        Observation => "observation",
        /// A physical examination visit (体检).
        PhysicalExam => "physical_exam",
        /// A home visit (家庭访视).
        HomeVisit => "home_visit",
    }
    error: UnknownNameError, |found, expected| UnknownNameError { what: "encounter type", found, expected }
}

impl EncounterType {
    /// Maps HL7 v2 PV1-2 patient class (table 0004): `O` and `R` (recurring) outpatient,
    /// `E` emergency, `I`, `P` (preadmit) and `B` (obstetrics) inpatient. `N`
    /// (not applicable), `U`, `C` and anything else give `None`.
    pub fn from_hl7_patient_class(pv1_2: &str) -> Option<EncounterType> {
        match pv1_2.trim().to_ascii_uppercase().as_str() {
            "O" | "R" => Some(EncounterType::Outpatient),
            "E" => Some(EncounterType::Emergency),
            "I" | "P" | "B" => Some(EncounterType::Inpatient),
            _ => None,
        }
    }

    /// The Chinese name, as shown in the resident portal and the console.
    pub fn name_zh(&self) -> &'static str {
        match self {
            EncounterType::Outpatient => "门诊",
            EncounterType::Emergency => "急诊",
            EncounterType::Inpatient => "住院",
            EncounterType::Observation => "急诊留观",
            EncounterType::PhysicalExam => "体检",
            EncounterType::HomeVisit => "家庭访视",
        }
    }
}

/// One of the 53 WS/T 500 shared EMR document types (C0001 病历概要 … C0053 出院小结),
/// with the CDA template it uses and the LOINC-coded sections it expects.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DocumentType {
    /// The type code, e.g. `"C0032"`.
    pub code: &'static str,
    /// The code system OID of the type codes (`2.16.156.10011.2.4`).
    pub code_system: String,
    /// The Chinese title, e.g. `"住院病案首页"`.
    pub title: String,
    /// The CDA `templateId` root of documents of this type.
    pub template_id: String,
    /// The sections, each `"<LOINC code> <LOINC name>"`, e.g. `"10154-3 CHIEF COMPLAINT"`.
    pub section_codes: Vec<String>,
}

impl DocumentType {
    /// The LOINC codes of the sections, without their names (`"10154-3"`).
    pub fn section_loinc_codes(&self) -> impl Iterator<Item = &str> {
        self.section_codes.iter().filter_map(|section| section.split_whitespace().next())
    }
}

static DOCUMENT_TYPES: LazyLock<Vec<DocumentType>> = LazyLock::new(|| {
    reference::rows(reference::WST500_DOCUMENT_TYPES)
        .iter()
        .map(|row| DocumentType {
            code: leak(field(row, 0)),
            code_system: field(row, 1).to_owned(),
            title: field(row, 2).to_owned(),
            template_id: field(row, 3).to_owned(),
            section_codes: field(row, 4)
                .split(';')
                .map(str::trim)
                .filter(|section| !section.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect()
});

/// The WS/T 500 document type with this code (`"C0001"`…`"C0053"`, case-insensitive).
pub fn emr_document_type(code: &str) -> Option<&'static DocumentType> {
    let code = code.trim();
    DOCUMENT_TYPES.iter().find(|doc| doc.code.eq_ignore_ascii_case(code))
}

/// The WS/T 500 document type whose CDA `templateId` root is `template_id`; CDA headers
/// often identify the type only this way.
pub fn emr_document_type_by_template(template_id: &str) -> Option<&'static DocumentType> {
    let template_id = template_id.trim();
    DOCUMENT_TYPES.iter().find(|doc| doc.template_id == template_id)
}

/// All 53 WS/T 500 document types, in code order.
pub fn emr_document_types() -> &'static [DocumentType] {
    &DOCUMENT_TYPES
}

/// An OID of the national health arc (2.16.156.10011), as used in CDA identifiers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HealthOid {
    /// The OID, e.g. `"2.16.156.10011.1.3"`.
    pub oid: &'static str,
    /// What it identifies, in English.
    pub meaning: String,
    /// What it identifies, in Chinese.
    pub name_zh: String,
}

static HEALTH_OIDS: LazyLock<Vec<HealthOid>> = LazyLock::new(|| {
    reference::rows(reference::CHINA_HEALTH_OIDS)
        .iter()
        .map(|row| HealthOid {
            oid: leak(field(row, 0)),
            meaning: field(row, 1).to_owned(),
            name_zh: field(row, 2).to_owned(),
        })
        .collect()
});

/// OID of the citizen identity number (患者身份证件号码) as a CDA `id/@root`.
pub const OID_CITIZEN_ID: &str = "2.16.156.10011.1.3";
/// OID of the WS/T 500 document type code system (C0001…C0053).
pub const OID_DOCUMENT_TYPE_CODE_SYSTEM: &str = "2.16.156.10011.2.4";

/// The embedded national health OID with this value, if any.
pub fn health_oid(oid: &str) -> Option<&'static HealthOid> {
    let oid = oid.trim();
    HEALTH_OIDS.iter().find(|entry| entry.oid == oid)
}

/// Every embedded national health OID.
pub fn health_oids() -> &'static [HealthOid] {
    &HEALTH_OIDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehr_kinds_round_trip() {
        assert_eq!(EhrEntryKind::ALL.len(), 12);
        for kind in EhrEntryKind::ALL {
            assert_eq!(EhrEntryKind::parse(kind.as_str()), Ok(kind));
            assert!(!kind.name_zh().is_empty());
        }
        assert_eq!(EhrEntryKind::HypertensionFollowUp.as_str(), "hypertension_follow_up");
    }

    #[test]
    fn encounter_types() {
        for kind in EncounterType::ALL {
            assert_eq!(EncounterType::parse(kind.as_str()), Ok(kind));
        }
        let map = EncounterType::from_hl7_patient_class;
        assert_eq!(map("O"), Some(EncounterType::Outpatient));
        assert_eq!(map("R"), Some(EncounterType::Outpatient));
        assert_eq!(map("E"), Some(EncounterType::Emergency));
        assert_eq!(map("I"), Some(EncounterType::Inpatient));
        assert_eq!(map("p"), Some(EncounterType::Inpatient));
        assert_eq!(map("B"), Some(EncounterType::Inpatient));
        assert_eq!(map("N"), None);
        assert_eq!(map(""), None);
        assert_eq!(map("Z"), None);
    }

    #[test]
    fn document_types() {
        let all = emr_document_types();
        assert_eq!(all.len(), 53);
        for (index, doc) in all.iter().enumerate() {
            assert_eq!(doc.code, format!("C{:04}", index + 1));
            assert_eq!(doc.code_system, OID_DOCUMENT_TYPE_CODE_SYSTEM);
            assert_eq!(doc.template_id, format!("2.16.156.10011.2.1.1.{}", index + 21));
            assert!(!doc.section_codes.is_empty(), "{}", doc.code);
        }
        let first_page = emr_document_type("c0032");
        assert_eq!(first_page.map(|d| d.title.as_str()), Some("住院病案首页"));
        let summary = emr_document_type("C0001");
        assert_eq!(summary.map(|d| d.section_codes.len()), Some(8));
        assert_eq!(summary.map(|d| d.section_codes[2].as_str()), Some("56836-0 History of blood transfusion"));
        assert_eq!(summary.map(|d| d.section_loinc_codes().collect::<Vec<_>>()[3]), Some("48765-2"));
        assert_eq!(emr_document_type_by_template("2.16.156.10011.2.1.1.73").map(|d| d.code), Some("C0053"));
        assert!(emr_document_type("C0054").is_none());
    }

    #[test]
    fn oids() {
        assert_eq!(health_oids().len(), 18);
        assert_eq!(health_oid(OID_CITIZEN_ID).map(|o| o.name_zh.as_str()), Some("患者身份证件号码"));
        assert!(health_oid(OID_DOCUMENT_TYPE_CODE_SYSTEM).is_some());
        assert!(health_oid("1.2.3").is_none());
    }
}
