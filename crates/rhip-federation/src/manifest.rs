//! Signed batches and receipts: what makes a batch trustworthy after it has left the
//! TLS connection it came over (DESIGN §6, §7).
//!
//! The sender [`seal`]s a [`Payload`] into a [`Batch`]: payload bytes plus a
//! [`Manifest`] signed as a JWS (`rhip-batch+jws`) that binds the payload's SHA-256, the
//! link (source, target), the per-link sequence number and the digest of the previous
//! batch on the link. The digest of a batch is the SHA-256 of its manifest JWS; since the
//! manifest binds the payload digest, it covers the whole batch, and the next manifest's
//! `prev_digest` chains to it, so a dropped, reordered or altered batch breaks the chain.
//!
//! The receiver [`verify_batch`]es (signature by a key of the expected source, link,
//! schema version, digest, count), compares with its stored link state
//! ([`check_sequence`]), applies the batch in one transaction and answers with a signed
//! [`Receipt`] (`rhip-receipt+jws`), which the sender checks with [`verify_receipt`].
//! Refusals carry a stable machine [`BatchRefusal::code`] and a message for people.

use chrono::{DateTime, Utc};
use rhip_auth::{JwsError, NodeKey, PeerKeys, TokenError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::wire::{is_region_code, is_sha256_hex, Payload, WireError};

/// The schema version this node writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Every schema version this node reads, oldest first.
pub const SCHEMA_VERSIONS: &[u32] = &[1];
/// `prev_digest` of the first batch on a link (sequence 1): 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// JWS `typ` of a batch manifest.
pub const MANIFEST_TYPE: &str = "rhip-batch+jws";
/// JWS `typ` of a receipt.
pub const RECEIPT_TYPE: &str = "rhip-receipt+jws";

/// The signed description of one batch (the claims of the manifest JWS). Its JSON shape
/// is `schemas/federation/batch-manifest.schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version of manifest and payload ([`SCHEMA_VERSION`] when written here).
    pub schema_version: u32,
    /// Id of the batch (UUIDv7 text), for logs, receipts and audit.
    pub batch_id: String,
    /// Region of the sending node.
    pub source: String,
    /// Region of the receiving node.
    pub target: String,
    /// Position on the link source → target, from 1 without gaps.
    pub seq: u64,
    /// Digest ([`batch_digest`]) of the batch before this one on the link; [`GENESIS`]
    /// for sequence 1.
    pub prev_digest: String,
    /// Number of changes in the payload.
    pub record_count: u64,
    /// SHA-256 of the payload bytes, lowercase hex.
    pub payload_sha256: String,
    /// When the batch was sealed (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

/// A batch as it travels: the manifest JWS (HTTP header `X-RHIP-Manifest`) and the
/// payload bytes (the request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The batch id the manifest carries (for the sender's records).
    pub batch_id: String,
    /// The signed manifest, compact JWS.
    pub manifest_jws: String,
    /// The payload bytes whose SHA-256 the manifest holds.
    pub payload: Vec<u8>,
}

impl Batch {
    /// The batch digest, which the next batch on the link holds as `prev_digest`.
    pub fn digest(&self) -> String {
        batch_digest(&self.manifest_jws)
    }
}

/// Digest of a batch: lowercase hex SHA-256 of its manifest JWS text. The manifest binds
/// the payload digest, so this covers the whole batch.
pub fn batch_digest(manifest_jws: &str) -> String {
    sha256_hex(manifest_jws.as_bytes())
}

/// Lowercase hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a batch could not be sealed: a mistake of the caller, never of a peer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// An argument does not fit the protocol (region codes, sequence, chain digest).
    #[error("cannot seal batch: {0}")]
    Invalid(String),
    /// Signing failed.
    #[error("cannot seal batch: {0}")]
    Sign(#[from] TokenError),
}

