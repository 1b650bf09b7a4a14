//! The plain data [`crate::read`] extracts from a CDA document and [`crate::validate`]
//! checks: only what RHIP indexes and stores, as owned values that serialise to JSON.
//!
//! Every field that a sender may leave out (or send as `nullFlavor`) is an `Option` or an
//! empty `Vec`; judging whether that is acceptable is [`crate::validate`]'s job, not the
//! reader's. Entries carry the path of the element they came from, so validation problems
//! can point at them.

use serde::Serialize;

use crate::time::Timestamp;

/// An `II` instance identifier: `root` (an OID or UUID) plus an optional `extension`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InstanceId {
    /// The namespace of the identifier (`2.16.156.10011.1.3` for citizen IDs).
    pub root: Option<String>,
    /// The identifier within that namespace.
    pub extension: Option<String>,
    /// Why the value is missing (`NI`, `UNK`, …), if it is.
    pub null_flavor: Option<String>,
}

impl InstanceId {
    /// An identifier with both parts.
    pub fn new(root: impl Into<String>, extension: impl Into<String>) -> InstanceId {
        InstanceId { root: Some(root.into()), extension: Some(extension.into()), null_flavor: None }
    }

    /// True when the identifier identifies something (a root, not a null flavor).
    pub fn is_present(&self) -> bool {
        self.null_flavor.is_none() && self.root.as_deref().is_some_and(|root| !root.trim().is_empty())
    }
}

/// A coded value (`CD`, `CE`, `CV`, `CS`): the code, its system and the display name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Code {
    /// The code itself.
    pub code: Option<String>,
    /// The OID of the code system.
    pub code_system: Option<String>,
    /// The name of the code system, as the sender wrote it.
    pub code_system_name: Option<String>,
    /// A human-readable name.
    pub display_name: Option<String>,
    /// Why the value is missing, if it is.
    pub null_flavor: Option<String>,
}

impl Code {
    /// A code with its system and display name.
    pub fn new(code: impl Into<String>, code_system: impl Into<String>, display_name: impl Into<String>) -> Code {
        Code {
            code: Some(code.into()),
            code_system: Some(code_system.into()),
            display_name: Some(display_name.into()),
            ..Code::default()
        }
    }
}

/// A point in time as sent: the raw `@value` and, if it could be parsed, its meaning.
/// The raw text is kept so that validation can report a value that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ts {
    /// The `@value` attribute as written.
    pub raw: String,
    /// The parsed value, or `None` if `raw` is not an HL7 `TS`.
    pub value: Option<Timestamp>,
}

impl Ts {
    /// Wraps a parsed timestamp (for the writer's inputs).
    pub fn of(value: Timestamp) -> Ts {
        Ts { raw: value.to_hl7(), value: Some(value) }
    }
}

/// An `effectiveTime` that may be a point (`@value`) or an interval (`low`/`high`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// The point in time, when one `@value` was given.
    pub value: Option<Ts>,
    /// The start, when an interval was given.
    pub low: Option<Ts>,
    /// The end, when an interval was given.
    pub high: Option<Ts>,
}

impl Interval {
    /// Whichever of value, low, high exists first: "when" for indexing.
    pub fn start(&self) -> Option<&Ts> {
        self.value.as_ref().or(self.low.as_ref()).or(self.high.as_ref())
    }
}

/// A person's name. Chinese names usually arrive as one text node (`<name>测试甲</name>`),
/// Western ones as `family`/`given` parts; both are kept, and `text` is always filled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PersonName {
    /// The whole name as displayed: the text node, or the parts joined.
    pub text: String,
    /// Family name parts.
    pub family: Vec<String>,
    /// Given name parts.
    pub given: Vec<String>,
}

/// One part of an address (`<county>`, `<postalCode>`, `<streetAddressLine>`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressPart {
    /// The element's local name, e.g. `county`.
    pub kind: String,
    /// Its text.
    pub value: String,
}

/// An `AD` address, as its parts in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The `@use` code (`H` home, `WP` work, …).
    pub use_code: Option<String>,
    /// The parts.
    pub parts: Vec<AddressPart>,
    /// Loose text directly inside `<addr>`, if any.
    pub text: Option<String>,
}

impl Address {
    /// The first part of this kind (`"county"`, `"postalCode"`).
    pub fn part(&self, kind: &str) -> Option<&str> {
        self.parts.iter().find(|part| part.kind == kind).map(|part| part.value.as_str())
    }
}

/// A `TEL` contact point (`tel:…`, `mailto:…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Telecom {
    /// The URL.
    pub value: String,
    /// The `@use` code.
    pub use_code: Option<String>,
}

