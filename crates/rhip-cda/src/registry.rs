//! The registry of CDA document types RHIP knows: the 53 WS/T 500 shared EMR documents and
//! the WS/T 483 shared EHR documents, each with the header elements and LOINC sections a
//! document of that type must have.
//!
//! The data lives in `schemas/documents/document_types.csv` (see the README there for
//! sources and for which codes and OIDs are RHIP's own) and is compiled in and parsed once.
//! The file is known-good (unit tests pin its content), so a malformed row is skipped rather
//! than turned into a panic at run time.

use std::sync::LazyLock;

use serde::Serialize;

/// The embedded registry file.
const DOCUMENT_TYPES_CSV: &str = include_str!("../../../schemas/documents/document_types.csv");

/// RHIP's own OID root: a UUID-derived OID under `2.25` (ITU-T X.667), which needs no
/// registration, used because RHIP owns no arc of the national health OID `2.16.156.10011`.
pub const RHIP_OID_ROOT: &str = "2.25.51393508227389725991922561897112823361";

/// Code system of RHIP's EHR document type codes (`EHR02`…`EHR20` for WS/T 483.2…483.20,
/// `EHR90` for RHIP's summary); WS/T 483 publishes no codes of its own.
pub const EHR_CODE_SYSTEM: &str = "2.25.51393508227389725991922561897112823361.1";

/// Type code of RHIP's 个人健康档案摘要 (a person's EHR summary), written by
/// [`crate::write::ehr_summary`].
pub const EHR_SUMMARY_CODE: &str = "EHR90";

/// The header elements the registry may require, as paths below `/ClinicalDocument`;
/// [`crate::validate`] knows how to check each of them.
pub const HEADER_ELEMENTS: [&str; 11] = [
    "id",
    "code",
    "effectiveTime",
    "confidentialityCode",
    "recordTarget/patientRole/id",
    "recordTarget/patientRole/patient/name",
    "recordTarget/patientRole/patient/administrativeGenderCode",
    "recordTarget/patientRole/patient/birthTime",
    "author",
    "custodian",
    "componentOf/encompassingEncounter",
];

/// Which family of shared documents a type belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// WS/T 500: an electronic medical record document from a hospital (EMRD).
    Emr,
    /// WS/T 483: a lifetime health record document (EHRD).
    Ehr,
}

/// A section a document type requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequiredSection {
    /// The LOINC code (`"10154-3"`); a few WS/T 500 sections are coded by a WS 363 data
    /// element code instead (`"DE06.00.182.00"`).
    pub code: String,
    /// The LOINC name as listed (`"CHIEF COMPLAINT"`), used as title when writing.
    pub name: String,
}

/// A document type: how documents of it are recognised and what they must contain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentType {
    /// EMR or EHR.
    pub kind: Kind,
    /// The type code (`C0002`, `EHR13`).
    pub code: String,
    /// The code system of the type code.
    pub code_system: String,
    /// The Chinese title.
    pub title: String,
    /// The `templateId/@root` of documents of this type.
    pub template_id: String,
    /// Which standard the type comes from, and what RHIP added.
    pub source: String,
    /// Header elements that must be present, as paths below `/ClinicalDocument`.
    pub required_header: Vec<String>,
    /// Sections that must be present.
    pub required_sections: Vec<RequiredSection>,
}

/// Splits a `;`-separated list, dropping empty items.
fn list(field: &str) -> impl Iterator<Item = &str> {
    field.split(';').map(str::trim).filter(|item| !item.is_empty())
}

static REGISTRY: LazyLock<Vec<DocumentType>> = LazyLock::new(|| {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(DOCUMENT_TYPES_CSV.as_bytes())
        .records()
        .filter_map(Result::ok)
        .filter_map(|row| {
            let field = |index: usize| row.get(index).unwrap_or_default().trim().to_owned();
            let kind = match row.get(0)? {
                "emr" => Kind::Emr,
                "ehr" => Kind::Ehr,
                _ => return None,
            };
            Some(DocumentType {
                kind,
                code: field(1),
                code_system: field(2),
                title: field(3),
                template_id: field(4),
                source: field(5),
                required_header: list(row.get(6).unwrap_or_default()).map(str::to_owned).collect(),
                required_sections: list(row.get(7).unwrap_or_default())
                    .map(|section| {
                        let (code, name) = section.split_once(' ').unwrap_or((section, ""));
                        RequiredSection { code: code.to_owned(), name: name.trim().to_owned() }
                    })
                    .collect(),
            })
        })
        .collect()
});