/// Seals `payload` into batch number `seq` on the link `source` → `target`, chained to
/// the batch before it by `prev_digest` ([`GENESIS`] for sequence 1), signed with `key`.
pub fn seal(
    key: &NodeKey,
    source: &str,
    target: &str,
    seq: u64,
    prev_digest: &str,
    payload: &Payload,
) -> Result<Batch, SealError> {
    for (name, region) in [("source", source), ("target", target)] {
        if !is_region_code(region) {
            return Err(SealError::Invalid(format!("{name} must be a 6-digit region code, got {region:?}")));
        }
    }
    if source == target {
        return Err(SealError::Invalid(format!("source and target are both {source}")));
    }
    if seq == 0 {
        return Err(SealError::Invalid("sequence numbers start at 1".into()));
    }
    if !is_sha256_hex(prev_digest) {
        return Err(SealError::Invalid(format!("prev_digest must be 64 lowercase hex digits, got {prev_digest:?}")));
    }
    if (seq == 1) != (prev_digest == GENESIS) {
        return Err(SealError::Invalid(format!(
            "batch {seq} must chain to {}",
            if seq == 1 { "GENESIS (64 zeros)" } else { "the previous batch's digest, not GENESIS" }
        )));
    }
    let bytes = payload.encode();
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        batch_id: rhip_core::new_id().to_string(),
        source: source.to_owned(),
        target: target.to_owned(),
        seq,
        prev_digest: prev_digest.to_owned(),
        record_count: payload.changes.len() as u64,
        payload_sha256: sha256_hex(&bytes),
        created_at: Utc::now(),
    };
    let manifest_jws = key.sign_jws(MANIFEST_TYPE, &manifest)?;
    Ok(Batch { batch_id: manifest.batch_id, manifest_jws, payload: bytes })
}

/// Why a batch (or a receipt) was refused. [`code`](Self::code) is for machines (the
/// problem body, metrics, audit); the message is for the operators of both nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchRefusal {
    /// The signature does not verify: altered in transit or forged.
    #[error("{what} signature does not verify: it was altered or not signed by the key it names")]
    BadSignature {
        /// `manifest` or `receipt`.
        what: &'static str,
    },
    /// Signed with a key that is not trusted for the expected peer.
    #[error("{}", unknown_key_message(kid, expected, belongs_to.as_deref()))]
    UnknownKey {
        /// The key id in the JWS header.
        kid: String,
        /// The region whose key was expected.
        expected: String,
        /// The region the key is trusted for, when it is known but for another region.
        belongs_to: Option<String>,
    },
    /// The manifest names another source than the link it arrived on.
    #[error("batch is from {found} but arrived on the link from {expected}")]
    WrongSource {
        /// The link's source.
        expected: String,
        /// The manifest's source.
        found: String,
    },
    /// The manifest is addressed to another node.
    #[error("batch is addressed to {found}, but this node is {expected}")]
    WrongTarget {
        /// This node's region.
        expected: String,
        /// The manifest's target.
        found: String,
    },
    /// A schema version this node does not read.
    #[error("{}", VersionMismatch { ours: ours.clone(), theirs: vec![*theirs] })]
    Version {
        /// The version of the batch or receipt.
        theirs: u32,
        /// The versions this node reads.
        ours: Vec<u32>,
    },
    /// The payload bytes are not those the manifest signed.
    #[error("payload SHA-256 is {actual} but the manifest declares {declared}: the payload was altered or truncated")]
    Digest {
        /// The manifest's `payload_sha256`.
        declared: String,
        /// The SHA-256 of the bytes received.
        actual: String,
    },
    /// The payload holds another number of changes than the manifest declares.
    #[error("{}", count_message(*declared, *actual))]
    Count {
        /// The manifest's `record_count`.
        declared: u64,
        /// Changes found; `None` when there were more than declared (reading stopped).
        actual: Option<u64>,
    },
    /// A receipt for another batch than the one sent.
    #[error("receipt is not for the batch sent: {0}")]
    WrongBatch(String),
    /// Not a manifest (or receipt) or payload of this protocol at all.
    #[error("{0}")]
    Malformed(String),
}

fn unknown_key_message(kid: &str, expected: &str, belongs_to: Option<&str>) -> String {
    match belongs_to {
        Some(region) => {
            format!("signed with key {kid:?} of region {region}, which is not a key of {expected}")
        }
        None => format!("signed with key {kid:?}, which this node does not trust for {expected}"),
    }
}

fn count_message(declared: u64, actual: Option<u64>) -> String {
    match actual {
        Some(actual) => format!("payload holds {actual} changes but the manifest declares {declared}"),
        None => format!("payload holds more than the {declared} changes the manifest declares"),
    }
}

