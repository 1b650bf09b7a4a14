//! Node signing keys (Ed25519, PKCS#8 PEM on disk) and token minting and
//! verification with jsonwebtoken (EdDSA). The key id is derived from the
//! public key so peers can hold several keys during a rotation.

use crate::claims::{Claims, AUDIENCE};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::HashMap;

/// A node's private signing key.
pub struct NodeKey {
    encoding: EncodingKey,
    public: Vec<u8>,
    key_id: String,
}

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not a PKCS#8 private key.
    #[error("signing key is not a PEM-encoded PKCS#8 Ed25519 private key: {0}")]
    Format(String),
    /// The random generator failed.
    #[error("could not generate a key")]
    Generate,
    /// The PEM text is not an Ed25519 public key (`-----BEGIN PUBLIC KEY-----`,
    /// SubjectPublicKeyInfo as written by [`NodeKey::public_key_pem`]).
    #[error("peer key is not a PEM-encoded Ed25519 public key (-----BEGIN PUBLIC KEY-----): {0}")]
    PublicKey(String),
}

/// Why a token was refused; messages are safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT at all.
    #[error("bearer token is malformed")]
    Malformed,
    /// Signed by a key this node does not trust.
    #[error("bearer token is signed by an unknown key")]
    UnknownKey,
    /// Signature check failed.
    #[error("bearer token signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("bearer token has expired")]
    Expired,
    /// Issued for someone else or by someone else.
    #[error("bearer token is not meant for this node: {0}")]
    WrongParty(String),
    /// Claims do not fit the role.
    #[error("bearer token claims are invalid: {0}")]
    Claims(String),
    /// Minting failed.
    #[error("could not sign token: {0}")]
    Sign(String),
}

impl NodeKey {
    /// Generates a fresh key; returns it with its PEM text for the key file.
    pub fn generate() -> Result<(NodeKey, String), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
        let pem = to_pem(pkcs8.as_ref());
        Ok((NodeKey::from_pem(&pem)?, pem))
    }

    /// Reads a key from its PEM text.
    pub fn from_pem(pem: &str) -> Result<NodeKey, KeyError> {
        let der = from_pem(pem).ok_or_else(|| KeyError::Format("no PRIVATE KEY block".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| KeyError::Format(e.to_string()))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(NodeKey { encoding: EncodingKey::from_ed_der(&der), key_id: key_id_of(&public), public })
    }

    /// Raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The public key as a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo), for
    /// peers' trust folders.
    pub fn public_key_pem(&self) -> String {
        public_key_to_pem(&self.public)
    }

    /// Key id: the first 16 hex digits of the SHA-256 of the public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The private key in jsonwebtoken's form, for the other signers of this crate.
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Signs claims into a compact JWS.
    pub fn mint(&self, claims: &Claims) -> Result<String, TokenError> {
        claims.check_shape().map_err(|e| TokenError::Claims(e.to_string()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| TokenError::Sign(e.to_string()))
    }
}

/// Verifies tokens against the keys a node trusts.
#[derive(Clone)]
pub struct Verifier {
    /// Key id -> (decoding key, region of the issuing node).
    keys: HashMap<String, (DecodingKey, String)>,
}

impl Verifier {
    /// A verifier trusting no key yet.
    pub fn new() -> Verifier {
        Verifier { keys: HashMap::new() }
    }

    /// Trusts tokens signed with `public_key` by the node of `issuer_region`.
    pub fn trust(&mut self, public_key: &[u8], issuer_region: &str) {
        self.keys.insert(key_id_of(public_key), (DecodingKey::from_ed_der(public_key), issuer_region.to_string()));
    }

    /// Checks signature, expiry, audience, issuer and claim shape.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::BadSignature);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (key, issuer) = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer.as_str()]);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAudience => TokenError::WrongParty("audience".into()),
                ErrorKind::InvalidIssuer => TokenError::WrongParty("issuer".into()),
                ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => TokenError::Claims(e.to_string()),
                _ => TokenError::Malformed,
            }
        })?;
        data.claims.check_shape().map_err(|e| TokenError::Claims(e.to_string()))?;
        Ok(data.claims)
    }
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new()
    }
}

