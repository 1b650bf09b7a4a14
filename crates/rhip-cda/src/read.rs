//! Reading a CDA R2 document: [`read`] runs the guarded XML layer ([`crate::xml`]) and then
//! extracts the header and body into [`ClinicalDocument`].
//!
//! Extraction is deliberately tolerant, because real documents vary: C-CDA templates,
//! hospital styles, `nullFlavor` anywhere, `xsi:type` written with any prefix, elements from
//! other namespaces (`sdtc:`) mixed in (they are ignored). What is missing is left empty;
//! [`crate::validate`] decides whether that is acceptable. Only a document that is not XML,
//! breaks a limit, or is not a `ClinicalDocument` in `urn:hl7-org:v3` is refused here.

use crate::limits::Limits;
use crate::model::{
    Address, AddressPart, Author, Body, ClinicalDocument, Code, Diagnosis, Encounter, Entry, InstanceId, Interval,
    Medication, NonXmlBody, Observation, Organization, Patient, PersonName, Quantity, ReferenceRange, RelatedDocument,
    Section, Telecom, Ts, Value,
};
use crate::problem::Rejected;
use crate::time::Timestamp;
use crate::xml::{self, Element, HL7_NAMESPACE};

/// ICD-10 code systems whose coded observation values RHIP treats as diagnoses:
/// WHO ICD-10, ICD-10-CM, and the ICD-10 value domain OID used in WS/T 500 documents
/// (疾病分类与代码, GB/T 14396 / ICD-10 国家临床版).
pub const ICD10_CODE_SYSTEMS: [&str; 3] =
    ["2.16.840.1.113883.6.3", "2.16.840.1.113883.6.90", "2.16.156.10011.2.3.3.11"];

/// LOINC section code of immunization history, which makes its substance administrations
/// immunizations.
pub const IMMUNIZATIONS_SECTION: &str = "11369-6";

/// C-CDA template ids that mark immunization sections and entries.
const IMMUNIZATION_TEMPLATES: [&str; 3] =
    ["2.16.840.1.113883.10.20.22.2.2", "2.16.840.1.113883.10.20.22.2.2.1", "2.16.840.1.113883.10.20.22.4.52"];

/// Reads a CDA R2 document from untrusted bytes.
///
/// Refuses (with the path of the element and what was expected) anything over `limits`,
/// any DTD, unknown encodings, XML that is not well-formed, and a root that is not
/// `ClinicalDocument` in `urn:hl7-org:v3`. Never panics. This is the whole reading cost, so
/// it is also what to benchmark for throughput.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<ClinicalDocument, Rejected> {
    let root = xml::parse(bytes, limits)?;
    if root.name != "ClinicalDocument" {
        return Err(Rejected::one(
            format!("/{}", root.name),
            format!("root element ClinicalDocument (namespace {HL7_NAMESPACE}); found <{}>", root.name),
        ));
    }
    if !root.is_hl7() {
        let found = root.namespace.as_deref().unwrap_or("no namespace");
        return Err(Rejected::one(
            "/ClinicalDocument",
            format!("ClinicalDocument in namespace {HL7_NAMESPACE}; found {found}"),
        ));
    }
    Ok(document(&root))
}

/// Extracts the whole document from its root element.
fn document(root: &Element) -> ClinicalDocument {
    let base = "/ClinicalDocument";
    ClinicalDocument {
        id: root.child("id").map(instance_id),
        set_id: root.child("setId").map(instance_id),
        version_number: root.child("versionNumber").and_then(|v| v.attr("value")).and_then(|v| v.parse().ok()),
        code: root.child("code").map(code),
        template_ids: template_ids(root),
        title: root.child("title").map(Element::text).filter(|title| !title.is_empty()),
        effective_time: root.child("effectiveTime").and_then(ts),
        confidentiality_code: root.child("confidentialityCode").map(code),
        language_code: root.child("languageCode").and_then(|l| l.attr("code")).map(str::to_owned),
        patient: root.child("recordTarget").and_then(|target| target.child("patientRole")).map(patient),
        authors: root.children_named("author").map(author).collect(),
        custodian: root.descend("custodian/assignedCustodian/representedCustodianOrganization").map(organization),
        encounter: root.descend("componentOf/encompassingEncounter").map(encounter),
        related_documents: root.children_named("relatedDocument").map(related_document).collect(),
        body: root.child("component").map_or(Body::Absent, |component| body(component, &format!("{base}/component"))),
    }
}