impl BatchRefusal {
    /// Stable machine code: `bad_signature`, `unknown_key`, `wrong_source`,
    /// `wrong_target`, `version`, `digest`, `count`, `wrong_batch` (receipts only) or
    /// `malformed`.
    pub fn code(&self) -> &'static str {
        match self {
            BatchRefusal::BadSignature { .. } => "bad_signature",
            BatchRefusal::UnknownKey { .. } => "unknown_key",
            BatchRefusal::WrongSource { .. } => "wrong_source",
            BatchRefusal::WrongTarget { .. } => "wrong_target",
            BatchRefusal::Version { .. } => "version",
            BatchRefusal::Digest { .. } => "digest",
            BatchRefusal::Count { .. } => "count",
            BatchRefusal::WrongBatch(_) => "wrong_batch",
            BatchRefusal::Malformed(_) => "malformed",
        }
    }

    /// The message for people (the same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Verifies a signed statement of type `typ` from `expected` and returns its claims as
/// JSON, with the schema version checked before the claims are read into their type (so
/// a newer peer gets "version" rather than "unknown field").
fn verify_statement(
    peers: &PeerKeys,
    expected: &str,
    what: &'static str,
    typ: &str,
    jws: &str,
) -> Result<serde_json::Value, BatchRefusal> {
    let verified = peers.verify_jws::<serde_json::Value>(jws, typ).map_err(|e| match e {
        JwsError::BadSignature => BatchRefusal::BadSignature { what },
        JwsError::UnknownKey(kid) => BatchRefusal::UnknownKey { kid, expected: expected.to_owned(), belongs_to: None },
        JwsError::WrongType { .. } | JwsError::Malformed(_) | JwsError::Claims(_) => {
            BatchRefusal::Malformed(format!("{what}: {e}"))
        }
    })?;
    if verified.region != expected {
        return Err(BatchRefusal::UnknownKey {
            kid: verified.kid,
            expected: expected.to_owned(),
            belongs_to: Some(verified.region),
        });
    }
    let claims = verified.claims;
    let version = claims
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .and_then(|version| u32::try_from(version).ok())
        .ok_or_else(|| BatchRefusal::Malformed(format!("{what}: schema_version is missing or not a number")))?;
    if !SCHEMA_VERSIONS.contains(&version) {
        return Err(BatchRefusal::Version { theirs: version, ours: SCHEMA_VERSIONS.to_vec() });
    }
    Ok(claims)
}

/// A batch that passed [`verify_batch`]: its manifest, its decoded changes and its digest
/// (to store as the link's last digest once applied).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedBatch {
    /// The verified manifest.
    pub manifest: Manifest,
    /// The changes, exactly `manifest.record_count` of them.
    pub payload: Payload,
    /// [`batch_digest`] of the manifest JWS.
    pub digest: String,
}

/// Verifies a batch received on the link from `expected_source` by this node `me`:
/// signature by a key trusted for `expected_source` (a key of another region is refused
/// even if trusted for that region), source and target, schema version, payload digest,
/// record count. The sequence and chain are not checked here: compare the manifest with
/// the stored link state using [`check_sequence`].
pub fn verify_batch(
    peers: &PeerKeys,
    expected_source: &str,
    me: &str,
    manifest_jws: &str,
    payload: &[u8],
) -> Result<VerifiedBatch, BatchRefusal> {
    let claims = verify_statement(peers, expected_source, "manifest", MANIFEST_TYPE, manifest_jws)?;
    let manifest: Manifest = serde_json::from_value(claims)
        .map_err(|e| BatchRefusal::Malformed(format!("manifest claims do not fit schema version 1: {e}")))?;
    if manifest.source != expected_source {
        return Err(BatchRefusal::WrongSource { expected: expected_source.to_owned(), found: manifest.source });
    }
    if manifest.target != me {
        return Err(BatchRefusal::WrongTarget { expected: me.to_owned(), found: manifest.target });
    }
    for (name, digest) in [("prev_digest", &manifest.prev_digest), ("payload_sha256", &manifest.payload_sha256)] {
        if !is_sha256_hex(digest) {
            return Err(BatchRefusal::Malformed(format!(
                "manifest {name} must be 64 lowercase hex digits, got {digest:?}"
            )));
        }
    }
    if manifest.seq == 0 {
        return Err(BatchRefusal::Malformed("manifest seq must be 1 or more".into()));
    }
    let actual = sha256_hex(payload);
    if actual != manifest.payload_sha256 {
        return Err(BatchRefusal::Digest { declared: manifest.payload_sha256, actual });
    }
    // Read at most one change more than declared, so a lying count costs nothing.
    let limit = usize::try_from(manifest.record_count).unwrap_or(usize::MAX).saturating_add(1);
    let decoded = Payload::decode(payload, limit).map_err(|e| match e {
        WireError::TooMany { .. } => BatchRefusal::Count { declared: manifest.record_count, actual: None },
        other => BatchRefusal::Malformed(other.to_string()),
    })?;
    let count = decoded.changes.len() as u64;
    if count != manifest.record_count {
        return Err(BatchRefusal::Count { declared: manifest.record_count, actual: Some(count) });
    }
    Ok(VerifiedBatch { manifest, payload: decoded, digest: batch_digest(manifest_jws) })
}

