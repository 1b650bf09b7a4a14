//! Sealing the chain head with the node's key, and the jobs that chain and seal.

use super::*;

/// What a seal signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealClaims {
    /// The node's region: a seal of one node never vouches for another's log.
    pub region: String,
    /// The chain position sealed up to.
    pub position: i64,
    /// The chain hash at that position.
    pub chain_hash: String,
    /// When it was sealed, UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (as stored).
    pub sealed_at: String,
}

pub(super) fn format_time(time: &NaiveDateTime) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The keys a node's seals may carry: its current key and those it signed
/// with before a rotation, all bound to its region.
pub fn seal_keys(region: RegionCode, current: &NodeKey, previous: &[NodeKey]) -> PeerKeys {
    let mut keys = PeerKeys::new();
    for key in std::iter::once(current).chain(previous) {
        keys.trust(region.as_str(), key.public_key());
    }
    keys
}

/// Seals the chain head with `key` when it moved since the last seal;
/// returns the new seal, or `None` when there was nothing new to seal.
pub fn seal_head(store: &Store, key: &NodeKey) -> anyhow::Result<Option<AuditSeal>> {
    let region = store.region();
    let (head, last) =
        store.read(|tx| Ok((tx.audit_chain_head()?, tx.last_audit_seal()?))).context("read the chain head")?;
    let Some(head) = head else { return Ok(None) };
    if last.as_ref().is_some_and(|seal| seal.position >= head.position) {
        return Ok(None);
    }
    let sealed_at = chrono::Utc::now().naive_utc().trunc_subsecs(6);
    let claims = SealClaims {
        region: region.as_str().to_string(),
        position: head.position,
        chain_hash: head.chain_hash.clone(),
        sealed_at: format_time(&sealed_at),
    };
    let signature = key.sign_jws(SEAL_TYPE, &claims).context("sign the seal")?;
    let seal = AuditSeal {
        position: head.position,
        chain_hash: head.chain_hash,
        key_id: key.key_id().to_string(),
        signature,
        sealed_at,
    };
    match store.write(|tx| tx.insert_audit_seal(&seal)) {
        Ok(()) => Ok(Some(seal)),
        // Another process sealed the same head first.
        Err(StoreError::Conflict(_)) => Ok(None),
        // The head was archived meanwhile: nothing to seal.
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(error) => Err(anyhow::Error::new(error).context("store the seal")),
    }
}

/// Chains pending entries now (twice, so the watermark settles when nothing
/// is in flight) and seals the head: what `rhip audit seal` does.
pub fn chain_and_seal(store: &Store, key: &NodeKey) -> anyhow::Result<(ChainRun, Option<AuditSeal>)> {
    let first = store.chain_audit(None).context("chain the audit log")?;
    let second = store.chain_audit(Some(&first.fence)).context("chain the audit log")?;
    let seal = seal_head(store, key)?;
    Ok((ChainRun { chained: first.chained + second.chained, ..second }, seal))
}

/// The chaining job: remembers the last run's fence so the watermark can
/// pass transactions that were open then; overlapping runs skip.
pub struct Chainer {
    store: Store,
    fence: Mutex<Option<AuditFence>>,
}

impl Chainer {
    /// A chainer over the node's store.
    pub fn new(store: Store) -> Chainer {
        Chainer { store, fence: Mutex::new(None) }
    }

    /// One run; failures are logged, never raised (the next run retries).
    /// Several processes of one node may run it at once: their transactions
    /// take turns on the chain's lock. Blocking: run on the blocking pool.
    pub fn run(&self) {
        let Ok(mut fence) = self.fence.try_lock() else { return };
        match self.store.chain_audit(fence.as_ref()) {
            Ok(run) => {
                if run.chained > 0 {
                    tracing::debug!(chained = run.chained, watermark = run.watermark, "audit entries chained");
                }
                *fence = Some(run.fence);
            }
            Err(error) => tracing::warn!(%error, "audit entries not chained"),
        }
    }
}

/// The sealing job: seals the head with the node's key when it moved.
pub struct Sealer {
    store: Store,
    key: NodeKey,
    busy: Mutex<()>,
}

impl Sealer {
    /// A sealer signing with `key`.
    pub fn new(store: Store, key: NodeKey) -> Sealer {
        Sealer { store, key, busy: Mutex::new(()) }
    }

    /// One run; failures are logged, never raised. When several processes
    /// of one node seal the same head at once, one seal is stored and the
    /// others stand down. Blocking: run on the blocking pool.
    pub fn run(&self) {
        let Ok(_busy) = self.busy.try_lock() else { return };
        match seal_head(&self.store, &self.key) {
            Ok(Some(seal)) => tracing::info!(position = seal.position, key_id = %seal.key_id, "audit chain sealed"),
            Ok(None) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "audit chain not sealed"),
        }
    }
}
