//! Writing CDA R2 documents: a person's EHR summary ([`ehr_summary`], RHIP's `EHR90`
//! 个人健康档案摘要) and the EMR document of one encounter that arrived as HL7 v2
//! ([`emr_encounter`]: outpatient and emergency visits as C0002 门(急)诊病历, emergency
//! observation stays as C0003 急诊留观病历, inpatient stays as C0053 出院小结).
//!
//! Inputs are plain structs of this crate, so callers map their own data (database rows,
//! HL7 v2 events) onto them; nothing here touches a database. Output is UTF-8 XML in
//! `urn:hl7-org:v3`, valid against the POCD_MT000040 schema in `schemas/cda/`, containing
//! every section the document type requires (a section without data says "无" and has no
//! entries), and reading it back with [`crate::read`] gives the same patient, diagnoses,
//! observations, medications and immunizations.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use rhip_core::{EncounterType, RegionCode, Sex};

use crate::model::{Code, InstanceId, Organization, Quantity, ReferenceRange};
use crate::registry::{self, DocumentType, RequiredSection};
use crate::time::Timestamp;
use crate::validate::GBT2261_1_OID;
use crate::xml::HL7_NAMESPACE;

/// LOINC, the code system of section codes.
const LOINC: &str = "2.16.840.1.113883.6.1";
/// WS 363 data elements, the code system of the few WS/T 500 sections not coded in LOINC.
const WS363_DATA_ELEMENTS: &str = "2.16.156.10011.2.2.1";
/// HL7 ActCode, for the kind of encounter.
const ACT_CODE: &str = "2.16.840.1.113883.5.4";
/// HL7 ObservationInterpretation, for result flags.
const OBSERVATION_INTERPRETATION: &str = "2.16.840.1.113883.5.83";
/// The ICD-10 code system RHIP writes diagnoses in: the WS/T 500 ICD-10 value domain.
pub const ICD10_WS500: &str = "2.16.156.10011.2.3.3.11";

/// The patient as written into `recordTarget`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientInput {
    /// The citizen identity number, written as the id with root `2.16.156.10011.1.3`.
    pub citizen_id: Option<String>,
    /// Other identifiers (health record number, inpatient number, …).
    pub other_ids: Vec<InstanceId>,
    /// The name, written as one text node as Chinese documents do.
    pub name: String,
    /// Sex, written as a GB/T 2261.1 code.
    pub sex: Sex,
    /// Birth date.
    pub birth_date: chrono::NaiveDate,
    /// The county of residence (GB/T 2260), written as province, city and county names.
    pub county: Option<RegionCode>,
    /// The street part of the address, if known.
    pub street: Option<String>,
}

/// A diagnosis, written as an observation with an ICD-10 value.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosisInput {
    /// The ICD-10 code, with its code system (see [`DiagnosisInput::icd10`]).
    pub code: Code,
    /// When it was made.
    pub time: Option<Timestamp>,
}

impl DiagnosisInput {
    /// A diagnosis coded in the WS/T 500 ICD-10 value domain.
    pub fn icd10(code: &str, name: &str, time: Option<Timestamp>) -> DiagnosisInput {
        let mut coded = Code::new(code, ICD10_WS500, name);
        coded.code_system_name = Some("ICD-10".to_owned());
        DiagnosisInput { code: coded, time }
    }
}

/// The value of a result.
#[derive(Clone, Debug, PartialEq)]
pub enum ResultValue {
    /// A number with a unit (`PQ`).
    Quantity(Quantity),
    /// A coded result (`CD`).
    Coded(Code),
    /// Free text (`ST`).
    Text(String),
}

/// A lab or examination result (an observation).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultInput {
    /// What was measured (LOINC or a local code).
    pub code: Code,
    /// The result.
    pub value: ResultValue,
    /// The normal range, if any.
    pub reference_range: Option<ReferenceRange>,
    /// The abnormal flag (`H`, `L`, `N`, …; HL7 ObservationInterpretation).
    pub flag: Option<String>,
    /// When it was observed.
    pub time: Option<Timestamp>,
}

/// A medication or an immunization (a substance administration).
#[derive(Clone, Debug, PartialEq)]
pub struct AdministrationInput {
    /// The drug or vaccine code, if coded.
    pub code: Option<Code>,
    /// The drug or vaccine name.
    pub name: String,
    /// The dose.
    pub dose: Option<Quantity>,
    /// The route.
    pub route: Option<Code>,
    /// When it started (or was given).
    pub start: Option<Timestamp>,
    /// When it ended, for a course of medication.
    pub end: Option<Timestamp>,
}