/// Where a verified batch stands against the receiver's stored state of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequencing {
    /// The next batch, chained to the last one: apply it.
    Next,
    /// Already received (sequence at or below the last one): acknowledge it again with
    /// status `duplicate` and apply nothing. A receiver that keeps the digest of every
    /// applied batch can also compare it with this batch's digest: a different batch
    /// under an old sequence means the sender's history forked.
    Replay,
    /// Batches are missing: refuse, telling the sender which sequence to send.
    Gap {
        /// The sequence the receiver expects next.
        expected: u64,
    },
    /// The right sequence, but chained to another batch than the last one received: the
    /// sender's history differs (a lost or forged batch); refuse and alert.
    BrokenChain {
        /// The digest of the last batch the receiver applied.
        expected_digest: String,
    },
}

/// Compares a verified manifest with the receiver's last applied batch on its link
/// (`last_seq` 0 and `last_digest` [`GENESIS`] when none was received yet).
pub fn check_sequence(last_seq: u64, last_digest: &str, manifest: &Manifest) -> Sequencing {
    let expected = last_seq.saturating_add(1);
    if manifest.seq <= last_seq {
        Sequencing::Replay
    } else if manifest.seq > expected {
        Sequencing::Gap { expected }
    } else if manifest.prev_digest != last_digest {
        Sequencing::BrokenChain { expected_digest: last_digest.to_owned() }
    } else {
        Sequencing::Next
    }
}

/// How the receiver handled a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    /// Applied now, in one transaction.
    Applied,
    /// Received before (a replay); nothing applied this time.
    Duplicate,
}

/// A change the receiver kept aside instead of applying, and why (see
/// [`crate::WireChange::problems`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parked {
    /// The change's id.
    pub change_id: String,
    /// Why it was not applied, for the operators of both nodes.
    pub reason: String,
}

/// The receiver's signed acknowledgement of one batch (claims of the receipt JWS). Its
/// JSON shape is `schemas/federation/batch-receipt.schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Schema version of the receipt.
    pub schema_version: u32,
    /// The batch's id.
    pub batch_id: String,
    /// The batch's source (the node the receipt goes back to).
    pub source: String,
    /// The receiver, which signs the receipt.
    pub target: String,
    /// The batch's sequence on the link.
    pub seq: u64,
    /// The batch's digest ([`batch_digest`]).
    pub batch_digest: String,
    /// Applied now or seen before.
    pub status: ReceiptStatus,
    /// Changes applied (0 for a duplicate).
    pub applied: u64,
    /// Changes kept aside, with reasons.
    pub parked: Vec<Parked>,
    /// When the receiver got the batch.
    pub received_at: DateTime<Utc>,
}

impl Receipt {
    /// A receipt for a verified batch, stamped now; the receiver fills `applied` and
    /// `parked` as its transaction went.
    pub fn for_batch(batch: &VerifiedBatch, status: ReceiptStatus, applied: u64, parked: Vec<Parked>) -> Receipt {
        Receipt {
            schema_version: SCHEMA_VERSION,
            batch_id: batch.manifest.batch_id.clone(),
            source: batch.manifest.source.clone(),
            target: batch.manifest.target.clone(),
            seq: batch.manifest.seq,
            batch_digest: batch.digest.clone(),
            status,
            applied,
            parked,
            received_at: Utc::now(),
        }
    }
}

/// Signs a receipt with the receiver's key.
pub fn sign_receipt(key: &NodeKey, receipt: &Receipt) -> Result<String, TokenError> {
    key.sign_jws(RECEIPT_TYPE, receipt)
}