/// Every registered document type: the EMR types in code order, then the EHR types.
pub fn all() -> &'static [DocumentType] {
    &REGISTRY
}

/// The type with this code in this code system (codes compared case-insensitively).
pub fn by_code(code_system: &str, code: &str) -> Option<&'static DocumentType> {
    let (code_system, code) = (code_system.trim(), code.trim());
    REGISTRY.iter().find(|doc| doc.code_system == code_system && doc.code.eq_ignore_ascii_case(code))
}

/// The type whose template id is `template_id`.
pub fn by_template(template_id: &str) -> Option<&'static DocumentType> {
    let template_id = template_id.trim();
    REGISTRY.iter().find(|doc| doc.template_id == template_id)
}

/// The type of a read document: by its `code` first, else by any of its template ids.
pub fn of_document(document: &crate::ClinicalDocument) -> Option<&'static DocumentType> {
    let by_type_code =
        document.code.as_ref().and_then(|code| by_code(code.code_system.as_deref()?, code.code.as_deref()?));
    by_type_code.or_else(|| document.template_ids.iter().find_map(|template| by_template(template)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emr_types_agree_with_rhip_core() {
        let emr: Vec<_> = all().iter().filter(|doc| doc.kind == Kind::Emr).collect();
        assert_eq!(emr.len(), 53);
        for (ours, core) in emr.iter().zip(rhip_core::emr_document_types()) {
            assert_eq!(ours.code, core.code);
            assert_eq!(ours.code_system, core.code_system);
            assert_eq!(ours.title, core.title);
            assert_eq!(ours.template_id, core.template_id);
            let mut core_sections: Vec<&str> = Vec::new();
            for code in core.section_loinc_codes() {
                if !core_sections.contains(&code) {
                    core_sections.push(code);
                }
            }
            let our_sections: Vec<&str> = ours.required_sections.iter().map(|s| s.code.as_str()).collect();
            assert_eq!(our_sections, core_sections, "{}", ours.code);
        }
    }

    #[test]
    fn ehr_types_cover_wst483_and_the_summary() {
        let ehr: Vec<_> = all().iter().filter(|doc| doc.kind == Kind::Ehr).collect();
        assert_eq!(ehr.len(), 20);
        for doc in &ehr {
            assert_eq!(doc.code_system, EHR_CODE_SYSTEM);
            assert!(doc.template_id.starts_with(RHIP_OID_ROOT));
            assert!(!doc.required_sections.is_empty(), "{}", doc.code);
        }
        for title in
            ["个人基本健康信息登记", "出生医学证明", "高血压患者随访服务", "2型糖尿病患者随访服务", "成人健康体检"]
        {
            assert!(ehr.iter().any(|doc| doc.title == title), "{title}");
        }
        let immunization = by_code(EHR_CODE_SYSTEM, "ehr10").unwrap();
        assert_eq!(immunization.title, "预防接种报告");
        assert_eq!(immunization.required_sections[0].code, "11369-6");
        assert_eq!(by_code(EHR_CODE_SYSTEM, EHR_SUMMARY_CODE).unwrap().title, "个人健康档案摘要");
    }

    #[test]
    fn codes_and_templates_are_unique_and_lookups_work() {
        let all = all();
        assert_eq!(all.len(), 73);
        for (index, doc) in all.iter().enumerate() {
            assert!(all[index + 1..]
                .iter()
                .all(|other| other.code != doc.code && other.template_id != doc.template_id));
            assert_eq!(by_template(&doc.template_id).map(|d| &d.code), Some(&doc.code));
            for section in &doc.required_sections {
                let loinc_or_data_element = section.code.contains('-') || section.code.starts_with("DE");
                assert!(loinc_or_data_element && !section.name.is_empty(), "{} {section:?}", doc.code);
            }
            for element in &doc.required_header {
                assert!(HEADER_ELEMENTS.contains(&element.as_str()), "{} {element}", doc.code);
            }
        }
        assert_eq!(by_code(rhip_core::OID_DOCUMENT_TYPE_CODE_SYSTEM, "C0053").unwrap().title, "出院小结");
        assert!(by_code("2.16.840.1.113883.6.1", "34133-9").is_none());
    }
}
