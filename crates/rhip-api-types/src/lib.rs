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
    /// Primary care (HL7 PD1), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_care: Option<PrimaryCareView>,
    /// Whom to contact (HL7 NK1).
    #[serde(default)]
    pub contacts: Vec<ContactView>,
    /// Insurance (HL7 IN1).
    #[serde(default)]
    pub coverages: Vec<CoverageView>,
}

/// A person's primary care.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PrimaryCareView {
    /// Primary care facility, `name (id)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    /// Primary care provider, `name (id)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A contact person of a resident (next of kin).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ContactView {
    /// Name.
    pub name: String,
    /// Relationship code (GB/T 4761 or HL7 table 0063) or text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// An insurance of a resident.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct CoverageView {
    /// Plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Insurer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Policy or member number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// An allergy of a resident.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AllergyView {
    /// Id.
    pub id: String,
    /// Allergen code, or its text when the facility sent no code.
    pub code: String,
    /// Coding system of the code.
    pub system: Option<String>,
    /// Allergen text.
    pub display: Option<String>,
    /// Severity (HL7 table 0128: `SV` severe, `MO` moderate, `MI` mild) or text.
    pub severity: Option<String>,
    /// Reaction.
    pub reaction: Option<String>,
    /// Facility that reported it last.
    pub facility: String,
    /// When it was reported last (UTC).
    pub recorded_at: NaiveDateTime,
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
    /// `emr` (WS/T 500) or `ehr` (WS/T 483).
    pub kind: String,
    /// Code system of the type code.
    pub type_system: Option<String>,
    /// The encounter it documents.
    pub encounter: Option<String>,
    /// The CDA `id` (`root|extension`).
    pub cda_id: Option<String>,
    /// The CDA `setId` (`root|extension`) shared by the versions of one document.
    pub set_id: Option<String>,
    /// The CDA `versionNumber`.
    pub version_number: Option<i64>,
    /// The document this version replaced.
    pub supersedes: Option<String>,
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
    /// The node where it happened, when that was another node than this one
    /// (entries about a person travel to the person's home node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
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

/// A received HL7 message or document and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmissionView {
    /// Submission id (also MSH-10 of the ACK).
    pub id: String,
    /// `mllp` or `http`.
    pub channel: String,
    /// `hl7v2`.
    pub kind: String,
    /// Sending facility (MSH-4).
    pub sending_facility: String,
    /// Message control id (MSH-10).
    pub control_id: String,
    /// Message type, e.g. `ADT^A01`.
    pub message_type: Option<String>,
    /// HL7 version.
    pub version: Option<String>,
    /// When it arrived (UTC).
    pub received_at: NaiveDateTime,
    /// `AA`, `AE` or `AR`.
    pub outcome: String,
    /// What was wrong, one entry per ERR segment of the ACK.
    pub errors: Vec<serde_json::Value>,
    /// The person it was about.
    pub person: Option<String>,
    /// Site-specific Z-segments the message carried, kept verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub z_segments: Vec<String>,
}

/// Counts of a region and its subtree.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsSummary {
    /// The region counted.
    pub region: String,
    /// Active persons whose home region lies in the subtree.
    pub persons: i64,
    /// Encounters at facilities of the subtree.
    pub encounters: i64,
    /// Documents held by facilities of the subtree.
    pub documents: i64,
    /// EHR entries of the subtree's residents.
    pub ehr_entries: i64,
    /// Submissions accepted from facilities of the subtree.
    pub submissions_accepted: i64,
    /// Submissions refused (AE, AR) from facilities of the subtree.
    pub submissions_rejected: i64,
}

/// A value domain as this node validates against it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValueDomainView {
    /// Domain identifier (`GB/T 2261.2`, `CV02.01.101`, ...).
    pub domain: String,
    /// Its name.
    pub name: String,
    /// The version in force: a published label, or `embedded` for the table built into the software.
    pub version: String,
    /// `published` (received from the national node) or `embedded`.
    pub source: String,
    /// Number of codes.
    pub codes: usize,
    /// Region that published it (`000000`), for published versions.
    pub published_by: Option<String>,
    /// When it was published.
    pub published_at: Option<NaiveDateTime>,
}

/// This node's federation links, as `GET /api/v1/federation/status` shows them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FederationStatus {
    /// This node's region.
    pub region: String,
    /// What this node keeps, per data class (`full`, `index`, `none`).
    pub retention: serde_json::Value,
    /// One entry per peer (parent first).
    pub links: Vec<LinkStatus>,
    /// Changes received here that failed a business rule and wait in the
    /// dead-letter store (`rhip federation retry` re-applies them).
    pub dead_letters: i64,
}

/// One federation link, both directions.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkStatus {
    /// The peer's region.
    pub peer: String,
    /// `parent` or `child`.
    pub direction: String,
    /// The peer's federation URL.
    pub url: Option<String>,
    /// Changes waiting to reach the peer: not yet cut, or in batches not yet acknowledged.
    pub pending_changes: i64,
    /// Batches cut and not acknowledged.
    pub unacked_batches: i64,
    /// Highest batch sequence sent to the peer.
    pub last_sent_seq: i64,
    /// Highest batch sequence the peer acknowledged with a valid receipt.
    pub last_acked_seq: i64,
    /// Age in seconds of the oldest change still waiting for this peer (0 when none).
    pub lag_seconds: i64,
    /// Consecutive failed pushes.
    pub failures: i64,
    /// The last push error, until the next success.
    pub last_error: Option<String>,
    /// When a batch was last sent.
    pub last_sent_at: Option<NaiveDateTime>,
    /// When the peer last acknowledged a batch.
    pub last_acked_at: Option<NaiveDateTime>,
    /// Changes the peer parked in its dead-letter store, per its receipts.
    pub parked_at_peer: i64,
    /// Highest batch sequence received from the peer and applied here.
    pub last_received_seq: i64,
    /// Batches kept for resending (unacknowledged, or acknowledged and not
    /// yet pruned by the nightly reconciliation).
    pub kept_batches: i64,
}

