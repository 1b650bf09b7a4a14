//! Whose tokens this node accepts: its own (current and previous keys) and
//! those of the nodes above it, whose keys arrive as reference data
//! (`issuer_key` changes, `rhip_store::IssuerKey`). A commission of the
//! province may then read at a county within the province's jurisdiction
//! without an account there; a token of a sibling or of a node below is
//! signed by a key this node never learns, and is refused as unknown.
//!
//! The verifier is rebuilt from the database when a token names a key it
//! does not know, at most once per [`RELOAD_AFTER`], so a flood of tokens
//! with made-up key ids costs no more than one query every two seconds.

use actix_web::web;
use rhip_auth::{key_id_of, public_key_from_pem, Claims, TokenError, Verifier};
use rhip_core::{RegionCode, Role};
use rhip_store::{IssuerKey, Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a process goes without looking for keys it does not know yet.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);

/// The keys this node trusts for bearer tokens.
pub struct TokenTrust {
    me: RegionCode,
    own: Vec<Vec<u8>>,
    current: Mutex<(Arc<Verifier>, Instant)>,
}

impl TokenTrust {
    /// Trust in this node's own keys (raw Ed25519 public keys) and the
    /// ancestors' keys held in `known`.
    pub fn new(me: RegionCode, own: Vec<Vec<u8>>, known: &[IssuerKey]) -> TokenTrust {
        let verifier = Arc::new(build(me, &own, known));
        TokenTrust { me, own, current: Mutex::new((verifier, Instant::now())) }
    }

    /// Verifies a bearer token; a key this node does not know yet makes it
    /// look in the database for keys learnt since (off the async workers).
    pub async fn verify(&self, store: &Store, token: &str) -> Result<Result<Claims, TokenError>, StoreError> {
        let (verifier, loaded) = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let verified = match verifier.verify(token) {
            Err(TokenError::UnknownKey) if loaded.elapsed() >= RELOAD_AFTER => {
                let store = store.clone();
                let known = web::block(move || store.read(|tx| tx.issuer_keys()))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("issuer keys reload: {e}")))??;
                let rebuilt = Arc::new(build(self.me, &self.own, &known));
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = (rebuilt.clone(), Instant::now());
                rebuilt.verify(token)
            }
            other => other,
        };
        Ok(verified.and_then(|claims| self.within_reach(claims)))
    }

    /// A node administrator acts at the node that made the token only.
    fn within_reach(&self, claims: Claims) -> Result<Claims, TokenError> {
        if claims.role == Role::NodeAdmin && claims.iss != self.me.as_str() {
            return Err(TokenError::WrongParty(format!(
                "issuer: a node_admin token of {} is valid at that node only",
                claims.iss
            )));
        }
        Ok(claims)
    }
}

/// A verifier of this node's keys and of every stored key of a node above
/// it whose id matches the key (a key of any other region is ignored).
fn build(me: RegionCode, own: &[Vec<u8>], known: &[IssuerKey]) -> Verifier {
    let mut verifier = Verifier::new();
    for key in own {
        verifier.trust(key, me.as_str());
    }
    for key in known {
        let above = RegionCode::parse(&key.region).is_ok_and(|region| region != me && region.contains(&me));
        if !above {
            continue;
        }
        match public_key_from_pem(&key.public_key) {
            Ok(public) if key_id_of(&public) == key.key_id => verifier.trust(&public, &key.region),
            Ok(_) => {
                tracing::warn!(key = %key.key_id, region = %key.region, "issuer key does not match its id; ignored")
            }
            Err(error) => {
                tracing::warn!(key = %key.key_id, region = %key.region, %error, "issuer key unreadable; ignored")
            }
        }
    }
    verifier
}