/// A visit, for the encounter list of a summary and the `encompassingEncounter` of an EMR
/// document.
#[derive(Clone, Debug, PartialEq)]
pub struct EncounterInput {
    /// The visit number.
    pub id: InstanceId,
    /// The kind of visit.
    pub kind: EncounterType,
    /// Start (admission, arrival).
    pub start: Timestamp,
    /// End (discharge), if over.
    pub end: Option<Timestamp>,
    /// The facility where it happened.
    pub facility: Organization,
}

/// What every written document's header needs besides the patient.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderInput {
    /// The document id.
    pub id: InstanceId,
    /// When the document is created.
    pub effective_time: Timestamp,
    /// The organisation that writes and keeps the document (for a summary: the node).
    pub custodian: Organization,
    /// The author's organisation (the node, or the hospital of an encounter).
    pub author_organization: Organization,
    /// The author's name (a doctor), or `None` when software writes the document.
    pub author_name: Option<String>,
}

/// A person's lifetime health record summary (`EHR90` 个人健康档案摘要).
#[derive(Clone, Debug, PartialEq)]
pub struct EhrSummary {
    /// Document id, time, node.
    pub header: HeaderInput,
    /// The person.
    pub patient: PatientInput,
    /// Basic information lines (blood type, allergies, disability, …) for the narrative.
    pub basic_information: Vec<String>,
    /// Diagnoses and problems.
    pub problems: Vec<DiagnosisInput>,
    /// Visits anywhere in the region.
    pub encounters: Vec<EncounterInput>,
    /// Lab and examination results.
    pub results: Vec<ResultInput>,
    /// Medications.
    pub medications: Vec<AdministrationInput>,
    /// Immunizations.
    pub immunizations: Vec<AdministrationInput>,
}

/// One encounter's EMR document, from what an HL7 v2 feed (ADT, ORU) delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct EncounterDocument {
    /// Document id, time, hospital, node.
    pub header: HeaderInput,
    /// The patient.
    pub patient: PatientInput,
    /// The visit.
    pub encounter: EncounterInput,
    /// The chief complaint, if sent.
    pub chief_complaint: Option<String>,
    /// Diagnoses (DG1).
    pub diagnoses: Vec<DiagnosisInput>,
    /// Lab results (OBX).
    pub results: Vec<ResultInput>,
    /// Medications ordered or given (RXE/RXA).
    pub medications: Vec<AdministrationInput>,
}

/// The WS/T 500 type an encounter is written as.
pub fn emr_type_for(kind: EncounterType) -> &'static str {
    match kind {
        EncounterType::Inpatient => "C0053",
        EncounterType::Observation => "C0003",
        EncounterType::Outpatient
        | EncounterType::Emergency
        | EncounterType::PhysicalExam
        | EncounterType::HomeVisit => "C0002",
    }
}

/// What goes into a section.
#[derive(Default)]
struct SectionContent<'a> {
    /// Narrative lines besides those generated from entries.
    lines: Vec<String>,
    diagnoses: &'a [DiagnosisInput],
    encounters: &'a [EncounterInput],
    results: &'a [ResultInput],
    medications: &'a [AdministrationInput],
    immunizations: &'a [AdministrationInput],
}

impl SectionContent<'_> {
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
            && self.diagnoses.is_empty()
            && self.encounters.is_empty()
            && self.results.is_empty()
            && self.medications.is_empty()
            && self.immunizations.is_empty()
    }
}

/// Writes a person's EHR summary (`EHR90`).
pub fn ehr_summary(summary: &EhrSummary) -> Vec<u8> {
    let document_type = registry::by_code(registry::EHR_CODE_SYSTEM, registry::EHR_SUMMARY_CODE);
    let mut xml = Xml::new();
    if let Some(document_type) = document_type {
        header(&mut xml, document_type, &summary.header, &summary.patient, None);
        body(&mut xml, document_type, |section| match section.code.as_str() {
            "11329-0" => SectionContent { lines: summary.basic_information.clone(), ..SectionContent::default() },
            "11450-4" => SectionContent { diagnoses: &summary.problems, ..SectionContent::default() },
            "46240-8" => SectionContent { encounters: &summary.encounters, ..SectionContent::default() },
            "30954-2" => SectionContent { results: &summary.results, ..SectionContent::default() },
            "10160-0" => SectionContent { medications: &summary.medications, ..SectionContent::default() },
            "11369-6" => SectionContent { immunizations: &summary.immunizations, ..SectionContent::default() },
            _ => SectionContent::default(),
        });
    }
    xml.finish()
}

