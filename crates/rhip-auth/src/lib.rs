//! Identity and authority for RHIP users.
//!
//! Tokens are JWTs signed by a node's Ed25519 key ([`keys`]); [`claims`]
//! says who the bearer is and over what; [`permissions`] is the one table of
//! what each role may do; [`jws`] carries statements between nodes (batch
//! manifests, receipts, key announcements) verified against [`PeerKeys`], each
//! peer key bound to one region. Turning a principal into a storage scope happens in
//! the server, so this crate does no I/O and knows no database.
//!
//! Architecture invariant: the permission table lives only in
//! [`permissions::permits`]; handlers ask it, they never compare roles.

pub mod claims;
pub mod jws;
pub mod keys;
pub mod passwords;
pub mod permissions;
pub mod secrets;

pub use claims::{Claims, ClaimsError};
pub use jws::{JwsError, KeyAnnouncement, PeerKeys, Verified, KEY_ANNOUNCEMENT_TYPE};
pub use keys::{key_id_of, public_key_from_pem, public_key_to_pem, KeyError, NodeKey, TokenError, Verifier};
pub use passwords::{check_strength, hash_password, verify_nothing, verify_password, PasswordError};
pub use permissions::{permits, Permission};
pub use secrets::{retire_keys, rotate_key_file, DataKeyError, DataKeyRing, DataKeys, KeyReloader, Rotated};
