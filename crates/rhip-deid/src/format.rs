//! The export file: JSON Lines, a header object first, then one object per
//! exported person (`schemas/exports/deidentified-export.schema.json`).

use chrono::{DateTime, NaiveDate, Utc};
use rhip_core::RegionCode;
use serde::{Deserialize, Serialize};

use crate::content::{ExportEncounter, ExportResult, ExportService};
use crate::kanon::K;

/// The format's name, in every header.
pub const FORMAT: &str = "rhip-deidentified-export";
/// The format's version; a reader refuses other versions.
pub const FORMAT_VERSION: u32 = 1;
/// The blind-index domain of pseudonyms (`DataKeys::blind_index`), kept
/// apart from the indexes of citizen IDs and logins.
pub const PSEUDONYM_DOMAIN: &str = "export_pseudonym";
/// `type` of the header line.
pub(crate) const HEADER_TYPE: &str = "header";
/// `type` of a record line.
pub(crate) const RECORD_TYPE: &str = "person";

/// The quasi-identifiers, as the header names them.
const QUASI_IDENTIFIERS: [&str; 3] = ["sex", "birth_year_or_age_band", "region"];
/// The content categories of a record.
const CONTENT: [&str; 4] = ["encounters", "diagnoses", "results", "services"];

/// Facts about the exporting node the header states.
#[derive(Clone, Debug)]
pub struct HeaderFacts {
    /// The node's region.
    pub node_region: RegionCode,
}

/// One thing done to the data, for the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transformation {
    /// The field or group of fields.
    pub field: String,
    /// `removed`, `pseudonymised`, `generalised`, `reduced` or `suppressed`.
    pub action: String,
    /// How, in a sentence.
    pub detail: String,
}

/// How pseudonyms are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pseudonym {
    /// `HMAC-SHA-256`.
    pub scheme: String,
    /// What is hashed: the EMPI id.
    pub input: String,
    /// The blind-index domain.
    pub domain: String,
    /// Which key; the key itself is never in an export.
    pub key: String,
    /// Over which exports a pseudonym stays the same.
    pub stable: String,
}

/// How many persons and classes an export considered, exported and suppressed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Active persons whose home region lies in the export's region.
    pub persons_considered: u64,
    /// Records in the file.
    pub records_exported: u64,
    /// Persons left out.
    pub records_suppressed: u64,
    /// Equivalence classes found.
    pub classes: u64,
    /// Classes in the file (each with at least `k` records).
    pub classes_exported: u64,
    /// Classes left out (fewer than `k` members).
    pub classes_suppressed: u64,
}

/// Why records were left out, and how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// `equivalence_class_below_k`.
    pub reason: String,
    /// Records left out for it.
    pub records: u64,
    /// Classes left out for it.
    pub classes: u64,
}

/// The first line of an export: what it is and everything done to make it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always `header`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The exporting node's region.
    pub node_region: String,
    /// The region whose residents were considered (its subtree).
    pub export_region: String,
    /// When the export was made (UTC).
    pub generated_at: DateTime<Utc>,
    /// The day ages were taken on (China Standard Time).
    pub reference_date: NaiveDate,
    /// Every equivalence class has at least this many records.
    pub k: u32,
    /// The fields that make up an equivalence class.
    pub quasi_identifiers: Vec<String>,
    /// Everything done to the data.
    pub transformations: Vec<Transformation>,
    /// How pseudonyms are made.
    pub pseudonym: Pseudonym,
    /// The content categories a record may carry.
    pub content: Vec<String>,
    /// What a consent or category filter removed (`none`).
    pub content_filter: String,
    /// What was considered, exported and suppressed.
    pub counts: Counts,
    /// Why records were left out.
    pub suppressed: Vec<Suppression>,
}

/// One exported person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRecord {
    /// Always `person`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// Keyed hash of the EMPI id (64 hex digits).
    pub pseudonym: String,
    /// GB/T 2261.1 sex code.
    pub sex: String,
    /// Birth year, for persons aged 89 or less on the reference date.
    pub birth_year: Option<i32>,
    /// `90+` for persons aged 90 or more on the reference date.
    pub age_band: Option<String>,
    /// Municipal-level home region.
    pub region: String,
    /// Encounters with their diagnoses.
    pub encounters: Vec<ExportEncounter>,
    /// Results.
    pub results: Vec<ExportResult>,
    /// Other EHR entries.
    pub services: Vec<ExportService>,
}

fn transformation(field: &str, action: &str, detail: &str) -> Transformation {
    Transformation { field: field.into(), action: action.into(), detail: detail.into() }
}

/// Every transformation an export applies, in the order of a record's fields.
fn transformations() -> Vec<Transformation> {
    vec![
        transformation(
            "name, id_number, phone, address, contacts, insurance, identifiers",
            "removed",
            "direct identifiers are not read for an export and not written",
        ),
        transformation(
            "empi_id",
            "pseudonymised",
            "replaced by HMAC-SHA-256 of the EMPI id under the node's data index key (domain export_pseudonym)",
        ),
        transformation("sex", "generalised", "GB/T 2261.1 code; anything else becomes 0 (not known)"),
        transformation(
            "birth_date",
            "generalised",
            "to the year; persons aged 90 or more on the reference date get the age band 90+ and no year",
        ),
        transformation(
            "home_region",
            "generalised",
            "to the municipal-level region: a county becomes its prefecture, or its province where it has none",
        ),
        transformation("ethnicity, marital_status, household", "removed", "not exported"),
        transformation(
            "encounters",
            "reduced",
            "type, month of admission (China Standard Time) and facility kind; facility codes, visit numbers, \
             departments, locations, clinicians and reasons removed; cancelled encounters left out",
        ),
        transformation("diagnoses", "reduced", "code system, code and diagnosis type; display texts removed"),
        transformation(
            "results",
            "reduced",
            "code system, code, month and abnormal flag; values, units and ranges removed",
        ),
        transformation("services", "reduced", "EHR entry kind and month; summaries removed"),
        transformation(
            "codes",
            "removed",
            "a code, code system or type that is not code-like (1 to 40 characters without whitespace) is dropped",
        ),
        transformation(
            "records",
            "suppressed",
            "a person whose equivalence class over the quasi-identifiers has fewer than k members is left out",
        ),
    ]
}

impl ExportHeader {
    pub(crate) fn new(
        facts: &HeaderFacts,
        export_region: RegionCode,
        generated_at: DateTime<Utc>,
        reference_date: NaiveDate,
        k: K,
        counts: Counts,
        content_filter: String,
    ) -> ExportHeader {
        let suppressed = vec![Suppression {
            reason: "equivalence_class_below_k".into(),
            records: counts.records_suppressed,
            classes: counts.classes_suppressed,
        }];
        ExportHeader {
            line_type: HEADER_TYPE.into(),
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            node_region: facts.node_region.as_str().into(),
            export_region: export_region.as_str().into(),
            generated_at,
            reference_date,
            k: k.get(),
            quasi_identifiers: QUASI_IDENTIFIERS.iter().map(|q| q.to_string()).collect(),
            transformations: transformations(),
            pseudonym: Pseudonym {
                scheme: "HMAC-SHA-256".into(),
                input: "EMPI id".into(),
                domain: PSEUDONYM_DOMAIN.into(),
                key: "the node's data index key (keys/data-keys.json); never exported".into(),
                stable: "across exports of this node".into(),
            },
            content: CONTENT.iter().map(|c| c.to_string()).collect(),
            content_filter,
            counts,
            suppressed,
        }
    }

    /// The header as one JSON line (without the newline).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl ExportRecord {
    /// The record as one JSON line (without the newline).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