/// Writes the EMR document of one encounter, as the type [`emr_type_for`] its kind.
pub fn emr_encounter(document: &EncounterDocument) -> Vec<u8> {
    let document_type =
        registry::by_code(rhip_core::OID_DOCUMENT_TYPE_CODE_SYSTEM, emr_type_for(document.encounter.kind));
    let mut xml = Xml::new();
    if let Some(document_type) = document_type {
        let codes: Vec<&str> = document_type.required_sections.iter().map(|s| s.code.as_str()).collect();
        // Each kind of data goes into the first required section that can hold it, so
        // nothing is written (and read back) twice.
        let first_of = |candidates: &[&'static str]| candidates.iter().copied().find(|code| codes.contains(code));
        let diagnosis_section = first_of(&["29548-5", "11535-2", "11450-4"]);
        let result_section = first_of(&["30954-2"]);
        let medication_section = first_of(&["10160-0", "46209-3", "18776-5"]);
        header(&mut xml, document_type, &document.header, &document.patient, Some(&document.encounter));
        body(&mut xml, document_type, |section| {
            let code = Some(section.code.as_str());
            let mut content = SectionContent::default();
            if section.code == "10154-3" {
                content.lines.extend(document.chief_complaint.clone());
            }
            if code == diagnosis_section {
                content.diagnoses = &document.diagnoses;
            }
            if code == result_section {
                content.results = &document.results;
            }
            if code == medication_section {
                content.medications = &document.medications;
            }
            content
        });
    }
    xml.finish()
}

/// The header: everything up to and including `componentOf`.
fn header(
    xml: &mut Xml,
    document_type: &DocumentType,
    input: &HeaderInput,
    patient: &PatientInput,
    encounter: Option<&EncounterInput>,
) {
    xml.open(
        "ClinicalDocument",
        &[
            ("xmlns", HL7_NAMESPACE),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("classCode", "DOCCLIN"),
            ("moodCode", "EVN"),
        ],
    );
    xml.empty("realmCode", &[("code", "CN")]);
    xml.empty("typeId", &[("root", "2.16.840.1.113883.1.3"), ("extension", "POCD_HD000040")]);
    xml.empty("templateId", &[("root", &document_type.template_id)]);
    instance_id(xml, "id", &input.id);
    let system_name = match document_type.kind {
        registry::Kind::Emr => "卫生信息共享文档编码体系",
        registry::Kind::Ehr => "RHIP EHR document types",
    };
    xml.empty(
        "code",
        &[
            ("code", &document_type.code),
            ("codeSystem", &document_type.code_system),
            ("codeSystemName", system_name),
            ("displayName", &document_type.title),
        ],
    );
    xml.text_element("title", &[], &document_type.title);
    xml.empty("effectiveTime", &[("value", &input.effective_time.to_hl7())]);
    xml.empty(
        "confidentialityCode",
        &[("code", "N"), ("codeSystem", "2.16.840.1.113883.5.25"), ("displayName", "正常访问保密级别")],
    );
    xml.empty("languageCode", &[("code", "zh-CN")]);
    instance_id(xml, "setId", &input.id);
    xml.empty("versionNumber", &[("value", "1")]);
    record_target(xml, patient);
    xml.open("author", &[("typeCode", "AUT"), ("contextControlCode", "OP")]);
    xml.empty("time", &[("value", &input.effective_time.to_hl7())]);
    xml.open("assignedAuthor", &[("classCode", "ASSIGNED")]);
    organization_ids(xml, &input.author_organization);
    match &input.author_name {
        Some(name) => {
            xml.open("assignedPerson", &[("classCode", "PSN"), ("determinerCode", "INSTANCE")]);
            xml.text_element("name", &[], name);
            xml.close("assignedPerson");
        }
        None => {
            xml.open("assignedAuthoringDevice", &[("classCode", "DEV"), ("determinerCode", "INSTANCE")]);
            xml.text_element("softwareName", &[], "RHIP");
            xml.close("assignedAuthoringDevice");
        }
    }
    xml.open("representedOrganization", &[("classCode", "ORG"), ("determinerCode", "INSTANCE")]);
    organization_ids(xml, &input.author_organization);
    optional_name(xml, &input.author_organization);
    xml.close("representedOrganization");
    xml.close("assignedAuthor");
    xml.close("author");
    xml.open("custodian", &[("typeCode", "CST")]);
    xml.open("assignedCustodian", &[("classCode", "ASSIGNED")]);
    xml.open("representedCustodianOrganization", &[("classCode", "ORG"), ("determinerCode", "INSTANCE")]);
    organization_ids(xml, &input.custodian);
    optional_name(xml, &input.custodian);
    xml.close("representedCustodianOrganization");
    xml.close("assignedCustodian");
    xml.close("custodian");
    if let Some(encounter) = encounter {
        xml.open("componentOf", &[("typeCode", "COMP")]);
        xml.open("encompassingEncounter", &[("classCode", "ENC"), ("moodCode", "EVN")]);
        instance_id(xml, "id", &encounter.id);
        encounter_code(xml, encounter.kind);
        interval(xml, "effectiveTime", None, Some(&encounter.start), encounter.end.as_ref());
        xml.open("location", &[("typeCode", "LOC")]);
        xml.open("healthCareFacility", &[("classCode", "SDLOC")]);
        for id in &encounter.facility.ids {
            instance_id(xml, "id", id);
        }
        if let Some(name) = &encounter.facility.name {
            xml.open("location", &[("classCode", "PLC"), ("determinerCode", "INSTANCE")]);
            xml.text_element("name", &[], name);
            xml.close("location");
        }
        xml.close("healthCareFacility");
        xml.close("location");
        xml.close("encompassingEncounter");
        xml.close("componentOf");
    }
}

/// `recordTarget/patientRole`.
fn record_target(xml: &mut Xml, patient: &PatientInput) {
    xml.open("recordTarget", &[("typeCode", "RCT"), ("contextControlCode", "OP")]);
    xml.open("patientRole", &[("classCode", "PAT")]);
    if let Some(citizen_id) = &patient.citizen_id {
        xml.empty(
            "id",
            &[("root", rhip_core::OID_CITIZEN_ID), ("extension", citizen_id), ("assigningAuthorityName", "居民身份证")],
        );
    }
    for id in &patient.other_ids {
        instance_id(xml, "id", id);
    }
    if patient.citizen_id.is_none() && patient.other_ids.is_empty() {
        xml.empty("id", &[("nullFlavor", "NI")]);
    }
    if patient.county.is_some() || patient.street.is_some() {
        xml.open("addr", &[("use", "H")]);
        if let Some(street) = &patient.street {
            xml.text_element("streetAddressLine", &[], street);
        }
        if let Some(county) = patient.county {
            // Province, city, county names from the GB/T 2260 tree; the code itself when
            // the name is unknown, so the county is never lost.
            let mut chain: Vec<RegionCode> = county.ancestors().into_iter().rev().collect();
            chain.retain(|region| *region != RegionCode::NATIONAL && *region != county);
            let province = chain.iter().find(|r| r.tier() == rhip_core::Tier::Provincial);
            let city = chain.iter().find(|r| r.tier() == rhip_core::Tier::Municipal);
            for (element, region) in [("state", province), ("city", city)] {
                if let Some(name) = region.and_then(RegionCode::name) {
                    xml.text_element(element, &[], name);
                }
            }
            xml.text_element("county", &[], county.name().unwrap_or(county.as_str()));
            // Names are not unique across provinces; the GB/T 2260 code travels too, so a
            // reader gets the county back exactly.
            xml.text_element("censusTract", &[], county.as_str());
        }
        xml.close("addr");
    }
    xml.open("patient", &[("classCode", "PSN"), ("determinerCode", "INSTANCE")]);
    xml.text_element("name", &[], &patient.name);
    xml.empty(
        "administrativeGenderCode",
        &[
            ("code", patient.sex.code()),
            ("codeSystem", GBT2261_1_OID),
            ("codeSystemName", "生理性别代码表(GB/T 2261.1)"),
            ("displayName", patient.sex.name_zh()),
        ],
    );
    xml.empty("birthTime", &[("value", &Timestamp::from_date(patient.birth_date).to_hl7())]);
    xml.close("patient");
    xml.close("patientRole");
    xml.close("recordTarget");
}

/// The structured body with every required section of the type, in registry order.
fn body<'a>(xml: &mut Xml, document_type: &DocumentType, content_of: impl Fn(&RequiredSection) -> SectionContent<'a>) {
    xml.open("component", &[("typeCode", "COMP"), ("contextConductionInd", "true")]);
    xml.open("structuredBody", &[("classCode", "DOCBODY"), ("moodCode", "EVN")]);
    for section in &document_type.required_sections {
        let content = content_of(section);
        xml.open("component", &[("typeCode", "COMP"), ("contextConductionInd", "true")]);
        xml.open("section", &[("classCode", "DOCSECT"), ("moodCode", "EVN")]);
        let system = if section.code.starts_with("DE") { WS363_DATA_ELEMENTS } else { LOINC };
        let system_name = if section.code.starts_with("DE") { "WS 363" } else { "LOINC" };
        xml.empty(
            "code",
            &[
                ("code", &section.code),
                ("codeSystem", system),
                ("codeSystemName", system_name),
                ("displayName", &section.name),
            ],
        );
        xml.text_element("title", &[], section_title(&section.code).unwrap_or(&section.name));
        narrative(xml, &content);
        for diagnosis in content.diagnoses {
            diagnosis_entry(xml, diagnosis);
        }
        for encounter in content.encounters {
            encounter_entry(xml, encounter);
        }
        for result in content.results {
            result_entry(xml, result);
        }
        for medication in content.medications.iter().chain(content.immunizations) {
            administration_entry(xml, medication);
        }
        xml.close("section");
        xml.close("component");
    }
    xml.close("structuredBody");
    xml.close("component");
    xml.close("ClinicalDocument");
}

