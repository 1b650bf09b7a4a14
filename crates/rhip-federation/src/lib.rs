//! The federation protocol of RHIP, without I/O: what one node sends another and how
//! each side checks it (DESIGN §6).
//!
//! - [`wire`]: the change records a batch carries and their byte encoding.
//! - [`manifest`]: signed batch manifests (JWS `rhip-batch+jws`) binding the payload
//!   digest and the per-link hash chain, their verification with stable refusal codes,
//!   sequencing against the receiver's stored state, signed receipts
//!   (`rhip-receipt+jws`) and schema-version negotiation.
//! - [`retention`]: what each tier keeps of each data class (`full`, `index`, `none`).
//! - [`routing`]: where a change goes next: up as far as the parents' policies want it,
//!   down toward the person's home county, never back the way it came.
//! - [`ordering`]: which of two concurrent demographic updates wins.
//!
//! **Architecture Invariant:** this crate does no I/O, knows no database and no HTTP
//! (it depends on `rhip-core` and `rhip-auth` only). The server stores link state and
//! change records and calls these functions with them; everything here is a pure
//! function of its arguments, so the protocol can be tested without nodes.
//! The JSON shapes of manifests and receipts are described in `schemas/federation/`,
//! and a test keeps the two in step.

pub mod manifest;
pub mod ordering;
pub mod retention;
pub mod routing;
pub mod wire;

#[cfg(test)]
mod schema_tests;

pub use manifest::{
    batch_digest, check_sequence, negotiate, seal, sign_receipt, verify_batch, verify_receipt, Batch, BatchRefusal,
    Hello, Manifest, Parked, Receipt, ReceiptStatus, SealError, Sequencing, VerifiedBatch, VersionMismatch, GENESIS,
    MANIFEST_TYPE, RECEIPT_TYPE, SCHEMA_VERSION, SCHEMA_VERSIONS,
};
pub use ordering::{wins, Contender};
pub use retention::{DataClass, Keep, RetentionOverride, RetentionPolicy};
pub use routing::{is_destination, route, Links, Route, RouteInfo};
pub use wire::{Payload, WireChange, WireError, CONTENT_KEY, DEFAULT_MAX_CHANGES};