/// The patient of the document (`recordTarget/patientRole`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// All identifiers: citizen ID, health record number, inpatient number, …
    pub ids: Vec<InstanceId>,
    /// The name.
    pub name: Option<PersonName>,
    /// `administrativeGenderCode`: GB/T 2261.1 (`1`, `2`, …) or HL7 (`M`, `F`, `UN`).
    pub gender: Option<Code>,
    /// The birth time.
    pub birth_time: Option<Ts>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Contact points.
    pub telecoms: Vec<Telecom>,
}

impl Patient {
    /// The citizen identity number: the extension of the id whose root is
    /// [`rhip_core::OID_CITIZEN_ID`].
    pub fn citizen_id(&self) -> Option<&str> {
        self.ids
            .iter()
            .find(|id| id.root.as_deref() == Some(rhip_core::OID_CITIZEN_ID))
            .and_then(|id| id.extension.as_deref())
    }
}

/// An organisation: a hospital, a health commission node, a custodian.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// Identifiers (institution codes).
    pub ids: Vec<InstanceId>,
    /// The name.
    pub name: Option<String>,
}

/// Who wrote the document (`author`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Author {
    /// When.
    pub time: Option<Ts>,
    /// `assignedAuthor/id`.
    pub ids: Vec<InstanceId>,
    /// `assignedPerson/name`, when a person wrote it.
    pub name: Option<PersonName>,
    /// `assignedAuthoringDevice/softwareName`, when software wrote it.
    pub device: Option<String>,
    /// `representedOrganization`.
    pub organization: Option<Organization>,
}

/// The visit the document belongs to (`componentOf/encompassingEncounter`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Encounter {
    /// Visit numbers.
    pub ids: Vec<InstanceId>,
    /// The kind of visit (e.g. `AMB`, `IMP`).
    pub code: Option<Code>,
    /// When (admission to discharge).
    pub effective_time: Interval,
    /// `location/healthCareFacility/id`.
    pub facility_ids: Vec<InstanceId>,
    /// The facility's name (its location or service provider organisation).
    pub facility_name: Option<String>,
}

/// A `relatedDocument`: this document replaces (`RPLC`), appends to (`APND`) or transforms
/// (`XFRM`) an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RelatedDocument {
    /// `RPLC`, `APND` or `XFRM`.
    pub type_code: String,
    /// The parent's ids.
    pub parent_ids: Vec<InstanceId>,
    /// The parent's set id.
    pub parent_set_id: Option<InstanceId>,
    /// The parent's version number.
    pub parent_version: Option<i64>,
}

/// A physical quantity: value and UCUM unit. The value is kept as text so that `5.60`
/// stays `5.60`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Quantity {
    /// The number as written.
    pub value: String,
    /// The unit.
    pub unit: Option<String>,
}

/// An observation value, by its `xsi:type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Value {
    /// `PQ`: a number with a unit.
    Quantity(Quantity),
    /// `CD`, `CE`, `CV`, `CO`, `CS`: a code.
    Coded(Code),
    /// `ST` (and `ED` text): a string.
    Text(String),
    /// `INT`: an integer, as written.
    Integer(String),
    /// `REAL`: a decimal, as written.
    Real(String),
    /// `TS`: a point in time.
    Time(Ts),
    /// `BL`: a boolean, as written.
    Boolean(String),
    /// Anything else: the `xsi:type` and the text or `@value`.
    Other {
        /// The `xsi:type` without prefix, if any.
        xsi_type: Option<String>,
        /// The `@value` attribute or the element text.
        text: String,
    },
}

/// A reference range (`referenceRange/observationRange`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReferenceRange {
    /// Lower bound.
    pub low: Option<Quantity>,
    /// Upper bound.
    pub high: Option<Quantity>,
    /// The range as text, if given.
    pub text: Option<String>,
}

/// An `observation` that is not a diagnosis: a lab result, a vital sign, a finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// Where it is in the document.
    pub path: String,
    /// `templateId/@root` values.
    pub template_ids: Vec<String>,
    /// What was observed (often LOINC).
    pub code: Option<Code>,
    /// The result.
    pub value: Option<Value>,
    /// The normal range.
    pub reference_range: Option<ReferenceRange>,
    /// The flag (`H`, `L`, `N`, …).
    pub interpretation: Option<Code>,
    /// When.
    pub effective_time: Interval,
}

/// A diagnosis or problem: an observation whose value is coded in ICD-10.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// Where it is in the document.
    pub path: String,
    /// The ICD-10 code (the observation's value).
    pub code: Code,
    /// The observation's own code (the kind of diagnosis, e.g. `29548-5`), if any.
    pub kind: Option<Code>,
    /// When it was diagnosed or was active.
    pub effective_time: Interval,
}