/// Chinese titles of the sections RHIP fills.
fn section_title(code: &str) -> Option<&'static str> {
    Some(match code {
        "11329-0" => "基本信息",
        "11450-4" => "问题列表",
        "46240-8" => "就诊记录",
        "30954-2" => "检查检验",
        "10160-0" => "用药",
        "11369-6" => "预防接种",
        "10154-3" => "主诉",
        "29548-5" => "诊断",
        "11535-2" => "出院诊断",
        "46209-3" => "医嘱",
        "18776-5" => "治疗计划",
        _ => return None,
    })
}

/// The narrative block: one paragraph per fact, or "无" when the section has no data.
fn narrative(xml: &mut Xml, content: &SectionContent<'_>) {
    if content.is_empty() {
        xml.text_element("text", &[], "无");
        return;
    }
    xml.open("text", &[]);
    let mut paragraphs: Vec<String> = content.lines.clone();
    paragraphs.extend(content.diagnoses.iter().map(|d| {
        format!("{} {}", d.code.code.as_deref().unwrap_or_default(), d.code.display_name.as_deref().unwrap_or_default())
    }));
    paragraphs.extend(content.encounters.iter().map(|e| {
        format!("{} {} {}", e.start.date(), e.kind.name_zh(), e.facility.name.as_deref().unwrap_or_default())
    }));
    paragraphs.extend(content.results.iter().map(|r| {
        let value = match &r.value {
            ResultValue::Quantity(q) => format!("{} {}", q.value, q.unit.as_deref().unwrap_or_default()),
            ResultValue::Coded(c) => c.display_name.clone().or(c.code.clone()).unwrap_or_default(),
            ResultValue::Text(text) => text.clone(),
        };
        let name = r.code.display_name.as_deref().or(r.code.code.as_deref()).unwrap_or_default();
        format!("{name}: {value} {}", r.flag.as_deref().unwrap_or_default())
    }));
    paragraphs.extend(content.medications.iter().chain(content.immunizations).map(|m| m.name.clone()));
    for paragraph in paragraphs {
        xml.text_element("paragraph", &[], paragraph.trim());
    }
    xml.close("text");
}