/// Verifies, at the sender, the receipt for the batch it sent to `expected_signer_region`
/// (sequence `expected_seq`, digest `expected_digest`): signed by a key of that region,
/// a schema version this node reads, issued by the batch's target and for that very
/// batch.
pub fn verify_receipt(
    peers: &PeerKeys,
    expected_signer_region: &str,
    jws: &str,
    expected_digest: &str,
    expected_seq: u64,
) -> Result<Receipt, BatchRefusal> {
    let claims = verify_statement(peers, expected_signer_region, "receipt", RECEIPT_TYPE, jws)?;
    let receipt: Receipt = serde_json::from_value(claims)
        .map_err(|e| BatchRefusal::Malformed(format!("receipt claims do not fit schema version 1: {e}")))?;
    if receipt.target != expected_signer_region {
        return Err(BatchRefusal::WrongBatch(format!(
            "it is issued for target {} but signed by {expected_signer_region}",
            receipt.target
        )));
    }
    if receipt.seq != expected_seq {
        return Err(BatchRefusal::WrongBatch(format!(
            "it acknowledges batch {} instead of {expected_seq}",
            receipt.seq
        )));
    }
    if receipt.batch_digest != expected_digest {
        return Err(BatchRefusal::WrongBatch(format!(
            "it acknowledges digest {} instead of {expected_digest} (same sequence, different batch)",
            receipt.batch_digest
        )));
    }
    Ok(receipt)
}

/// No schema version both nodes speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common federation schema version: this node speaks {ours:?}, the peer speaks {theirs:?}; upgrade the older node")]
pub struct VersionMismatch {
    /// The versions this node speaks.
    pub ours: Vec<u32>,
    /// The versions the peer speaks.
    pub theirs: Vec<u32>,
}

/// The highest schema version both sides speak, to write batches in after a hello.
pub fn negotiate(ours: &[u32], theirs: &[u32]) -> Result<u32, VersionMismatch> {
    ours.iter()
        .filter(|version| theirs.contains(version))
        .max()
        .copied()
        .ok_or_else(|| VersionMismatch { ours: ours.to_vec(), theirs: theirs.to_vec() })
}