/// A medication (`substanceAdministration` outside an immunization context).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Medication {
    /// Where it is in the document.
    pub path: String,
    /// `consumable/manufacturedProduct/manufacturedMaterial/code`.
    pub code: Option<Code>,
    /// `manufacturedMaterial/name` (or the code's display name).
    pub name: Option<String>,
    /// `doseQuantity`.
    pub dose: Option<Quantity>,
    /// `routeCode`.
    pub route: Option<Code>,
    /// When (the first `effectiveTime` that is a point or an interval).
    pub effective_time: Interval,
}

/// An immunization: a `substanceAdministration` in an immunization section or with an
/// immunization template. Same shape as a medication; the vaccine is the code.
pub type Immunization = Medication;

/// One clinical statement found in a section's entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Entry {
    /// A diagnosis or problem coded in ICD-10.
    Diagnosis(Diagnosis),
    /// Any other observation.
    Observation(Observation),
    /// A medication.
    Medication(Medication),
    /// An immunization.
    Immunization(Immunization),
}

/// A `section` of a structured body, with its sub-sections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Where it is in the document.
    pub path: String,
    /// The section code (LOINC).
    pub code: Option<Code>,
    /// `templateId/@root` values.
    pub template_ids: Vec<String>,
    /// The title.
    pub title: Option<String>,
    /// The narrative block as plain text (whitespace collapsed).
    pub text: String,
    /// The clinical statements of its entries (nested acts and organizers flattened).
    pub entries: Vec<Entry>,
    /// Nested sections.
    pub sections: Vec<Section>,
}

/// A `nonXMLBody`: the document is a file (PDF, text, image), embedded or referenced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NonXmlBody {
    /// `text/@mediaType`.
    pub media_type: Option<String>,
    /// `text/@representation` (`B64` or `TXT`).
    pub representation: Option<String>,
    /// `text/reference/@value`, when the file is referenced.
    pub reference: Option<String>,
    /// Size in characters of the embedded content (base64 text without whitespace).
    pub embedded_size: usize,
}

/// The body of the document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Body {
    /// No `component` at all (a header-only document).
    #[default]
    Absent,
    /// `structuredBody`: sections.
    Structured(Vec<Section>),
    /// `nonXMLBody`: a file.
    NonXml(NonXmlBody),
}

/// What RHIP extracts from a CDA R2 `ClinicalDocument`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClinicalDocument {
    /// The document id.
    pub id: Option<InstanceId>,
    /// `setId`: the same for every version of one document.
    pub set_id: Option<InstanceId>,
    /// `versionNumber`.
    pub version_number: Option<i64>,
    /// The document type code.
    pub code: Option<Code>,
    /// `templateId/@root` values.
    pub template_ids: Vec<String>,
    /// The title.
    pub title: Option<String>,
    /// When the document was created.
    pub effective_time: Option<Ts>,
    /// `confidentialityCode`.
    pub confidentiality_code: Option<Code>,
    /// `languageCode/@code` (`zh-CN`).
    pub language_code: Option<String>,
    /// The patient (first `recordTarget`).
    pub patient: Option<Patient>,
    /// The authors.
    pub authors: Vec<Author>,
    /// `custodian/assignedCustodian/representedCustodianOrganization`.
    pub custodian: Option<Organization>,
    /// `componentOf/encompassingEncounter`.
    pub encounter: Option<Encounter>,
    /// `relatedDocument`s.
    pub related_documents: Vec<RelatedDocument>,
    /// The body.
    pub body: Body,
}

impl ClinicalDocument {
    /// Every section, nested ones included, in document order.
    pub fn all_sections(&self) -> Vec<&Section> {
        fn walk<'a>(sections: &'a [Section], into: &mut Vec<&'a Section>) {
            for section in sections {
                into.push(section);
                walk(&section.sections, into);
            }
        }
        let mut all = Vec::new();
        if let Body::Structured(sections) = &self.body {
            walk(sections, &mut all);
        }
        all
    }

    /// Every entry of every section.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.all_sections().into_iter().flat_map(|section| section.entries.iter())
    }

    /// Every diagnosis, in document order.
    pub fn diagnoses(&self) -> Vec<&Diagnosis> {
        self.entries().filter_map(|entry| if let Entry::Diagnosis(d) = entry { Some(d) } else { None }).collect()
    }

    /// Every observation that is not a diagnosis, in document order.
    pub fn observations(&self) -> Vec<&Observation> {
        self.entries().filter_map(|entry| if let Entry::Observation(o) = entry { Some(o) } else { None }).collect()
    }

    /// Every medication, in document order.
    pub fn medications(&self) -> Vec<&Medication> {
        self.entries().filter_map(|entry| if let Entry::Medication(m) = entry { Some(m) } else { None }).collect()
    }

    /// Every immunization, in document order.
    pub fn immunizations(&self) -> Vec<&Immunization> {
        self.entries().filter_map(|entry| if let Entry::Immunization(i) = entry { Some(i) } else { None }).collect()
    }
}