/// A diagnosis observation.
fn diagnosis_entry(xml: &mut Xml, diagnosis: &DiagnosisInput) {
    xml.open("entry", &[("typeCode", "DRIV")]);
    xml.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
    xml.empty(
        "code",
        &[("code", "29548-5"), ("codeSystem", LOINC), ("codeSystemName", "LOINC"), ("displayName", "Diagnosis")],
    );
    xml.empty("statusCode", &[("code", "completed")]);
    if let Some(time) = &diagnosis.time {
        xml.empty("effectiveTime", &[("value", &time.to_hl7())]);
    }
    coded(xml, "value", &diagnosis.code, Some("CD"));
    xml.close("observation");
    xml.close("entry");
}

/// An encounter act for the summary's visit list.
fn encounter_entry(xml: &mut Xml, encounter: &EncounterInput) {
    xml.open("entry", &[("typeCode", "DRIV")]);
    xml.open("encounter", &[("classCode", "ENC"), ("moodCode", "EVN")]);
    instance_id(xml, "id", &encounter.id);
    encounter_code(xml, encounter.kind);
    if let Some(name) = &encounter.facility.name {
        xml.text_element("text", &[], name);
    }
    interval(xml, "effectiveTime", None, Some(&encounter.start), encounter.end.as_ref());
    xml.close("encounter");
    xml.close("entry");
}