/// An `II`.
fn instance_id(element: &Element) -> InstanceId {
    InstanceId {
        root: element.attr("root").map(str::to_owned),
        extension: element.attr("extension").map(str::to_owned),
        null_flavor: element.attr("nullFlavor").map(str::to_owned),
    }
}

/// All `id` children.
fn ids(element: &Element) -> Vec<InstanceId> {
    element.children_named("id").map(instance_id).collect()
}

/// All `templateId/@root` values.
fn template_ids(element: &Element) -> Vec<String> {
    element.children_named("templateId").filter_map(|t| t.attr("root")).map(str::to_owned).collect()
}

/// A coded value; the display name falls back to `originalText`.
fn code(element: &Element) -> Code {
    let original_text = element.child("originalText").map(Element::text).filter(|text| !text.is_empty());
    Code {
        code: element.attr("code").map(str::to_owned),
        code_system: element.attr("codeSystem").map(str::to_owned),
        code_system_name: element.attr("codeSystemName").map(str::to_owned),
        display_name: element.attr("displayName").map(str::to_owned).or(original_text),
        null_flavor: element.attr("nullFlavor").map(str::to_owned),
    }
}

/// A `TS` from `@value`; `None` when the value is absent (e.g. `nullFlavor`).
fn ts(element: &Element) -> Option<Ts> {
    let raw = element.attr("value")?;
    Some(Ts { raw: raw.to_owned(), value: Timestamp::parse(raw).ok() })
}

/// An `IVL_TS` or `TS`.
fn interval(element: &Element) -> Interval {
    Interval { value: ts(element), low: element.child("low").and_then(ts), high: element.child("high").and_then(ts) }
}

/// A `PN`: text node and/or family/given parts.
fn person_name(element: &Element) -> PersonName {
    let family: Vec<String> = element.children_named("family").map(Element::text).filter(|t| !t.is_empty()).collect();
    let given: Vec<String> = element.children_named("given").map(Element::text).filter(|t| !t.is_empty()).collect();
    let own = element.own_text();
    let text = if family.is_empty() && given.is_empty() {
        if own.is_empty() {
            element.text()
        } else {
            own
        }
    } else {
        given.iter().chain(family.iter()).cloned().collect::<Vec<_>>().join(" ")
    };
    PersonName { text, family, given }
}

/// An `AD`.
fn address(element: &Element) -> Address {
    Address {
        use_code: element.attr("use").map(str::to_owned),
        parts: element
            .elements()
            .map(|part| AddressPart { kind: part.name.clone(), value: part.text() })
            .filter(|part| !part.value.is_empty())
            .collect(),
        text: Some(element.own_text()).filter(|text| !text.is_empty()),
    }
}

/// `recordTarget/patientRole`.
fn patient(role: &Element) -> Patient {
    let person = role.child("patient");
    Patient {
        ids: ids(role),
        name: person.and_then(|p| p.child("name")).map(person_name),
        gender: person.and_then(|p| p.child("administrativeGenderCode")).map(code),
        birth_time: person.and_then(|p| p.child("birthTime")).and_then(ts),
        addresses: role.children_named("addr").map(address).collect(),
        telecoms: role
            .children_named("telecom")
            .filter_map(|t| {
                Some(Telecom { value: t.attr("value")?.to_owned(), use_code: t.attr("use").map(str::to_owned) })
            })
            .collect(),
    }
}

/// An organisation (`representedOrganization`, `representedCustodianOrganization`, …).
fn organization(element: &Element) -> Organization {
    Organization { ids: ids(element), name: element.child("name").map(Element::text).filter(|name| !name.is_empty()) }
}

/// `author`.
fn author(element: &Element) -> Author {
    let assigned = element.child("assignedAuthor");
    Author {
        time: element.child("time").and_then(ts),
        ids: assigned.map(ids).unwrap_or_default(),
        name: assigned.and_then(|a| a.descend("assignedPerson/name")).map(person_name),
        device: assigned
            .and_then(|a| a.descend("assignedAuthoringDevice/softwareName"))
            .map(Element::text)
            .filter(|name| !name.is_empty()),
        organization: assigned.and_then(|a| a.child("representedOrganization")).map(organization),
    }
}

/// `componentOf/encompassingEncounter`.
fn encounter(element: &Element) -> Encounter {
    let facility = element.descend("location/healthCareFacility");
    let facility_name = facility
        .and_then(|f| f.descend("location/name").or_else(|| f.descend("serviceProviderOrganization/name")))
        .map(Element::text)
        .filter(|name| !name.is_empty());
    Encounter {
        ids: ids(element),
        code: element.child("code").map(code),
        effective_time: element.child("effectiveTime").map(interval).unwrap_or_default(),
        facility_ids: facility.map(ids).unwrap_or_default(),
        facility_name,
    }
}

