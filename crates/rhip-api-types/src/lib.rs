//! JSON shapes of the RHIP HTTP API.
//!
//! These are the contract hospitals, commissions and residents' apps rely on
//! (`CONTRACT.md`); database rows never leave the server as JSON directly.
//! Each type derives `ToSchema` so `/api/openapi.json` is generated from it.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// GB/T 2260 code of this node.
    pub region: String,
    /// `national`, `provincial`, `municipal` or `county`.
    pub tier: String,
    /// Name of the region.
    pub name: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Software version.
    pub version: String,
    /// API URL of the parent node, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A list answer with keyset paging.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemList<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A cross-referenced identifier of a person.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IdentifierView {
    /// Assigning authority (facility code or OID).
    pub system: String,
    /// The identifier.
    pub value: String,
    /// HL7 table 0203 type (`MR`, `NNCHN`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// A person of the demographic index (DID).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    /// Federation-wide EMPI id.
    pub empi_id: String,
    /// Home county (authoritative node for demographics).
    pub home_region: String,
    /// Full name.
    pub name: String,
    /// GB/T 2261.1 sex code (`1` male, `2` female, `0` unknown, `9` not stated).
    pub sex: String,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Citizen ID, masked except for the resident's own view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// GB 3304 ethnicity code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnicity: Option<String>,
    /// Contact phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// County code of the residential address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_region: Option<String>,
    /// `active` or `merged`.
    pub status: String,
    /// The surviving person if this one was merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// Local identifiers.
    pub identifiers: Vec<IdentifierView>,
}

/// One entry of a resident's EHR index.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EhrEntryView {
    /// Entry id.
    pub id: String,
    /// `encounter`, `lab_report`, `immunization`, ...
    pub kind: String,
    /// When it happened (UTC).
    pub occurred_at: NaiveDateTime,
    /// Facility code.
    pub facility: Option<String>,
    /// Node where it was recorded.
    pub source_region: String,
    /// One line for lists.
    pub summary: String,
    /// The indexed document.
    pub document_id: Option<String>,
    /// The indexed encounter.
    pub encounter_id: Option<String>,
}

/// A document's index entry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    /// Document id.
    pub id: String,
    /// The patient.
    pub person: Option<String>,
    /// WS/T 500 or WS/T 483 type code.
    pub r#type: String,
    /// Title.
    pub title: String,
    /// Clinical effective time (UTC).
    pub effective_at: NaiveDateTime,
    /// Authoring facility.
    pub author_facility: Option<String>,
    /// Custodian.
    pub custodian: Option<String>,
    /// Confidentiality code.
    pub confidentiality: String,
    /// SHA-256 of the original bytes.
    pub sha256: String,
    /// Size of the original bytes.
    pub size_bytes: i64,
    /// `current` or `superseded`.
    pub status: String,
}

/// A registered facility.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FacilityView {
    /// Code it sends in MSH-4 / as CDA custodian.
    pub code: String,
    /// Name.
    pub name: String,
    /// `hospital`, `clinic`, ...
    pub kind: String,
    /// Region code.
    pub region: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Registered at (UTC).
    pub created_at: NaiveDateTime,
}

/// `POST /api/v1/facilities` body.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFacilityRequest {
    /// Facility code: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind; defaults to `hospital`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Region; defaults to the node's own.
    #[serde(default)]
    pub region: Option<String>,
}

/// An audit-log entry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the node's log.
    pub seq: i64,
    /// When (UTC).
    pub occurred_at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// Role.
    pub role: Option<String>,
    /// Region of authority.
    pub actor_region: Option<String>,
    /// Facility.
    pub facility: Option<String>,
    /// What was done.
    pub action: String,
    /// To what kind of record.
    pub resource_type: String,
    /// To which record.
    pub resource_id: Option<String>,
    /// About whom (EMPI id).
    pub person: Option<String>,
    /// Why.
    pub purpose: Option<String>,
    /// `success`, `denied` or `error`.
    pub outcome: String,
    /// HTTP status answered.
    pub http_status: Option<i32>,
    /// Request id.
    pub request_id: Option<String>,
    /// Free text.
    pub detail: Option<String>,
}

/// RFC 9457 problem details, the body of every error answer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type.
    pub r#type: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What exactly was wrong.
    pub detail: String,
    /// Field-level errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// One field that was wrong.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldProblem {
    /// Name of the field or query parameter.
    pub field: String,
    /// What was wrong with it.
    pub message: String,
}