/// A result observation with value, flag and reference range.
fn result_entry(xml: &mut Xml, result: &ResultInput) {
    xml.open("entry", &[("typeCode", "DRIV")]);
    xml.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
    coded(xml, "code", &result.code, None);
    xml.empty("statusCode", &[("code", "completed")]);
    if let Some(time) = &result.time {
        xml.empty("effectiveTime", &[("value", &time.to_hl7())]);
    }
    match &result.value {
        ResultValue::Quantity(quantity) => {
            let mut attributes = vec![("xsi:type", "PQ"), ("value", quantity.value.as_str())];
            if let Some(unit) = &quantity.unit {
                attributes.push(("unit", unit));
            }
            xml.empty("value", &attributes);
        }
        ResultValue::Coded(code) => coded(xml, "value", code, Some("CD")),
        ResultValue::Text(text) => xml.text_element("value", &[("xsi:type", "ST")], text),
    }
    if let Some(flag) = &result.flag {
        xml.empty("interpretationCode", &[("code", flag), ("codeSystem", OBSERVATION_INTERPRETATION)]);
    }
    if let Some(range) = &result.reference_range {
        xml.open("referenceRange", &[("typeCode", "REFV")]);
        xml.open("observationRange", &[("classCode", "OBS"), ("moodCode", "EVN.CRT")]);
        if let Some(text) = &range.text {
            xml.text_element("text", &[], text);
        }
        if range.low.is_some() || range.high.is_some() {
            xml.open("value", &[("xsi:type", "IVL_PQ")]);
            for (element, bound) in [("low", &range.low), ("high", &range.high)] {
                if let Some(bound) = bound {
                    let mut attributes = vec![("value", bound.value.as_str())];
                    if let Some(unit) = &bound.unit {
                        attributes.push(("unit", unit));
                    }
                    xml.empty(element, &attributes);
                }
            }
            xml.close("value");
        }
        xml.close("observationRange");
        xml.close("referenceRange");
    }
    xml.close("observation");
    xml.close("entry");
}

/// A substance administration (medication or, in the immunization section, vaccination).
fn administration_entry(xml: &mut Xml, administration: &AdministrationInput) {
    xml.open("entry", &[("typeCode", "DRIV")]);
    xml.open("substanceAdministration", &[("classCode", "SBADM"), ("moodCode", "EVN")]);
    xml.empty("statusCode", &[("code", "completed")]);
    if administration.start.is_some() || administration.end.is_some() {
        interval(xml, "effectiveTime", Some("IVL_TS"), administration.start.as_ref(), administration.end.as_ref());
    }
    if let Some(route) = &administration.route {
        coded(xml, "routeCode", route, None);
    }
    if let Some(dose) = &administration.dose {
        let mut attributes = vec![("value", dose.value.as_str())];
        if let Some(unit) = &dose.unit {
            attributes.push(("unit", unit));
        }
        xml.empty("doseQuantity", &attributes);
    }
    xml.open("consumable", &[("typeCode", "CSM")]);
    xml.open("manufacturedProduct", &[("classCode", "MANU")]);
    xml.open("manufacturedMaterial", &[("classCode", "MMAT"), ("determinerCode", "KIND")]);
    if let Some(code) = &administration.code {
        coded(xml, "code", code, None);
    }
    xml.text_element("name", &[], &administration.name);
    xml.close("manufacturedMaterial");
    xml.close("manufacturedProduct");
    xml.close("consumable");
    xml.close("substanceAdministration");
    xml.close("entry");
}

/// The HL7 ActCode of an encounter kind.
fn encounter_code(xml: &mut Xml, kind: EncounterType) {
    let code = match kind {
        EncounterType::Inpatient => "IMP",
        EncounterType::Emergency => "EMER",
        EncounterType::Observation => "OBSENC",
        EncounterType::HomeVisit => "HH",
        EncounterType::Outpatient | EncounterType::PhysicalExam => "AMB",
    };
    xml.empty("code", &[("code", code), ("codeSystem", ACT_CODE), ("displayName", kind.name_zh())]);
}