/// `relatedDocument`.
fn related_document(element: &Element) -> RelatedDocument {
    let parent = element.child("parentDocument");
    RelatedDocument {
        type_code: element.attr("typeCode").unwrap_or_default().to_owned(),
        parent_ids: parent.map(ids).unwrap_or_default(),
        parent_set_id: parent.and_then(|p| p.child("setId")).map(instance_id),
        parent_version: parent
            .and_then(|p| p.child("versionNumber"))
            .and_then(|v| v.attr("value"))
            .and_then(|v| v.parse().ok()),
    }
}

/// The path of the `index`-th (0-based) of `count` same-named siblings: `name` alone when
/// it does not repeat, `name[i]` (1-based, as in XPath) when it does.
fn step(parent: &str, name: &str, index: usize, count: usize) -> String {
    if count > 1 {
        format!("{parent}/{name}[{}]", index + 1)
    } else {
        format!("{parent}/{name}")
    }
}

/// `component` of the document: structured or not.
fn body(component: &Element, path: &str) -> Body {
    if let Some(structured) = component.child("structuredBody") {
        return Body::Structured(sections_of(structured, &format!("{path}/structuredBody")));
    }
    if let Some(non_xml) = component.child("nonXMLBody") {
        let text = non_xml.child("text");
        return Body::NonXml(NonXmlBody {
            media_type: text.and_then(|t| t.attr("mediaType")).map(str::to_owned),
            representation: text.and_then(|t| t.attr("representation")).map(str::to_owned),
            reference: text.and_then(|t| t.child("reference")).and_then(|r| r.attr("value")).map(str::to_owned),
            embedded_size: text.map_or(0, |t| t.own_text().chars().filter(|c| !c.is_whitespace()).count()),
        });
    }
    Body::Absent
}

/// The sections in the `component`s of a `structuredBody` or `section`.
fn sections_of(parent: &Element, path: &str) -> Vec<Section> {
    let count = parent.children_named("component").count();
    parent
        .children_named("component")
        .enumerate()
        .filter_map(|(index, component)| {
            let section = component.child("section")?;
            Some(read_section(section, &format!("{}/section", step(path, "component", index, count))))
        })
        .collect()
}

/// One `section`, recursively.
fn read_section(element: &Element, path: &str) -> Section {
    let code = element.child("code").map(code);
    let template_ids = template_ids(element);
    let title = element.child("title").map(Element::text).filter(|title| !title.is_empty());
    let immunization_context = code.as_ref().and_then(|c| c.code.as_deref()) == Some(IMMUNIZATIONS_SECTION)
        || template_ids.iter().any(|t| IMMUNIZATION_TEMPLATES.contains(&t.as_str()));
    let mut entries = Vec::new();
    let count = element.children_named("entry").count();
    for (index, entry) in element.children_named("entry").enumerate() {
        let entry_path = step(path, "entry", index, count);
        for statement in entry.elements().filter(|e| e.is_hl7()) {
            statements(statement, &format!("{entry_path}/{}", statement.name), immunization_context, &mut entries);
        }
    }
    Section {
        path: path.to_owned(),
        code,
        template_ids,
        title,
        text: element.child("text").map(Element::text).unwrap_or_default(),
        entries,
        sections: sections_of(element, path),
    }
}

/// Collects the clinical statements at and below `element`: observations and substance
/// administrations are taken; acts, organizers, encounters and procedures are opened (their
/// `entryRelationship`s and `component`s), so C-CDA concern acts and result organizers
/// yield their observations.
fn statements(element: &Element, path: &str, immunization_context: bool, into: &mut Vec<Entry>) {
    match element.name.as_str() {
        "observation" => into.push(observation(element, path)),
        "substanceAdministration" => {
            let immunization = immunization_context
                || template_ids(element).iter().any(|t| IMMUNIZATION_TEMPLATES.contains(&t.as_str()));
            let medication = medication(element, path);
            into.push(if immunization { Entry::Immunization(medication) } else { Entry::Medication(medication) });
        }
        "act" | "organizer" | "encounter" | "procedure" => {
            for relation in ["entryRelationship", "component"] {
                let count = element.children_named(relation).count();
                for (index, link) in element.children_named(relation).enumerate() {
                    let link_path = step(path, relation, index, count);
                    for inner in link.elements().filter(|e| e.is_hl7()) {
                        statements(inner, &format!("{link_path}/{}", inner.name), immunization_context, into);
                    }
                }
            }
        }
        _ => {}
    }
}