/// An encounter (visit or stay) with its diagnoses.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EncounterView {
    /// Encounter id.
    pub id: String,
    /// Facility code.
    pub facility: String,
    /// The facility's visit number.
    pub visit_number: String,
    /// `outpatient`, `inpatient`, `emergency`, ...
    pub encounter_type: String,
    /// `planned`, `in_progress`, `finished`, `cancelled`.
    pub status: String,
    /// Admission or visit start (UTC).
    pub admitted_at: Option<NaiveDateTime>,
    /// Discharge or visit end (UTC).
    pub discharged_at: Option<NaiveDateTime>,
    /// Department.
    pub department: Option<String>,
    /// Current location (point of care/room/bed).
    pub location: Option<String>,
    /// Location before the last transfer.
    pub prior_location: Option<String>,
    /// Attending clinician.
    pub attending: Option<String>,
    /// Why the patient came (HL7 PV2-3).
    #[serde(default)]
    pub admit_reason: Option<String>,
    /// Diagnoses.
    pub diagnoses: Vec<DiagnosisView>,
}

/// A coded diagnosis.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DiagnosisView {
    /// Coding system, e.g. `ICD10`.
    pub system: String,
    /// Code.
    pub code: String,
    /// Text.
    pub display: Option<String>,
    /// Admitting (`A`), working (`W`) or final (`F`).
    pub r#type: Option<String>,
    /// When diagnosed (UTC).
    pub diagnosed_at: Option<NaiveDateTime>,
}

/// A lab or exam result.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ObservationView {
    /// Result id.
    pub id: String,
    /// Report (order) it belongs to.
    pub report: Option<String>,
    /// Coding system of the test, e.g. `LN`.
    pub system: String,
    /// Test code.
    pub code: String,
    /// Test name.
    pub display: Option<String>,
    /// Value as sent.
    pub value: Option<String>,
    /// HL7 value type.
    pub value_type: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Reference range.
    pub reference_range: Option<String>,
    /// Abnormal flags (`H`, `L`, `N`, ...).
    pub abnormal_flag: Option<String>,
    /// Result status (`F` final, `C` corrected, `P` preliminary).
    pub status: String,
    /// When observed (UTC).
    pub observed_at: Option<NaiveDateTime>,
}

/// A person merge.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MergeView {
    /// Merge id (to undo it).
    pub id: String,
    /// The person that remains.
    pub survivor: String,
    /// The person merged into it.
    pub merged: String,
    /// Who asked for it.
    pub actor: String,
    /// When (UTC).
    pub merged_at: NaiveDateTime,
    /// When it was undone (UTC).
    pub undone_at: Option<NaiveDateTime>,
}

/// A person-linking decision left to a human (possible duplicate).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewItemView {
    /// Item id.
    pub id: String,
    /// The person created or linked.
    pub person: String,
    /// The existing person it may be the same as.
    pub candidate: Option<String>,
    /// Why.
    pub reason: String,
    /// The submission that raised it.
    pub submission: Option<String>,
    /// When (UTC).
    pub created_at: NaiveDateTime,
}

/// `POST /auth/register` body: a resident enrols with the one-time code the
/// home county issued and chooses a password.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The resident's citizen ID (18 characters).
    pub id_number: String,
    /// The one-time enrolment code (groups of letters and digits; dashes
    /// and case do not matter).
    pub enrolment_code: String,
    /// The new password: at least 10 characters and hard to guess.
    pub password: String,
}

/// `POST /auth/register` answer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    /// The resident's EMPI id.
    pub empi_id: String,
}

/// `POST /auth/login` body.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Citizen ID.
    pub id_number: String,
    /// Password.
    pub password: String,
}

/// `POST /auth/refresh` body (and optionally `POST /auth/logout`).
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST /auth/password` body: a resident changes their password.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password in use now.
    pub current_password: String,
    /// The new one (same strength rule as at enrolment).
    pub new_password: String,
}

/// One category a resident restricts, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRuleView {
    /// `mental_health`, `infectious_disease` or `reproductive_health`.
    pub category: String,
    /// Kept in the home county: not sent up, withheld at every other node
    /// except from the facility that recorded it.
    #[serde(default)]
    pub leave_home: bool,
    /// Withheld from clinicians and systems of other facilities than the one
    /// that recorded it.
    #[serde(default)]
    pub other_facilities: bool,
}

/// `PUT /api/v1/me/consent` body: the whole consent (it replaces the last).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The categories restricted; an empty list lifts every restriction.
    pub restrictions: Vec<ConsentRuleView>,
}

/// A resident's consent as `GET`/`PUT /api/v1/me/consent` answer it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    /// The resident's EMPI id.
    pub person: String,
    /// The categories restricted (none: nothing is).
    pub restrictions: Vec<ConsentRuleView>,
    /// The categories that can be restricted.
    pub categories: Vec<String>,
    /// When the resident last decided (absent: never).
    pub updated_at: Option<NaiveDateTime>,
}

/// Tokens answered by login and refresh.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// Short-lived bearer token for the API.
    pub access_token: String,
    /// Single-use token to get the next pair; a replayed one ends the login.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}
