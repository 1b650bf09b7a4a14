//! CDA R2 in and out for RHIP: hospitals and nodes exchange clinical documents in the
//! style of WS/T 500 (shared EMR documents) and WS/T 483 (shared EHR documents).
//!
//! - [`read`] turns untrusted bytes into a [`ClinicalDocument`] or a [`Rejected`] whose
//!   problems name the element path (`/ClinicalDocument/recordTarget/patientRole/id`) and
//!   what was expected. Hostile input is stopped by [`Limits`] and by refusing DTDs.
//! - [`validate`] checks a read document against the [`registry`] of document types and
//!   the header rules (patient, author, custodian, type, times, citizen ID).
//! - [`write`] builds CDA documents from plain input structs: a person's EHR summary and
//!   an EMR document for one encounter.
//!
//! **Architecture Invariant:** this crate does no I/O and knows no database; it turns bytes
//! into plain data and plain data into bytes. The registry and nothing else is compiled in
//! from `schemas/documents/`. No input makes it panic.

#![deny(missing_docs)]

mod limits;
mod model;
mod problem;
mod read;
pub mod registry;
mod time;
mod validate;
pub mod write;
mod xml;

pub use limits::Limits;
pub use model::{
    Address, AddressPart, Author, Body, ClinicalDocument, Code, Diagnosis, Encounter, Entry, Immunization, InstanceId,
    Interval, Medication, NonXmlBody, Observation, Organization, Patient, PersonName, Quantity, ReferenceRange,
    RelatedDocument, Section, Telecom, Ts, Value,
};
pub use problem::{Problem, Rejected};
pub use read::{read, ICD10_CODE_SYSTEMS, IMMUNIZATIONS_SECTION};
pub use time::{Precision, Timestamp};
pub use validate::{validate, GBT2261_1_OID, HL7_ADMINISTRATIVE_GENDER_OID};