/// True when a code is in one of the ICD-10 code systems.
fn is_icd10(code: &Code) -> bool {
    code.code.is_some()
        && (code.code_system.as_deref().is_some_and(|system| ICD10_CODE_SYSTEMS.contains(&system))
            || code.code_system_name.as_deref().is_some_and(|name| {
                let name = name.to_ascii_uppercase().replace(['-', ' '], "");
                name.starts_with("ICD10")
            }))
}

/// An `observation`: a diagnosis when its value (or a translation of it) is ICD-10 coded.
fn observation(element: &Element, path: &str) -> Entry {
    let value_element = element.child("value");
    let value = value_element.map(value);
    let effective_time = element.child("effectiveTime").map(interval).unwrap_or_default();
    let icd10 = match (&value, value_element) {
        (Some(Value::Coded(coded)), Some(value_element)) => {
            if is_icd10(coded) {
                Some(coded.clone())
            } else {
                value_element.children_named("translation").map(code).find(is_icd10)
            }
        }
        _ => None,
    };
    if let Some(icd10) = icd10 {
        return Entry::Diagnosis(Diagnosis {
            path: path.to_owned(),
            code: icd10,
            kind: element.child("code").map(code),
            effective_time,
        });
    }
    let reference_range = element.descend("referenceRange/observationRange").map(|range| {
        let interval = range.child("value");
        ReferenceRange {
            low: interval.and_then(|i| i.child("low")).and_then(quantity),
            high: interval.and_then(|i| i.child("high")).and_then(quantity),
            text: range.child("text").map(Element::text).filter(|text| !text.is_empty()),
        }
    });
    Entry::Observation(Observation {
        path: path.to_owned(),
        template_ids: template_ids(element),
        code: element.child("code").map(code),
        value,
        reference_range,
        interpretation: element.child("interpretationCode").map(code),
        effective_time,
    })
}

/// A `PQ` from `@value`/`@unit`.
fn quantity(element: &Element) -> Option<Quantity> {
    Some(Quantity { value: element.attr("value")?.to_owned(), unit: element.attr("unit").map(str::to_owned) })
}

/// An observation `value` by its `xsi:type` (prefix ignored); untyped values are guessed
/// from their attributes.
fn value(element: &Element) -> Value {
    let xsi_type = element.attr("type").map(|t| t.rsplit(':').next().unwrap_or(t).to_ascii_uppercase());
    let attribute = |name: &str| element.attr(name).unwrap_or_default().to_owned();
    match xsi_type.as_deref() {
        Some("PQ") => {
            Value::Quantity(Quantity { value: attribute("value"), unit: element.attr("unit").map(str::to_owned) })
        }
        Some("CD" | "CE" | "CV" | "CO" | "CS") => Value::Coded(code(element)),
        Some("ST" | "ED" | "SC") => Value::Text(element.text()),
        Some("INT") => Value::Integer(attribute("value")),
        Some("REAL") => Value::Real(attribute("value")),
        Some("BL") => Value::Boolean(attribute("value")),
        Some("TS") => ts(element).map_or(Value::Other { xsi_type, text: String::new() }, Value::Time),
        None if element.attr("code").is_some() || element.attr("codeSystem").is_some() => Value::Coded(code(element)),
        None if element.attr("value").is_some() && element.attr("unit").is_some() => {
            Value::Quantity(Quantity { value: attribute("value"), unit: element.attr("unit").map(str::to_owned) })
        }
        _ => {
            let text = element.attr("value").map(str::to_owned).unwrap_or_else(|| element.text());
            Value::Other { xsi_type, text }
        }
    }
}