/// An `IVL_TS` with low and high (or `nullFlavor` when neither is known).
fn interval(xml: &mut Xml, element: &str, xsi_type: Option<&str>, low: Option<&Timestamp>, high: Option<&Timestamp>) {
    let mut attributes = Vec::new();
    if let Some(xsi_type) = xsi_type {
        attributes.push(("xsi:type", xsi_type));
    }
    xml.open(element, &attributes);
    match low {
        Some(low) => xml.empty("low", &[("value", &low.to_hl7())]),
        None => xml.empty("low", &[("nullFlavor", "UNK")]),
    }
    if let Some(high) = high {
        xml.empty("high", &[("value", &high.to_hl7())]);
    }
    xml.close(element);
}

/// A coded element from a [`Code`], only with the attributes that are set.
fn coded(xml: &mut Xml, element: &str, code: &Code, xsi_type: Option<&str>) {
    let mut attributes: Vec<(&str, &str)> = Vec::new();
    if let Some(xsi_type) = xsi_type {
        attributes.push(("xsi:type", xsi_type));
    }
    for (name, value) in [
        ("code", &code.code),
        ("codeSystem", &code.code_system),
        ("codeSystemName", &code.code_system_name),
        ("displayName", &code.display_name),
    ] {
        if let Some(value) = value {
            attributes.push((name, value));
        }
    }
    if code.code.is_none() {
        attributes.push(("nullFlavor", code.null_flavor.as_deref().unwrap_or("UNK")));
    }
    xml.empty(element, &attributes);
}

/// An `II`; without a root it is written as `nullFlavor="NI"` (the schema requires one of
/// them).
fn instance_id(xml: &mut Xml, element: &str, id: &InstanceId) {
    let mut attributes: Vec<(&str, &str)> = Vec::new();
    match &id.root {
        Some(root) => {
            attributes.push(("root", root));
            if let Some(extension) = &id.extension {
                attributes.push(("extension", extension));
            }
        }
        None => attributes.push(("nullFlavor", id.null_flavor.as_deref().unwrap_or("NI"))),
    }
    xml.empty(element, &attributes);
}

/// The ids of an organisation (at least one: `nullFlavor` when it has none).
fn organization_ids(xml: &mut Xml, organization: &Organization) {
    if organization.ids.is_empty() {
        xml.empty("id", &[("nullFlavor", "NI")]);
    }
    for id in &organization.ids {
        instance_id(xml, "id", id);
    }
}

/// An organisation's `name`, when known.
fn optional_name(xml: &mut Xml, organization: &Organization) {
    if let Some(name) = &organization.name {
        xml.text_element("name", &[], name);
    }
}

/// Removes characters XML 1.0 cannot carry (control characters other than tab, CR, LF),
/// so that no input text can make the output ill-formed.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'))
        .collect()
}

/// A thin wrapper over quick-xml's writer into memory.
///
/// Writing into a `Vec<u8>` cannot fail (the only error quick-xml reports here is an I/O
/// error of the sink), so the results are deliberately discarded: the public writer
/// functions are infallible.
struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Xml {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Xml { writer }
    }

    fn start<'a>(name: &'a str, attributes: &[(&str, &str)]) -> BytesStart<'a> {
        let mut start = BytesStart::new(name);
        for (key, value) in attributes {
            start.push_attribute((*key, xml_safe(value).as_str()));
        }
        start
    }

    fn open(&mut self, name: &str, attributes: &[(&str, &str)]) {
        let _ = self.writer.write_event(Event::Start(Xml::start(name, attributes)));
    }

    fn close(&mut self, name: &str) {
        let _ = self.writer.write_event(Event::End(BytesEnd::new(name)));
    }

    fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) {
        let _ = self.writer.write_event(Event::Empty(Xml::start(name, attributes)));
    }

    fn text_element(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        let _ = self.writer.write_event(Event::Start(Xml::start(name, attributes)));
        let _ = self.writer.write_event(Event::Text(BytesText::new(&xml_safe(text))));
        let _ = self.writer.write_event(Event::End(BytesEnd::new(name)));
    }

    fn finish(self) -> Vec<u8> {
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        bytes
    }
}
