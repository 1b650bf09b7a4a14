//! Signed statements between nodes: compact JWS (EdDSA) with a `typ` naming what is
//! signed, verified against the public keys of peer regions.
//!
//! Tokens ([`crate::keys`]) say who a user is; these say what a node declared: a batch
//! manifest, a receipt, a key rotation. Each peer key is bound to one region, so a key
//! of Guangdong can never vouch for a batch from Zhejiang even though this node trusts
//! both. Integrity outlives the TLS connection: a stored manifest can be re-verified
//! years later. Expiry and audience are deliberately not part of these statements;
//! freshness comes from the per-link sequence and hash chain of the federation protocol.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{key_id_of, NodeKey, TokenError};

/// JWS `typ` of a [`KeyAnnouncement`].
pub const KEY_ANNOUNCEMENT_TYPE: &str = "rhip-key+jws";

impl NodeKey {
    /// Signs `claims` into a compact JWS with header `alg = EdDSA`, `kid` = this key's id
    /// and `typ` = `typ`, so the receiver can tell a manifest from a receipt before it
    /// reads the claims. No expiry is added.
    pub fn sign_jws<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id().to_owned());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, self.encoding_key()).map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// Announces `new` as an additional key of this node's `region`, signed with this
    /// (old) key, so peers that trust the old key can start trusting the new one without
    /// an operator copying files. Both stay trusted: batches signed with either verify
    /// during the overlap.
    pub fn announce(&self, region: &str, new: &NodeKey) -> Result<String, TokenError> {
        let announcement = KeyAnnouncement {
            region: region.to_owned(),
            new_public_key: base64::engine::general_purpose::STANDARD.encode(new.public_key()),
            new_kid: new.key_id().to_owned(),
            issued_at: Utc::now(),
        };
        self.sign_jws(KEY_ANNOUNCEMENT_TYPE, &announcement)
    }
}

/// A node's statement "this is also my key", signed with a key its peers already trust
/// (JWS `typ` [`KEY_ANNOUNCEMENT_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAnnouncement {
    /// Region of the announcing node; must be the region the signing key is trusted for.
    pub region: String,
    /// The new raw 32-byte Ed25519 public key, standard base64.
    pub new_public_key: String,
    /// Key id of the new key ([`key_id_of`]); checked against `new_public_key`.
    pub new_kid: String,
    /// When the announcement was made, for the operators' logs.
    pub issued_at: DateTime<Utc>,
}

/// Why a signed statement from a peer was refused. The messages are shown to peers and
/// operators, so they say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not a compact JWS, or its header cannot be read.
    #[error("signed statement is malformed: {0}")]
    Malformed(String),
    /// The `kid` is not a key this node trusts (or there is no `kid`).
    #[error("signed with key {0:?}, which this node does not trust (add the peer's public key to the trust folder)")]
    UnknownKey(String),
    /// The signature does not match the header and claims: altered or forged.
    #[error("signature does not verify: the statement was altered or not signed by the key it names")]
    BadSignature,
    /// A statement of another kind (say, a receipt where a manifest was expected).
    #[error("signed statement has type {found:?}, expected {expected:?}")]
    WrongType {
        /// The `typ` the caller asked for.
        expected: String,
        /// The `typ` in the header (empty when absent).
        found: String,
    },
    /// Signed correctly, but the claims are not what this kind of statement holds.
    #[error("signed statement claims are invalid: {0}")]
    Claims(String),
}

/// A verified statement: its claims and who signed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    /// The signed claims.
    pub claims: T,
    /// The region the signing key is trusted for.
    pub region: String,
    /// The signing key's id.
    pub kid: String,
}

/// The public keys this node trusts for statements of peer nodes, each bound to the
/// region of the peer that holds it. A region may have several keys (rotation overlap).
#[derive(Clone, Default)]
pub struct PeerKeys {
    /// Key id -> (decoding key, region).
    keys: HashMap<String, (DecodingKey, String)>,
}

impl std::fmt::Debug for PeerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_kid: BTreeMap<&str, &str> =
            self.keys.iter().map(|(kid, (_, region))| (kid.as_str(), region.as_str())).collect();
        f.debug_struct("PeerKeys").field("keys", &by_kid).finish()
    }
}

impl PeerKeys {
    /// Trusting no key yet.
    pub fn new() -> PeerKeys {
        PeerKeys::default()
    }