/// A `substanceAdministration` (medication or immunization).
fn medication(element: &Element, path: &str) -> Medication {
    let material = element.descend("consumable/manufacturedProduct/manufacturedMaterial");
    let material_code = material.and_then(|m| m.child("code")).map(code);
    let name = material
        .and_then(|m| m.child("name"))
        .map(Element::text)
        .filter(|name| !name.is_empty())
        .or_else(|| material_code.as_ref().and_then(|c| c.display_name.clone()));
    // Several effectiveTime elements are common (an interval plus a PIVL_TS frequency);
    // the first that is not a periodic time says when.
    let effective_time = element
        .children_named("effectiveTime")
        .find(|time| !time.attr("type").is_some_and(|t| t.contains("PIVL") || t.contains("EIVL")))
        .map(interval)
        .unwrap_or_default();
    Medication {
        path: path.to_owned(),
        code: material_code,
        name,
        dose: element.child("doseQuantity").and_then(quantity),
        route: element.child("routeCode").map(code),
        effective_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sdtc="urn:hl7-org:sdtc">
  <id root="1.2.3" extension="d1"/>
  <recordTarget><patientRole>
    <id nullFlavor="NI"/>
    <addr><county>朝阳区</county><postalCode>100020</postalCode></addr>
    <patient><name><family>Doe</family><given>Jane</given></name><sdtc:id root="x"/>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/><birthTime value="19800517"/></patient>
  </patientRole></recordTarget>
  <component><structuredBody>
    <component><section>
      <code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Problems</title>
      <text><list><item>Hypertension</item><item>Cough</item></list></text>
      <entry><act classCode="ACT" moodCode="EVN"><entryRelationship typeCode="SUBJ">
        <observation classCode="OBS" moodCode="EVN">
          <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
          <effectiveTime><low value="20200101"/></effectiveTime>
          <value xsi:type="CD" code="59621000" codeSystem="2.16.840.1.113883.6.96">
            <translation code="I10" codeSystem="2.16.840.1.113883.6.90" displayName="Essential hypertension"/>
          </value>
        </observation>
      </entryRelationship></act></entry>
      <entry><observation classCode="OBS" moodCode="EVN">
        <code code="DE05.01.024.00" codeSystem="2.16.156.10011.2.2.1"/>
        <value code="R05" codeSystem="1.9.9" codeSystemName="ICD-10"/>
      </observation></entry>
    </section></component>
    <component><section>
      <code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/>
      <entry><organizer classCode="BATTERY" moodCode="EVN">
        <component><observation classCode="OBS" moodCode="EVN"><code code="a"/><value xsi:type="cda:PQ" value="5.60" unit="mmol/L"/></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="b"/><value xsi:type="INT" value="3"/></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="c"/><value xsi:type="REAL" value="1.5"/></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="d"/><value xsi:type="TS" value="20240101"/></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="e"/><value xsi:type="ST">阴性</value></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="f"/><value code="POS" codeSystem="1.2"/></observation></component>
        <component><observation classCode="OBS" moodCode="EVN"><code code="g"/><value nullFlavor="NI"/></observation></component>
      </organizer></entry>
    </section></component>
    <component><section>
      <templateId root="2.16.840.1.113883.10.20.22.2.2.1"/>
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <effectiveTime value="20240101"/>
        <consumable><manufacturedProduct><manufacturedMaterial><code code="140" displayName="Influenza"/></manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>
    </section></component>
  </structuredBody></component>
</ClinicalDocument>"#;

    #[test]
    fn entries_of_every_shape_are_extracted() {
        let document = read(ENTRIES.as_bytes(), &Limits::default()).unwrap();
        let patient = document.patient.as_ref().unwrap();
        assert_eq!(patient.name.as_ref().unwrap().text, "Jane Doe");
        assert_eq!(patient.addresses[0].part("county"), Some("朝阳区"));
        assert_eq!(patient.addresses[0].part("postalCode"), Some("100020"));
        assert!(!patient.ids[0].is_present());
        let diagnoses = document.diagnoses();
        assert_eq!(diagnoses.len(), 2);
        assert_eq!(diagnoses[0].code.code.as_deref(), Some("I10"));
        assert_eq!(diagnoses[0].path, "/ClinicalDocument/component/structuredBody/component[1]/section/entry[1]/act/entryRelationship/observation");
        assert_eq!(diagnoses[0].effective_time.low.as_ref().unwrap().raw, "20200101");
        assert_eq!(diagnoses[1].code.code.as_deref(), Some("R05"));
        let values: Vec<_> = document.observations().iter().map(|o| o.value.clone()).collect();
        assert_eq!(values.len(), 7);
        assert_eq!(values[0], Some(Value::Quantity(Quantity { value: "5.60".into(), unit: Some("mmol/L".into()) })));
        assert_eq!(values[1], Some(Value::Integer("3".into())));
        assert_eq!(values[2], Some(Value::Real("1.5".into())));
        assert!(matches!(&values[3], Some(Value::Time(ts)) if ts.value.is_some()));
        assert_eq!(values[4], Some(Value::Text("阴性".into())));
        assert!(matches!(&values[5], Some(Value::Coded(code)) if code.code.as_deref() == Some("POS")));
        assert!(matches!(&values[6], Some(Value::Other { xsi_type: None, .. })));
        let immunizations = document.immunizations();
        assert_eq!(immunizations.len(), 1);
        assert_eq!(immunizations[0].name.as_deref(), Some("Influenza"));
        assert_eq!(document.all_sections()[0].text, "Hypertension Cough");
    }
}
