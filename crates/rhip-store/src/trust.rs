//! Trust that travels: the keys whose tokens a node accepts, and the
//! revocations of those tokens (the security issue: "tokens issued by an
//! ancestor node are accepted by descendants within the ancestor's
//! jurisdiction; keys travel as reference data; revocations travel too").
//!
//! A node records its own signing keys here and publishes each once as an
//! `issuer_key` change, which the routing sends down to every descendant.
//! A revoked access token becomes a `token_revocation` change, which goes
//! down the same way and up toward the node that issued the token.

use crate::conn::Direct;
use crate::schema::{issuer_keys, revoked_tokens};
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// A key that signs tokens, with the region of the node that holds it: the
/// payload of an `issuer_key` change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable)]
#[serde(deny_unknown_fields)]
#[diesel(table_name = issuer_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct IssuerKey {
    /// Key id (as in a token's `kid` header).
    pub key_id: String,
    /// Region of the node whose tokens it signs (their `iss`).
    pub region: String,
    /// The Ed25519 public key, SPKI PEM.
    pub public_key: String,
}

/// A revoked access token: the payload of a `token_revocation` change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRevocation {
    /// The token's id (`jti`).
    pub jti: String,
    /// Region of the node that issued the token (its `iss`).
    pub issuer: String,
    /// When the token expires; the revocation is kept until then.
    pub expires_at: NaiveDateTime,
    /// Why (`logout`, ...).
    pub reason: String,
}

impl Tx<'_> {
    /// Records one of this node's own keys; the first time, also publishes
    /// it to the descendants (an `issuer_key` change). Returns whether it
    /// was new.
    pub fn publish_own_key(&mut self, key_id: &str, public_key_pem: &str) -> Result<bool, StoreError> {
        let known: i64 = issuer_keys::table.find(key_id).count().fetch_one(self.conn)?;
        if known > 0 {
            return Ok(false);
        }
        let key = IssuerKey {
            key_id: key_id.to_string(),
            region: self.node_region().as_str().to_string(),
            public_key: public_key_pem.to_string(),
        };
        // Two processes of one node may start at once: the second finds the
        // key's row taken and publishes nothing.
        match self.guarded(|tx| tx.insert_issuer_key(&key, None)) {
            Err(StoreError::Conflict(_)) => return Ok(false),
            other => other?,
        }
        let payload = serde_json::to_value(&key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hlc = self.tick().encode();
        self.record_change("issuer_key", key_id, "publish", None, &hlc, &payload)?;
        Ok(true)
    }

    /// Stores an ancestor's key received from `from_peer` (a replay changes
    /// nothing).
    pub(crate) fn store_issuer_key(&mut self, key: &IssuerKey, from_peer: &str) -> Result<(), StoreError> {
        let known: i64 = issuer_keys::table.find(&key.key_id).count().fetch_one(self.conn)?;
        if known == 0 {
            self.insert_issuer_key(key, Some(from_peer))?;
        }
        Ok(())
    }

    fn insert_issuer_key(&mut self, key: &IssuerKey, received_from: Option<&str>) -> Result<(), StoreError> {
        diesel::insert_into(issuer_keys::table)
            .values((
                issuer_keys::key_id.eq(&key.key_id),
                issuer_keys::region.eq(&key.region),
                issuer_keys::public_key.eq(&key.public_key),
                issuer_keys::received_from.eq(received_from),
                issuer_keys::recorded_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Every key this node knows, its own and its ancestors'.
    pub fn issuer_keys(&mut self) -> Result<Vec<IssuerKey>, StoreError> {
        Ok(issuer_keys::table.order(issuer_keys::key_id.asc()).select(IssuerKey::as_select()).load(self.conn)?)
    }

    /// Revokes an access token here until it would have expired anyway,
    /// and sends the revocation on (down to the descendants, which accept
    /// the tokens of this node and its ancestors, and up toward the issuer).
    pub fn revoke_access_token(&mut self, revocation: &TokenRevocation) -> Result<(), StoreError> {
        if self.insert_revocation(revocation)? {
            let payload = serde_json::to_value(revocation).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let hlc = self.tick().encode();
            self.record_routed_change(
                "token_revocation",
                &revocation.jti,
                "revoke",
                None,
                Some(&revocation.issuer),
                &hlc,
                &payload,
            )?;
        }
        Ok(())
    }

    /// Stores a revocation received from a peer (a replay changes nothing).
    pub(crate) fn store_revocation(&mut self, revocation: &TokenRevocation) -> Result<(), StoreError> {
        self.insert_revocation(revocation).map(|_| ())
    }

    fn insert_revocation(&mut self, revocation: &TokenRevocation) -> Result<bool, StoreError> {
        let known: i64 = revoked_tokens::table.find(&revocation.jti).count().fetch_one(self.conn)?;
        if known > 0 {
            return Ok(false);
        }
        // A token logged out twice at once, in two processes: one wins.
        let inserted = self.guarded(|tx| {
            diesel::insert_into(revoked_tokens::table)
                .values((
                    revoked_tokens::jti.eq(&revocation.jti),
                    revoked_tokens::expires_at.eq(revocation.expires_at),
                    revoked_tokens::revoked_at.eq(crate::now()),
                    revoked_tokens::reason.eq(&revocation.reason),
                ))
                .execute(tx.conn)
                .map_err(StoreError::from)
        });
        match inserted {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}