/// SubjectPublicKeyInfo of an Ed25519 key is this fixed 12-byte prefix (RFC 8410)
/// followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The key id of a raw Ed25519 public key: the first 16 hex digits of its SHA-256.
///
/// Public so that a peer's key read from its trust file gets the same id the peer puts
/// in the `kid` header of what it signs ([`NodeKey::key_id`]).
pub fn key_id_of(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    hex::encode(&digest.as_ref()[..8])
}

/// A raw Ed25519 public key as a PEM `PUBLIC KEY` block, for a trust folder
/// that learns a peer's new key from its announcement.
pub fn public_key_to_pem(public: &[u8]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    pem_block("PUBLIC KEY", &der)
}

fn to_pem(der: &[u8]) -> String {
    pem_block("PRIVATE KEY", der)
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn from_pem(pem: &str) -> Option<Vec<u8>> {
    pem_body(pem, "PRIVATE KEY")
}

/// The base64-decoded body of the first `label` block of `pem`.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let end = start + pem.get(start..)?.find(&format!("-----END {label}-----"))?;
    let body: String = pem.get(start..end)?.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Reads a peer's public signing key from its PEM text (a `PUBLIC KEY` block holding
/// the SubjectPublicKeyInfo of an Ed25519 key, as [`NodeKey::public_key_pem`] writes
/// it into peers' trust folders) and returns the raw 32-byte key.
///
/// Anything else (a private key, an RSA or EC key, a certificate) is refused, so a
/// wrong file in a trust folder is caught at startup rather than at the first batch.
pub fn public_key_from_pem(pem: &str) -> Result<Vec<u8>, KeyError> {
    if pem.contains("-----BEGIN PRIVATE KEY-----") && !pem.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(KeyError::PublicKey("found a PRIVATE KEY block; give the peer's public key instead".into()));
    }
    if !pem.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(KeyError::PublicKey("no PUBLIC KEY block".into()));
    }
    let der = pem_body(pem, "PUBLIC KEY")
        .ok_or_else(|| KeyError::PublicKey("the PUBLIC KEY block is not terminated or not valid base64".into()))?;
    match der.strip_prefix(ED25519_SPKI_PREFIX.as_slice()) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err(KeyError::PublicKey(format!(
            "the PUBLIC KEY block ({} bytes) is not an Ed25519 SubjectPublicKeyInfo (44 bytes, OID 1.3.101.112)",
            der.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhip_core::Role;

    fn claims(role: Role, exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "tester".into(),
            role,
            region: Some("330106".into()),
            facility: None,
            person: None,
            iss: "330106".into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + exp_offset,
            jti: "t1".into(),
        }
    }

    #[test]
    fn minted_tokens_verify_with_the_public_key() {
        let (key, pem) = NodeKey::generate().unwrap();
        let again = NodeKey::from_pem(&pem).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let mut verifier = Verifier::new();
        verifier.trust(key.public_key(), "330106");
        let token = key.mint(&claims(Role::Commission, 600)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().role, Role::Commission);
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let (key, _) = NodeKey::generate().unwrap();
        let (other, _) = NodeKey::generate().unwrap();
        let mut verifier = Verifier::new();
        verifier.trust(key.public_key(), "330106");
        let foreign = other.mint(&claims(Role::Commission, 600)).unwrap();
        assert_eq!(verifier.verify(&foreign), Err(TokenError::UnknownKey));
        let expired = key.mint(&claims(Role::Commission, -3600)).unwrap();
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
        // Same kid, body altered: the signature no longer matches.
        let good = key.mint(&claims(Role::Commission, 600)).unwrap();
        let forged_body = other.mint(&Claims { role: Role::Auditor, ..claims(Role::Commission, 600) }).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let forged_parts: Vec<&str> = forged_body.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
        assert_eq!(verifier.verify(&spliced), Err(TokenError::BadSignature));
        assert_eq!(verifier.verify("not-a-token"), Err(TokenError::Malformed));
    }

    #[test]
    fn role_claims_are_required() {
        let (key, _) = NodeKey::generate().unwrap();
        let resident = Claims { region: None, ..claims(Role::Resident, 600) };
        assert!(matches!(key.mint(&resident), Err(TokenError::Claims(_))));
        let clinician = claims(Role::Clinician, 600);
        assert!(matches!(key.mint(&clinician), Err(TokenError::Claims(_))));
    }
}
