//! Domain types and rules of RHIP, the regional health information platform: regions and
//! tiers (GB/T 2260), citizen IDs (GB 11643), persons and identifiers, coded values
//! (GB/T 2261, GB 3304, GB/T 4761, WS 364), record kinds (WS/T 500), roles, facilities
//! and the hybrid logical clock.
//!
//! **Architecture Invariant:** this crate does no I/O. Reference tables are compiled in
//! from `schemas/reference/` and parsed lazily once; the only outside state read is the
//! system clock (for "today" and [`HybridClock::now`]). Every other crate depends on this
//! one, and this one depends on none of them.
//!
//! Everything public is re-exported at the crate root; the modules are an implementation
//! detail.

mod cipher;
mod citizen_id;
mod consent;
mod facility;
mod hlc;
mod json_text;
mod names;
mod person;
mod record;
mod reference;
mod region;
mod role;
mod value_domain;

pub use cipher::{normalize_name, CipherError, FieldCipher};
pub use citizen_id::{check_against_id, CitizenId, CitizenIdError, Discrepancy};
pub use consent::{decide as consent_verdict, ConsentCategory, ConsentError, Restrictions, Verdict, Viewer};
pub use facility::{FacilityCode, FacilityCodeError, FacilityKind, FacilityStatus, FACILITY_CODE_MAX_CHARS};
pub use hlc::{HlcError, HlcTimestamp, HybridClock, HLC_MAX_LOGICAL, HLC_MAX_WALL_MS};
pub use json_text::JsonText;
pub use names::UnknownNameError;
pub use person::{
    home_region_for, new_id, EmpiId, FieldError, Identifier, IdentifierError, PersonDemographics,
    IDENTIFIER_PART_MAX_CHARS, NAME_MAX_CHARS,
};
pub use record::{
    emr_document_type, emr_document_type_by_template, emr_document_types, health_oid, health_oids, DocumentType,
    EhrEntryKind, EncounterType, HealthOid, OID_CITIZEN_ID, OID_DOCUMENT_TYPE_CODE_SYSTEM,
};
pub use region::{RegionCode, RegionError, Tier};
pub use role::{Role, RoleError};
pub use value_domain::{
    value_domain, value_domains, DomainEntry, Ethnicity, FamilyRelationship, IdentityDocumentType, MaritalStatus, Sex,
    ValueDomain, ValueDomainError,
};