/// The answer of `GET /federation/v1/hello`: who the node is and what it speaks, so a
/// peer can negotiate a schema version and see which keys to expect before sending.
///
/// Unknown fields are accepted on purpose: a newer peer's hello must still be
/// read, so that the version negotiation can say what each side speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The node's region.
    pub region: String,
    /// The node's tier (`national`, `provincial`, `municipal`, `county`).
    pub tier: String,
    /// The schema versions it reads ([`SCHEMA_VERSIONS`]).
    pub schema_versions: Vec<u32>,
    /// Ids of the keys it signs with (more than one during a rotation).
    pub key_ids: Vec<String>,
    /// What it keeps of each data class; a child sends up what this wants.
    pub retention: crate::retention::RetentionPolicy,
    /// Its current key announced by its previous one, during a rotation.
    #[serde(default)]
    pub key_announcement: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireChange;
    use serde_json::json;

    struct Link {
        hangzhou: NodeKey,
        xihu: NodeKey,
        /// Hangzhou's trust: Xihu's key.
        at_hangzhou: PeerKeys,
        /// Xihu's trust: Hangzhou's key.
        at_xihu: PeerKeys,
    }

    fn link() -> Link {
        let hangzhou = NodeKey::generate().unwrap().0;
        let xihu = NodeKey::generate().unwrap().0;
        let mut at_hangzhou = PeerKeys::new();
        at_hangzhou.trust("330106", xihu.public_key());
        let mut at_xihu = PeerKeys::new();
        at_xihu.trust("330100", hangzhou.public_key());
        Link { hangzhou, xihu, at_hangzhou, at_xihu }
    }

    fn payload(count: usize) -> Payload {
        let changes = (0..count)
            .map(|i| WireChange {
                id: format!("c{i}"),
                hlc: "001700000000000.000001".into(),
                origin_region: "330106".into(),
                entity: "encounter".into(),
                entity_id: format!("e{i}"),
                op: "create".into(),
                person_id: Some("p1".into()),
                home_region: Some("330106".into()),
                payload: json!({"visit": i}).into(),
            })
            .collect();
        Payload { changes }
    }

    fn first_batch(link: &Link) -> Batch {
        seal(&link.xihu, "330106", "330100", 1, GENESIS, &payload(3)).unwrap()
    }

    /// Re-signs `batch`'s manifest claims with `key`, after `edit`.
    fn resign(key: &NodeKey, batch: &Batch, edit: impl Fn(&mut serde_json::Value)) -> String {
        use base64::Engine;
        let claims_segment = batch.manifest_jws.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims_segment).unwrap();
        let mut claims: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        edit(&mut claims);
        key.sign_jws(MANIFEST_TYPE, &claims).unwrap()
    }

    #[test]
    fn sealed_batches_verify_at_the_target() {
        let link = link();
        let batch = first_batch(&link);
        let verified =
            verify_batch(&link.at_hangzhou, "330106", "330100", &batch.manifest_jws, &batch.payload).unwrap();
        assert_eq!(verified.manifest.seq, 1);
        assert_eq!(verified.manifest.prev_digest, GENESIS);
        assert_eq!(verified.manifest.record_count, 3);
        assert_eq!(verified.manifest.schema_version, SCHEMA_VERSION);
        assert_eq!(uuid::Uuid::parse_str(&verified.manifest.batch_id).unwrap().get_version_num(), 7);
        assert_eq!(verified.payload, payload(3));
        assert_eq!(verified.digest, batch.digest());
        assert_eq!(batch.digest(), hex::encode(Sha256::digest(batch.manifest_jws.as_bytes())));
        let header = jsonwebtoken::decode_header(&batch.manifest_jws).unwrap();
        assert_eq!(header.typ.as_deref(), Some(MANIFEST_TYPE));
    }

    #[test]
    fn batches_chain_by_digest() {
        let link = link();
        let first = first_batch(&link);
        let second = seal(&link.xihu, "330106", "330100", 2, &first.digest(), &payload(1)).unwrap();
        let verified =
            verify_batch(&link.at_hangzhou, "330106", "330100", &second.manifest_jws, &second.payload).unwrap();
        assert_eq!(check_sequence(1, &first.digest(), &verified.manifest), Sequencing::Next);
        assert_eq!(check_sequence(2, &second.digest(), &verified.manifest), Sequencing::Replay);
        assert_eq!(check_sequence(0, GENESIS, &verified.manifest), Sequencing::Gap { expected: 1 });
        assert_eq!(
            check_sequence(1, GENESIS, &verified.manifest),
            Sequencing::BrokenChain { expected_digest: GENESIS.into() }
        );
        let first_manifest =
            verify_batch(&link.at_hangzhou, "330106", "330100", &first.manifest_jws, &first.payload).unwrap().manifest;
        assert_eq!(check_sequence(0, GENESIS, &first_manifest), Sequencing::Next);
        assert_eq!(check_sequence(5, "ab", &first_manifest), Sequencing::Replay);
    }

    #[test]
    fn seal_refuses_arguments_outside_the_protocol() {
        let link = link();
        let key = &link.xihu;
        let one = payload(1);
        for (source, target, seq, prev) in [
            ("33010", "330100", 1, GENESIS),
            ("330106", "330106", 1, GENESIS),
            ("330106", "330100", 0, GENESIS),
            ("330106", "330100", 2, GENESIS),
            ("330106", "330100", 1, &"a".repeat(64)),
            ("330106", "330100", 2, &"A".repeat(64)),
        ] {
            assert!(matches!(seal(key, source, target, seq, prev, &one), Err(SealError::Invalid(_))), "{source} {seq}");
        }
    }

    #[test]
    fn forged_altered_and_misdirected_batches_are_refused_with_codes() {
        let link = link();
        let batch = first_batch(&link);
        let verify = |peers: &PeerKeys, source: &str, me: &str, jws: &str, payload: &[u8]| {
            verify_batch(peers, source, me, jws, payload).unwrap_err()
        };

        // Payload altered by one byte.
        let mut altered = batch.payload.clone();
        let position = altered.iter().position(|b| *b == b'1').unwrap();
        altered[position] = b'2';
        let refused = verify(&link.at_hangzhou, "330106", "330100", &batch.manifest_jws, &altered);
        assert_eq!(refused.code(), "digest");
        assert!(refused.message().contains("altered"));

        // Manifest altered without re-signing.
        let parts: Vec<&str> = batch.manifest_jws.split('.').collect();
        let other = seal(&link.xihu, "330106", "330100", 1, GENESIS, &payload(2)).unwrap();
        let other_parts: Vec<&str> = other.manifest_jws.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(verify(&link.at_hangzhou, "330106", "330100", &spliced, &other.payload).code(), "bad_signature");

        // A stranger's key.
        let stranger = NodeKey::generate().unwrap().0;
        let forged = seal(&stranger, "330106", "330100", 1, GENESIS, &payload(1)).unwrap();
        let refused = verify(&link.at_hangzhou, "330106", "330100", &forged.manifest_jws, &forged.payload);
        assert_eq!(refused.code(), "unknown_key");

        // A key trusted, but for another region: Binjiang signing as Xihu.
        let binjiang = NodeKey::generate().unwrap().0;
        let mut peers = link.at_hangzhou.clone();
        peers.trust("330108", binjiang.public_key());
        let posing = seal(&binjiang, "330106", "330100", 1, GENESIS, &payload(1)).unwrap();
        let refused = verify(&peers, "330106", "330100", &posing.manifest_jws, &posing.payload);
        assert_eq!(
            refused,
            BatchRefusal::UnknownKey {
                kid: binjiang.key_id().into(),
                expected: "330106".into(),
                belongs_to: Some("330108".into())
            }
        );
        assert!(refused.message().contains("330108"));

        // Binjiang's own batch, arriving on Xihu's link.
        let binjiangs = seal(&binjiang, "330108", "330100", 1, GENESIS, &payload(1)).unwrap();
        assert!(verify_batch(&peers, "330108", "330100", &binjiangs.manifest_jws, &binjiangs.payload).is_ok());
        let relabelled = resign(&link.xihu, &binjiangs, |claims| claims["source"] = json!("330108"));
        assert_eq!(verify(&peers, "330106", "330100", &relabelled, &binjiangs.payload).code(), "wrong_source");

        // Addressed to someone else.
        let refused = verify(&link.at_hangzhou, "330106", "330000", &batch.manifest_jws, &batch.payload);
        assert_eq!(refused.code(), "wrong_target");
        assert!(refused.message().contains("330000") && refused.message().contains("330100"));

        // A receipt is not a manifest.
        let receipt = link.xihu.sign_jws(RECEIPT_TYPE, &json!({"schema_version": 1})).unwrap();
        assert_eq!(verify(&link.at_hangzhou, "330106", "330100", &receipt, &batch.payload).code(), "malformed");
        assert_eq!(verify(&link.at_hangzhou, "330106", "330100", "garbage", &batch.payload).code(), "malformed");

        // Reversed direction: Hangzhou's trust of Xihu does not make Xihu trust itself.
        assert_eq!(
            verify(&link.at_xihu, "330106", "330100", &batch.manifest_jws, &batch.payload).code(),
            "unknown_key"
        );
    }

    #[test]
    fn other_schema_versions_are_refused_naming_both_sides() {
        let link = link();
        let batch = first_batch(&link);
        let newer = resign(&link.xihu, &batch, |claims| {
            claims["schema_version"] = json!(2);
            claims["new_field"] = json!("from the future");
        });
        let refused = verify_batch(&link.at_hangzhou, "330106", "330100", &newer, &batch.payload).unwrap_err();
        assert_eq!(refused, BatchRefusal::Version { theirs: 2, ours: vec![1] });
        assert_eq!(refused.code(), "version");
        assert!(refused.message().contains("[1]") && refused.message().contains("[2]"), "{refused}");
        let missing = resign(&link.xihu, &batch, |claims| {
            claims.as_object_mut().unwrap().remove("schema_version");
        });
        assert_eq!(
            verify_batch(&link.at_hangzhou, "330106", "330100", &missing, &batch.payload).unwrap_err().code(),
            "malformed"
        );
    }

    #[test]
    fn counts_must_match_the_payload() {
        let link = link();
        let batch = first_batch(&link);
        for (declared, actual) in [(2, Some(3)), (4, Some(3)), (0, None)] {
            let lying = resign(&link.xihu, &batch, |claims| claims["record_count"] = json!(declared));
            let refused = verify_batch(&link.at_hangzhou, "330106", "330100", &lying, &batch.payload).unwrap_err();
            assert_eq!(refused, BatchRefusal::Count { declared, actual }, "{declared}");
            assert_eq!(refused.code(), "count");
        }
        // A payload that is not a list of changes, correctly digested and signed.
        let not_changes = b"{\"changes\": 5}".to_vec();
        let signed = resign(&link.xihu, &batch, |claims| claims["payload_sha256"] = json!(sha256_hex(&not_changes)));
        let refused = verify_batch(&link.at_hangzhou, "330106", "330100", &signed, &not_changes).unwrap_err();
        assert_eq!(refused.code(), "malformed");
        // Malformed digests in the manifest.
        let bad = resign(&link.xihu, &batch, |claims| claims["prev_digest"] = json!("GENESIS"));
        assert_eq!(
            verify_batch(&link.at_hangzhou, "330106", "330100", &bad, &batch.payload).unwrap_err().code(),
            "malformed"
        );
    }

    #[test]
    fn receipts_round_trip_and_must_match_the_batch_sent() {
        let link = link();
        let batch = first_batch(&link);
        let verified =
            verify_batch(&link.at_hangzhou, "330106", "330100", &batch.manifest_jws, &batch.payload).unwrap();
        let parked = vec![Parked { change_id: "c2".into(), reason: "entity \"spaceship\" is unknown".into() }];
        let receipt = Receipt::for_batch(&verified, ReceiptStatus::Applied, 2, parked);
        let jws = sign_receipt(&link.hangzhou, &receipt).unwrap();
        assert_eq!(verify_receipt(&link.at_xihu, "330100", &jws, &batch.digest(), 1).unwrap(), receipt);

        let wrong_seq = verify_receipt(&link.at_xihu, "330100", &jws, &batch.digest(), 2).unwrap_err();
        assert_eq!(wrong_seq.code(), "wrong_batch");
        let wrong_digest = verify_receipt(&link.at_xihu, "330100", &jws, GENESIS, 1).unwrap_err();
        assert_eq!(wrong_digest.code(), "wrong_batch");
        // A receipt signed by a node that was not the target.
        let mut at_xihu = link.at_xihu.clone();
        let zhejiang = NodeKey::generate().unwrap().0;
        at_xihu.trust("330000", zhejiang.public_key());
        let foreign = sign_receipt(&zhejiang, &receipt).unwrap();
        assert_eq!(verify_receipt(&at_xihu, "330100", &foreign, &batch.digest(), 1).unwrap_err().code(), "unknown_key");
        assert_eq!(verify_receipt(&at_xihu, "330000", &foreign, &batch.digest(), 1).unwrap_err().code(), "wrong_batch");
        // A manifest is not a receipt.
        let as_receipt = verify_receipt(&link.at_xihu, "330100", &batch.manifest_jws, &batch.digest(), 1);
        assert_eq!(as_receipt.unwrap_err().code(), "malformed");
        // Duplicates serialize as "duplicate".
        let duplicate = Receipt { status: ReceiptStatus::Duplicate, applied: 0, parked: vec![], ..receipt };
        assert_eq!(serde_json::to_value(&duplicate).unwrap()["status"], json!("duplicate"));
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(negotiate(&[1, 2, 3], &[2, 3, 4]), Ok(3));
        assert_eq!(negotiate(SCHEMA_VERSIONS, SCHEMA_VERSIONS), Ok(SCHEMA_VERSION));
        let mismatch = negotiate(&[1], &[2, 3]).unwrap_err();
        assert_eq!(mismatch, VersionMismatch { ours: vec![1], theirs: vec![2, 3] });
        assert!(mismatch.to_string().contains("[1]") && mismatch.to_string().contains("[2, 3]"));
        assert!(negotiate(&[], &[1]).is_err());
    }

    #[test]
    fn refusal_codes_are_stable() {
        let codes: Vec<&str> = [
            BatchRefusal::BadSignature { what: "manifest" },
            BatchRefusal::UnknownKey { kid: "k".into(), expected: "330106".into(), belongs_to: None },
            BatchRefusal::WrongSource { expected: "a".into(), found: "b".into() },
            BatchRefusal::WrongTarget { expected: "a".into(), found: "b".into() },
            BatchRefusal::Version { theirs: 2, ours: vec![1] },
            BatchRefusal::Digest { declared: "a".into(), actual: "b".into() },
            BatchRefusal::Count { declared: 1, actual: Some(2) },
            BatchRefusal::WrongBatch("x".into()),
            BatchRefusal::Malformed("x".into()),
        ]
        .iter()
        .map(BatchRefusal::code)
        .collect();
        assert_eq!(
            codes,
            [
                "bad_signature",
                "unknown_key",
                "wrong_source",
                "wrong_target",
                "version",
                "digest",
                "count",
                "wrong_batch",
                "malformed"
            ]
        );
    }
}