    /// Trusts statements signed with the raw Ed25519 `public_key` as coming from the node
    /// of `region`. A key belongs to one region: trusting it again for another region
    /// moves it there.
    pub fn trust(&mut self, region: &str, public_key: &[u8]) {
        self.keys.insert(key_id_of(public_key), (DecodingKey::from_ed_der(public_key), region.to_owned()));
    }

    /// The regions with at least one trusted key, in code order.
    pub fn regions(&self) -> Vec<String> {
        let regions: BTreeSet<&String> = self.keys.values().map(|(_, region)| region).collect();
        regions.into_iter().cloned().collect()
    }

    /// Ids of the keys trusted for `region`, sorted.
    pub fn keys_of(&self, region: &str) -> Vec<String> {
        let mut kids: Vec<String> =
            self.keys.iter().filter(|(_, (_, owner))| owner == region).map(|(kid, _)| kid.clone()).collect();
        kids.sort();
        kids
    }

    /// The region a key id is trusted for, if any.
    pub fn region_of(&self, kid: &str) -> Option<&str> {
        self.keys.get(kid).map(|(_, region)| region.as_str())
    }

    /// Verifies a compact JWS of type `typ`: algorithm EdDSA only, header `typ` equal to
    /// `typ`, `kid` trusted, signature valid, claims readable as `T`. Expiry, audience
    /// and issuer are not checked (these statements carry none); the caller checks that
    /// the returned region is the one it expected.
    pub fn verify_jws<T: DeserializeOwned>(&self, jws: &str, typ: &str) -> Result<Verified<T>, JwsError> {
        let header =
            jsonwebtoken::decode_header(jws).map_err(|e| JwsError::Malformed(format!("not a compact JWS ({e})")))?;
        if header.alg != Algorithm::EdDSA {
            return Err(JwsError::Malformed(format!("algorithm {:?} is not accepted, only EdDSA", header.alg)));
        }
        let found = header.typ.unwrap_or_default();
        if found != typ {
            return Err(JwsError::WrongType { expected: typ.to_owned(), found });
        }
        let kid = header.kid.ok_or_else(|| JwsError::UnknownKey(String::new()))?;
        let (key, region) = self.keys.get(&kid).ok_or_else(|| JwsError::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<T>(jws, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => JwsError::BadSignature,
                ErrorKind::Json(inner) => JwsError::Claims(inner.to_string()),
                _ => JwsError::Malformed(e.to_string()),
            }
        })?;
        Ok(Verified { claims: data.claims, region: region.clone(), kid })
    }

    /// Reads a [`KeyAnnouncement`], checks it is signed by a key already trusted for the
    /// region it announces a key of, and then trusts the new key for that region too (the
    /// signing key stays trusted). Returns the new key's id.
    pub fn accept_announcement(&mut self, jws: &str) -> Result<String, JwsError> {
        let verified: Verified<KeyAnnouncement> = self.verify_jws(jws, KEY_ANNOUNCEMENT_TYPE)?;
        let announcement = verified.claims;
        if announcement.region != verified.region {
            return Err(JwsError::Claims(format!(
                "announcement of a key for region {} is signed by key {} of region {}; only a key of {} may announce its keys",
                announcement.region, verified.kid, verified.region, announcement.region
            )));
        }
        let new_key = base64::engine::general_purpose::STANDARD
            .decode(&announcement.new_public_key)
            .map_err(|e| JwsError::Claims(format!("new_public_key is not base64: {e}")))?;
        if new_key.len() != 32 {
            return Err(JwsError::Claims(format!(
                "new_public_key has {} bytes; an Ed25519 public key has 32",
                new_key.len()
            )));
        }
        let new_kid = key_id_of(&new_key);
        if new_kid != announcement.new_kid {
            return Err(JwsError::Claims(format!(
                "new_kid {:?} does not match new_public_key, whose key id is {new_kid:?}",
                announcement.new_kid
            )));
        }
        self.trust(&announcement.region, &new_key);
        Ok(new_kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key_from_pem, KeyError};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        text: String,
        count: u64,
    }

    fn note() -> Note {
        Note { text: "batch 1".into(), count: 3 }
    }

    fn key() -> NodeKey {
        NodeKey::generate().unwrap().0
    }

    fn peers_trusting(region: &str, key: &NodeKey) -> PeerKeys {
        let mut peers = PeerKeys::new();
        peers.trust(region, key.public_key());
        peers
    }

    /// Replaces the claims segment of `jws` with `edit` applied to its decoded bytes.
    fn tamper(jws: &str, edit: impl Fn(&mut Vec<u8>)) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = jws.split('.').collect();
        let mut claims = engine.decode(parts[1]).unwrap();
        edit(&mut claims);
        format!("{}.{}.{}", parts[0], engine.encode(claims), parts[2])
    }

    #[test]
    fn signed_statements_verify_and_name_their_signer() {
        let key = key();
        let peers = peers_trusting("330100", &key);
        let jws = key.sign_jws("rhip-test+jws", &note()).unwrap();
        let header = jsonwebtoken::decode_header(&jws).unwrap();
        assert_eq!(header.typ.as_deref(), Some("rhip-test+jws"));
        assert_eq!(header.kid.as_deref(), Some(key.key_id()));
        let verified: Verified<Note> = peers.verify_jws(&jws, "rhip-test+jws").unwrap();
        assert_eq!(verified, Verified { claims: note(), region: "330100".into(), kid: key.key_id().into() });
    }

    #[test]
    fn foreign_keys_are_unknown() {
        let (trusted, other) = (key(), key());
        let peers = peers_trusting("330100", &trusted);
        let jws = other.sign_jws("rhip-test+jws", &note()).unwrap();
        let refused = peers.verify_jws::<Note>(&jws, "rhip-test+jws").unwrap_err();
        assert_eq!(refused, JwsError::UnknownKey(other.key_id().into()));
        assert!(refused.to_string().contains(other.key_id()));
    }

    #[test]
    fn a_changed_claims_byte_breaks_the_signature() {
        let key = key();
        let peers = peers_trusting("330100", &key);
        let jws = key.sign_jws("rhip-test+jws", &note()).unwrap();
        let tampered = tamper(&jws, |claims| {
            let position = claims.iter().position(|b| *b == b'3').unwrap();
            claims[position] = b'4';
        });
        assert_eq!(peers.verify_jws::<Note>(&tampered, "rhip-test+jws"), Err(JwsError::BadSignature));
    }

    #[test]
    fn a_key_of_the_same_id_but_other_bytes_does_not_verify() {
        // A forger who copies the kid of a trusted key still cannot produce its signature.
        let (trusted, forger) = (key(), key());
        let peers = peers_trusting("330100", &trusted);
        let forged = forger.sign_jws("rhip-test+jws", &note()).unwrap();
        let genuine = trusted.sign_jws("rhip-test+jws", &note()).unwrap();
        let forged_parts: Vec<&str> = forged.split('.').collect();
        let genuine_parts: Vec<&str> = genuine.split('.').collect();
        let spliced = format!("{}.{}.{}", genuine_parts[0], genuine_parts[1], forged_parts[2]);
        assert_eq!(peers.verify_jws::<Note>(&spliced, "rhip-test+jws"), Err(JwsError::BadSignature));
    }

    #[test]
    fn statements_of_another_type_are_refused() {
        let key = key();
        let peers = peers_trusting("330100", &key);
        let jws = key.sign_jws("rhip-receipt+jws", &note()).unwrap();
        let refused = peers.verify_jws::<Note>(&jws, "rhip-batch+jws").unwrap_err();
        assert_eq!(
            refused,
            JwsError::WrongType { expected: "rhip-batch+jws".into(), found: "rhip-receipt+jws".into() }
        );
        assert!(refused.to_string().contains("rhip-batch+jws"));
    }

    #[test]
    fn garbage_and_wrong_claims_are_told_apart() {
        let key = key();
        let peers = peers_trusting("330100", &key);
        assert!(matches!(peers.verify_jws::<Note>("not-a-jws", "rhip-test+jws"), Err(JwsError::Malformed(_))));
        let other_shape = key.sign_jws("rhip-test+jws", &serde_json::json!({"text": 5})).unwrap();
        assert!(matches!(peers.verify_jws::<Note>(&other_shape, "rhip-test+jws"), Err(JwsError::Claims(_))));
    }

    #[test]
    fn regions_hold_several_keys() {
        let (old, new, guangdong) = (key(), key(), key());
        let mut peers = PeerKeys::new();
        peers.trust("330100", old.public_key());
        peers.trust("330100", new.public_key());
        peers.trust("440000", guangdong.public_key());
        assert_eq!(peers.regions(), vec!["330100".to_owned(), "440000".to_owned()]);
        let mut expected = vec![old.key_id().to_owned(), new.key_id().to_owned()];
        expected.sort();
        assert_eq!(peers.keys_of("330100"), expected);
        assert_eq!(peers.keys_of("110000"), Vec::<String>::new());
        assert_eq!(peers.region_of(guangdong.key_id()), Some("440000"));
        for signer in [&old, &new] {
            let jws = signer.sign_jws("rhip-test+jws", &note()).unwrap();
            assert_eq!(peers.verify_jws::<Note>(&jws, "rhip-test+jws").unwrap().region, "330100");
        }
    }

    #[test]
    fn announcements_signed_by_a_trusted_key_of_the_region_add_the_new_key() {
        let (old, new) = (key(), key());
        let mut peers = peers_trusting("330100", &old);
        let announcement = old.announce("330100", &new).unwrap();
        assert_eq!(peers.accept_announcement(&announcement).unwrap(), new.key_id());
        // Overlap: both keys verify.
        for signer in [&old, &new] {
            let jws = signer.sign_jws("rhip-test+jws", &note()).unwrap();
            assert!(peers.verify_jws::<Note>(&jws, "rhip-test+jws").is_ok());
        }
        assert_eq!(peers.keys_of("330100").len(), 2);
    }

    #[test]
    fn announcements_by_untrusted_or_other_region_keys_are_refused() {
        let (zhejiang, guangdong, stranger, new) = (key(), key(), key(), key());
        let mut peers = PeerKeys::new();
        peers.trust("330000", zhejiang.public_key());
        peers.trust("440000", guangdong.public_key());

        // Signed by a key nobody trusts.
        let unknown = stranger.announce("330000", &new).unwrap();
        assert_eq!(peers.accept_announcement(&unknown), Err(JwsError::UnknownKey(stranger.key_id().into())));

        // Guangdong's key announcing a key for Zhejiang.
        let cross = guangdong.announce("330000", &new).unwrap();
        let refused = peers.accept_announcement(&cross).unwrap_err();
        assert!(matches!(&refused, JwsError::Claims(message) if message.contains("440000")));
        assert!(peers.region_of(new.key_id()).is_none());

        // A valid announcement whose kid does not belong to the key.
        let mut lying = KeyAnnouncement {
            region: "330000".into(),
            new_public_key: base64::engine::general_purpose::STANDARD.encode(new.public_key()),
            new_kid: "0000000000000000".into(),
            issued_at: Utc::now(),
        };
        let jws = zhejiang.sign_jws(KEY_ANNOUNCEMENT_TYPE, &lying).unwrap();
        assert!(matches!(peers.accept_announcement(&jws), Err(JwsError::Claims(_))));
        lying.new_public_key = "AAAA".into();
        lying.new_kid = new.key_id().into();
        let jws = zhejiang.sign_jws(KEY_ANNOUNCEMENT_TYPE, &lying).unwrap();
        assert!(matches!(peers.accept_announcement(&jws), Err(JwsError::Claims(_))));

        // A statement of another type is not an announcement.
        let other = zhejiang.sign_jws("rhip-test+jws", &note()).unwrap();
        assert!(matches!(peers.accept_announcement(&other), Err(JwsError::WrongType { .. })));
        assert_eq!(peers.keys_of("330000"), vec![zhejiang.key_id().to_owned()]);
    }

    #[test]
    fn public_keys_read_back_from_their_pem() {
        let key = key();
        let pem = key.public_key_pem();
        let public = public_key_from_pem(&pem).unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(key_id_of(&public), key.key_id());
        // Surrounding text (comments, other blocks) is tolerated.
        assert_eq!(public_key_from_pem(&format!("# Hangzhou\n{pem}\n")).unwrap(), key.public_key());
    }

    #[test]
    fn other_pem_blocks_are_refused_with_a_reason() {
        let (_, private_pem) = NodeKey::generate().unwrap();
        let refused = public_key_from_pem(&private_pem).unwrap_err();
        assert!(matches!(&refused, KeyError::PublicKey(m) if m.contains("PRIVATE KEY")));
        assert!(matches!(public_key_from_pem("hello"), Err(KeyError::PublicKey(_))));
        // An EC P-256 SubjectPublicKeyInfo (91 bytes): right label, wrong algorithm.
        let mut der = vec![0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        der.resize(91, 0x04);
        let ec = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let refused = public_key_from_pem(&ec).unwrap_err();
        assert!(refused.to_string().contains("not an Ed25519"), "{refused}");
        let broken = "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
        assert!(matches!(public_key_from_pem(broken), Err(KeyError::PublicKey(_))));
    }
}
