//! Revoked access tokens, checked on every authenticated request.
//!
//! A logout revokes the access token it was made with; the token's id is
//! kept in the database until the token would have expired. Each process
//! keeps the set in memory and reloads it when it is older than
//! [`RELOAD_AFTER`], so another process's logout takes effect within that
//! time and a request costs no query in the common case.

use rhip_store::{Store, StoreError};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest a process trusts its copy of the revocation set.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);

/// The revoked token ids this process knows, and when they were loaded.
#[derive(Default)]
pub struct Revocations {
    known: Mutex<Option<(HashSet<String>, Instant)>>,
}

impl Revocations {
    /// Whether the token with id `jti` was revoked (reloading the set from
    /// the database when it is stale, off the async workers).
    pub async fn is_revoked(&self, store: &Store, jti: &str) -> Result<bool, StoreError> {
        if let Some(answer) = self.fresh_answer(jti) {
            return Ok(answer);
        }
        let store = store.clone();
        let loaded = actix_web::web::block(move || store.read(|tx| tx.revoked_access_tokens()))
            .await
            .map_err(|e| StoreError::Corrupt(format!("revocation reload: {e}")))??;
        let set: HashSet<String> = loaded.into_iter().collect();
        let revoked = set.contains(jti);
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some((set, Instant::now()));
        Ok(revoked)
    }

    fn fresh_answer(&self, jti: &str) -> Option<bool> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match &*known {
            Some((set, loaded)) if loaded.elapsed() < RELOAD_AFTER => Some(set.contains(jti)),
            _ => None,
        }
    }

    /// Notes a revocation made by this process at once.
    pub fn add(&self, jti: &str) {
        if let Some((set, _)) = &mut *self.known.lock().unwrap_or_else(|p| p.into_inner()) {
            set.insert(jti.to_string());
        }
    }
}
