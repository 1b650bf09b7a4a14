//! The sending side of a link: cut batches from the change log (what the
//! routing rules send to this peer), keep them until acknowledged, push them
//! over mutual TLS, and advance the watermark only on a valid signed receipt.
//!
//! A cut batch is stored before it is sent, so a crash between the two
//! resends the very same bytes; the receiver answers a replay with its stored
//! receipt. Failures back off exponentially with jitter.

use super::context::{FederationContext, ANNOUNCEMENT_HEADER};
use super::listener::MANIFEST_HEADER;
use super::{Direction, Peer};
use rhip_federation::{
    negotiate, route, seal, verify_receipt, Hello, Payload, RetentionPolicy, RouteInfo, WireChange, GENESIS,
    SCHEMA_VERSIONS,
};
use rhip_store::{ChangeRecord, NewOutboundBatch, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-link sending state that lives in memory (the rest is in the store).
struct LinkState {
    /// The peer's retention policy, learnt from its hello.
    policy: Option<RetentionPolicy>,
    /// Not before this instant (backoff after failures).
    next_attempt: Option<Instant>,
    /// Consecutive failures, for the backoff.
    failures: u32,
}

/// Batches a link cuts ahead of the peer's receipts: one in flight, the next
/// cut meanwhile. More would only grow what a refused batch makes resent.
pub const CUT_AHEAD: usize = 2;

/// The pusher of every link of a node.
pub struct Pusher {
    context: Arc<FederationContext>,
    links: Mutex<HashMap<String, LinkState>>,
    busy: Mutex<()>,
    retry_base: Duration,
    retry_max: Duration,
}

/// What one push round did on one link, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Batches acknowledged.
    pub acked: u64,
    /// Changes in those batches.
    pub changes: u64,
}

/// Why a push failed; the text goes to the link's last error.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Database trouble.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The peer could not be reached or the connection broke.
    #[error("peer unreachable: {0}")]
    Transport(String),
    /// The peer refused (its problem detail is quoted).
    #[error("peer refused batch {seq}: {detail}")]
    Refused {
        /// Batch sequence refused.
        seq: u64,
        /// Stable code from the peer.
        code: String,
        /// The peer's explanation.
        detail: String,
        /// The sequence the peer expects, for gaps.
        expected_seq: Option<u64>,
    },
    /// The peer's receipt or hello did not check out.
    #[error("{0}")]
    Protocol(String),
}

impl Pusher {
    /// A pusher over the context's links (their agents pin the peer's region).
    pub fn new(context: Arc<FederationContext>, retry_base: Duration, retry_max: Duration) -> Result<Pusher, String> {
        let links = context
            .peers
            .iter()
            .map(|peer| (peer.region.to_string(), LinkState { policy: None, next_attempt: None, failures: 0 }))
            .collect();
        let pusher = Pusher { context, links: Mutex::new(links), busy: Mutex::new(()), retry_base, retry_max };
        pusher
            .context
            .store
            .write(|tx| {
                for peer in &pusher.context.peers {
                    tx.ensure_link(peer.region.as_str(), peer.direction.as_str())?;
                }
                Ok(())
            })
            .map_err(|e| format!("federation links: {e}"))?;
        Ok(pusher)
    }

    /// One round over every link: send what is pending until the link is
    /// drained or fails. Overlapping rounds skip (the scheduler fires every
    /// second). Blocking: run on the blocking pool.
    pub fn round(&self) -> HashMap<String, Result<PushReport, String>> {
        let mut results = HashMap::new();
        let Ok(_guard) = self.busy.try_lock() else {
            return results;
        };
        // Several processes of one node over PostgreSQL: one pushes, the others skip.
        let _singleton = match self.context.store.try_singleton("rhip:federation:push") {
            Ok(Some(singleton)) => singleton,
            Ok(None) => return results,
            Err(error) => {
                tracing::warn!(%error, "federation push lock not taken");
                return results;
            }
        };
        for peer in &self.context.peers {
            if self.waiting(peer) {
                continue;
            }
            let result = self.drain(peer);
            self.settle(peer, &result);
            results.insert(peer.region.to_string(), result.map_err(|e| e.to_string()));
        }
        results
    }

    fn waiting(&self, peer: &Peer) -> bool {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.get(peer.region.as_str()).and_then(|l| l.next_attempt).is_some_and(|t| Instant::now() < t)
    }

    fn settle(&self, peer: &Peer, result: &Result<PushReport, PushError>) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let Some(link) = links.get_mut(peer.region.as_str()) else { return };
        match result {
            Ok(_) => {
                link.failures = 0;
                link.next_attempt = None;
            }
            Err(error) => {
                link.failures = link.failures.saturating_add(1);
                let delay = backoff(self.retry_base, self.retry_max, link.failures);
                link.next_attempt = Some(Instant::now() + delay);
                tracing::warn!(peer = %peer.region, %error, retry_in_ms = delay.as_millis() as u64, "federation push failed");
                let message = error.to_string();
                if let Err(error) = self.context.store.write(|tx| tx.note_link_failure(peer.region.as_str(), &message))
                {
                    tracing::warn!(%error, "link failure not recorded");
                }
            }
        }
    }

    fn agent(&self, peer: &Peer) -> Option<ureq::Agent> {
        self.context.agents.get(&peer.region).cloned()
    }

    /// The parent's retention policy, asked once per process (hello).
    fn parent_policy(&self) -> Result<Option<RetentionPolicy>, PushError> {
        let Some(parent) = self.context.parent() else { return Ok(None) };
        {
            let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(policy) = links.get(parent.region.as_str()).and_then(|l| l.policy) {
                return Ok(Some(policy));
            }
        }
        let policy = Some(self.hello(parent)?.retention);
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = links.get_mut(parent.region.as_str()) {
            link.policy = policy;
        }
        Ok(policy)
    }

    /// The nightly comparison with every peer: what this node believes the
    /// peer acknowledged against what the peer says it applied. A peer that
    /// lost batches (restored from a backup) gets them again: the link is
    /// rewound and the kept batches are resent byte for byte. A forked
    /// chain is reported on the link for an operator. Blocking.
    pub fn reconcile(&self) -> HashMap<String, Result<String, String>> {
        let mut results = HashMap::new();
        let Ok(_guard) = self.busy.lock() else { return results };
        let _singleton = match self.context.store.try_singleton("rhip:federation:push") {
            Ok(Some(singleton)) => singleton,
            _ => return results,
        };
        for peer in &self.context.peers {
            let result = self.reconcile_link(peer).and_then(|report| {
                let pruned = self
                    .context
                    .store
                    .write(|tx| tx.prune_acked_batches(peer.region.as_str(), self.context.keep_acked_batches))
                    .map_err(|e| e.to_string())?;
                Ok(format!("{report}; {pruned} acknowledged batches pruned"))
            });
            match &result {
                Ok(report) => tracing::info!(peer = %peer.region, %report, "federation link reconciled"),
                Err(error) => {
                    tracing::warn!(peer = %peer.region, %error, "federation link reconciliation failed");
                    let message = format!("reconciliation: {error}");
                    if let Err(error) =
                        self.context.store.write(|tx| tx.note_link_failure(peer.region.as_str(), &message))
                    {
                        tracing::warn!(%error, "reconciliation failure not recorded");
                    }
                }
            }
            results.insert(peer.region.to_string(), result);
        }
        results
    }

    fn reconcile_link(&self, peer: &Peer) -> Result<String, String> {
        let agent = self.agent(peer).ok_or_else(|| format!("no link to {}", peer.region))?;
        let theirs: serde_json::Value = agent
            .get(&format!("{}/federation/v1/reconcile", peer.url))
            .call()
            .map_err(|e| transport(e).to_string())?
            .into_json()
            .map_err(|e| format!("reconcile answer from {}: {e}", peer.region))?;
        let their_seq = theirs["last_seq"].as_i64().ok_or("reconcile answer has no last_seq")?;
        let their_digest = theirs["last_digest"].as_str().ok_or("reconcile answer has no last_digest")?.to_string();
        let received = theirs["received_changes"].as_i64().unwrap_or(0);
        let code = peer.region.as_str();
        self.context
            .store
            .write(|tx| {
                let link = tx.link(code)?.ok_or_else(|| rhip_store::StoreError::NotFound(format!("link {code}")))?;
                let acked = tx.acked_change_count(code)?;
                if their_seq < link.last_acked_seq {
                    let ours_there = tx.outbound_digest(code, their_seq)?;
                    if their_seq > 0 && ours_there.as_deref() != Some(their_digest.as_str()) {
                        return Ok(Err(format!(
                            "{code} holds batch {their_seq} with digest {their_digest}, which this node did not send"
                        )));
                    }
                    let resent = tx.rewind_link(code, their_seq)?;
                    return Ok(Ok(format!(
                        "{code} had applied batches up to {their_seq} of {} acknowledged; {resent} batches will be resent",
                        link.last_acked_seq
                    )));
                }
                if their_seq == link.last_acked_seq && their_digest != link.last_acked_digest {
                    return Ok(Err(format!(
                        "chains differ at batch {their_seq}: {code} holds digest {their_digest}, this node sent {}",
                        link.last_acked_digest
                    )));
                }
                Ok(Ok(format!(
                    "in step at batch {their_seq}; {acked} changes acknowledged, {received} received there"
                )))
            })
            .map_err(|e| e.to_string())?
    }

    /// Asks a peer who it is and which batch schema versions it speaks.
    pub fn hello(&self, peer: &Peer) -> Result<Hello, PushError> {
        let agent = self.agent(peer).ok_or_else(|| PushError::Protocol(format!("no link to {}", peer.region)))?;
        let response = agent.get(&format!("{}/federation/v1/hello", peer.url)).call().map_err(transport)?;
        let hello: Hello =
            response.into_json().map_err(|e| PushError::Protocol(format!("hello from {}: {e}", peer.region)))?;
        negotiate(SCHEMA_VERSIONS, &hello.schema_versions).map_err(|e| PushError::Protocol(e.to_string()))?;
        Ok(hello)
    }

    /// Sends unacknowledged batches, then cuts and sends new ones, until
    /// nothing is pending for this peer.
    fn drain(&self, peer: &Peer) -> Result<PushReport, PushError> {
        let mut report = PushReport::default();
        let parent_policy = match peer.direction {
            Direction::Parent => self.parent_policy()?,
            Direction::Child => None,
        };
        loop {
            let unacked = self.context.store.read(|tx| tx.unacked_batches(peer.region.as_str(), 16))?;
            if unacked.is_empty() {
                if !self.cut(peer, parent_policy.as_ref())? {
                    return Ok(report);
                }
                continue;
            }
            let count = unacked.len();
            for (index, batch) in unacked.into_iter().enumerate() {
                let seq = u64::try_from(batch.seq).unwrap_or(0);
                // While the last batch known is in flight (the peer verifying
                // and applying it), the next one is cut: the link then runs at
                // its slower side's rate rather than at the sum of both.
                let cut_ahead = index + 1 == count && count < CUT_AHEAD;
                let (sent, cut) = std::thread::scope(|scope| {
                    let cutter = cut_ahead.then(|| scope.spawn(|| self.cut(peer, parent_policy.as_ref())));
                    let sent = self.send(peer, seq, &batch.manifest, &batch.payload, &batch.digest);
                    let cut = cutter.map(|handle| {
                        handle.join().unwrap_or_else(|_| Err(PushError::Protocol("the cutting thread panicked".into())))
                    });
                    (sent, cut)
                });
                let region = peer.region.as_str();
                if sent.is_err() {
                    let noted = self.context.store.write(|tx| {
                        tx.mark_batch_sent(region, batch.seq)?;
                        tx.note_link_sent(region)
                    });
                    if let Err(error) = noted {
                        tracing::warn!(%error, "batch send not recorded");
                    }
                }
                match sent {
                    Ok((receipt, parked)) => {
                        // Sent and acknowledged in one transaction: one commit per batch.
                        self.context.store.write(|tx| {
                            tx.acknowledge_sent_batch(region, batch.seq, &batch.digest, &receipt, parked)
                        })?;
                        report.acked += 1;
                        report.changes += u64::try_from(batch.record_count).unwrap_or(0);
                    }
                    Err(PushError::Refused { expected_seq: Some(expected), .. }) if expected > seq => {
                        // The peer already holds this batch and more (our ack was lost):
                        // its replay answers carry receipts, so ask from `expected` on.
                        return Err(PushError::Protocol(format!(
                            "peer {} expects batch {expected} but batch {seq} is not acknowledged here",
                            peer.region
                        )));
                    }
                    Err(error) => return Err(error),
                }
                // A batch cut ahead is stored like any other: a failure here
                // only stops this round.
                if let Some(Err(error)) = cut {
                    return Err(error);
                }
            }
        }
    }

    /// Cuts the next batch for `peer` from the change log; false when nothing
    /// more is pending.
    fn cut(&self, peer: &Peer, parent_policy: Option<&RetentionPolicy>) -> Result<bool, PushError> {
        let context = &self.context;
        let links = context.links();
        let limit = i64::try_from(context.batch_size).unwrap_or(1000);
        let cut = context.store.write(|tx| {
            cut_batch(tx, &context.key, context.me, &links, peer.region, parent_policy, limit, &mut |_| {})
        })?;
        Ok(cut.is_some())
    }

    /// Posts one batch and checks the receipt; returns the receipt JWS and
    /// how many changes the peer parked.
    fn send(
        &self,
        peer: &Peer,
        seq: u64,
        manifest: &str,
        payload: &[u8],
        digest: &str,
    ) -> Result<(String, i64), PushError> {
        let agent = self.agent(peer).ok_or_else(|| PushError::Protocol(format!("no link to {}", peer.region)))?;
        let mut request = agent
            .post(&format!("{}/federation/v1/batches", peer.url))
            .set(MANIFEST_HEADER, manifest)
            .set("content-type", "application/json");
        if let Some(announcement) = &self.context.announcement {
            request = request.set(ANNOUNCEMENT_HEADER, announcement);
        }
        let result = request.send_bytes(payload);
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => {
                let body: serde_json::Value = response.into_json().unwrap_or_default();
                return Err(PushError::Refused {
                    seq,
                    code: body["code"].as_str().unwrap_or("unknown").to_string(),
                    detail: body["detail"].as_str().unwrap_or("no detail").to_string(),
                    expected_seq: body["expected_seq"].as_u64(),
                });
            }
            Err(error) => return Err(transport(error)),
        };
        let body: serde_json::Value =
            response.into_json().map_err(|e| PushError::Protocol(format!("receipt from {}: {e}", peer.region)))?;
        let receipt = body["receipt"]
            .as_str()
            .ok_or_else(|| PushError::Protocol(format!("{} answered without a receipt", peer.region)))?
            .to_string();
        let verify = || {
            let keys = self.context.peer_keys.read().unwrap_or_else(|p| p.into_inner());
            verify_receipt(&keys, peer.region.as_str(), &receipt, digest, seq)
        };
        let checked = match (verify(), body["announcement"].as_str()) {
            (Err(refusal), Some(announcement)) if refusal.code() == "unknown_key" => {
                self.context.learn_key(peer.region, announcement).map_err(PushError::Protocol)?;
                verify()
            }
            (checked, _) => checked,
        }
        .map_err(|e| PushError::Protocol(format!("receipt from {} refused: {}", peer.region, e.message())))?;
        if !checked.parked.is_empty() {
            tracing::warn!(peer = %peer.region, seq, parked = checked.parked.len(), "peer parked changes");
        }
        Ok((receipt, i64::try_from(checked.parked.len()).unwrap_or(i64::MAX)))
    }
}

/// A step of [`cut_batch`], for a caller that times them (the bench).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutPhase {
    /// The change-log rows after the link's cursor are read.
    Selected,
    /// They are routed and turned into wire changes.
    Wired,
    /// The batch is sealed and signed.
    Sealed,
}

/// Cuts the next batch for `peer` in `tx`, as the pusher does: the change-log
/// rows after the link's cut cursor that the routing rules send there (what
/// residents keep at home does not go up), sealed, signed and stored. `None`
/// when nothing is pending; else the ids of the changes sealed (empty when
/// the rows examined were not for this peer and only the cursor moved on).
#[expect(clippy::too_many_arguments, reason = "the link's whole context, shared by the pusher and the bench")]
pub fn cut_batch(
    tx: &mut rhip_store::Tx<'_>,
    key: &rhip_auth::NodeKey,
    me: rhip_core::RegionCode,
    links: &rhip_federation::Links,
    peer: rhip_core::RegionCode,
    parent_policy: Option<&RetentionPolicy>,
    limit: i64,
    on_phase: &mut dyn FnMut(CutPhase),
) -> Result<Option<Vec<String>>, StoreError> {
    let peer_code = peer.as_str();
    let link = tx.link(peer_code)?.ok_or_else(|| StoreError::NotFound(format!("link {peer_code}")))?;
    let changes = tx.changes_for_link(peer_code, link.cut_seq, limit)?;
    on_phase(CutPhase::Selected);
    let Some(last) = changes.last().map(|c| c.seq) else { return Ok(None) };
    // Residents' consent: what they keep in the home county does not go up.
    let kept_home = match links.parent == Some(peer) {
        true => tx.kept_at_home(&changes, |home| rhip_federation::is_destination(links, home))?,
        false => Default::default(),
    };
    let sent = changes.iter().filter(|c| !kept_home.contains(&c.seq));
    let wire = wire_changes(tx, links, parent_policy, peer, sent)?;
    on_phase(CutPhase::Wired);
    if wire.is_empty() {
        tx.advance_cut(peer_code, last)?;
        return Ok(Some(Vec::new()));
    }
    let seq = link.next_seq;
    let prev_digest = if seq <= 1 {
        GENESIS.to_string()
    } else {
        tx.outbound_digest(peer_code, seq - 1)?
            .ok_or_else(|| StoreError::Corrupt(format!("batch {} to {peer_code} is gone", seq - 1)))?
    };
    let payload = Payload { changes: wire };
    let batch = seal(key, me.as_str(), peer_code, u64::try_from(seq).unwrap_or(1), &prev_digest, &payload)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    on_phase(CutPhase::Sealed);
    tx.save_outbound_batch(
        &NewOutboundBatch {
            peer: peer_code.to_string(),
            seq,
            batch_id: batch.batch_id.clone(),
            digest: batch.digest(),
            manifest: batch.manifest_jws.clone(),
            payload: batch.payload.clone(),
            record_count: i64::try_from(payload.changes.len()).unwrap_or(0),
            first_change_seq: changes.first().map_or(last, |c| c.seq),
            last_change_seq: last,
        },
        last,
    )?;
    Ok(Some(payload.changes.into_iter().map(|c| c.id).collect()))
}

/// A transport failure in words for the link's last error.
pub fn transport(error: ureq::Error) -> PushError {
    PushError::Transport(match error {
        ureq::Error::Transport(transport) => transport.to_string(),
        other => other.to_string(),
    })
}

/// Exponential backoff with ±50 % jitter, so that many children retrying a
/// parent that came back do not arrive in step.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    let mut random = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let fraction = f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
    full.mul_f64(0.5 + fraction * 0.5)
}

/// The change-log rows of a cut that `route` sends to `peer`, as wire
/// changes: a document's bytes attached where the route carries content
/// (read from the store when the row has none), stripped where it does not.
pub fn wire_changes<'c>(
    tx: &mut rhip_store::Tx<'_>,
    links: &rhip_federation::Links,
    parent_policy: Option<&RetentionPolicy>,
    peer: rhip_core::RegionCode,
    changes: impl Iterator<Item = &'c ChangeRecord>,
) -> Result<Vec<WireChange>, StoreError> {
    let mut wire = Vec::new();
    for change in changes {
        let info = RouteInfo {
            entity: &change.entity,
            home_region: change.home_region.as_deref(),
            received_from: change.received_from.as_deref(),
            origin_region: &change.origin_region,
        };
        let Some(route) = route(links, &info, parent_policy).into_iter().find(|r| r.peer == peer) else {
            continue;
        };
        let mut change = to_wire(change)?;
        if change.entity == "document" && change.op == "create" {
            change = if route.content {
                match change.has_content() {
                    true => change,
                    false => match tx.document_content(&change.entity_id) {
                        Ok(bytes) => change.with_content(&bytes),
                        Err(StoreError::NotFound(_)) => change,
                        Err(error) => return Err(error),
                    },
                }
            } else {
                change.without_content()
            };
        }
        wire.push(change);
    }
    Ok(wire)
}

/// A change-log row as it travels.
pub fn to_wire(change: &ChangeRecord) -> Result<WireChange, StoreError> {
    Ok(WireChange {
        id: change.id.clone(),
        hlc: change.hlc.clone(),
        origin_region: change.origin_region.clone(),
        entity: change.entity.clone(),
        entity_id: change.entity_id.clone(),
        op: change.op.clone(),
        person_id: change.person_id.clone(),
        home_region: change.home_region.clone(),
        payload: rhip_core::JsonText::from_text(change.payload.clone())
            .map_err(|e| StoreError::Corrupt(format!("payload of change {}: {e}", change.id)))?,
    })
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_per_failure_with_jitter_and_stops_at_the_maximum() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(60));
        for failures in 1..=12u32 {
            let full = base.saturating_mul(1 << (failures - 1)).min(max);
            for _ in 0..20 {
                let delay = backoff(base, max, failures);
                assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?} outside [{:?}, {full:?}]", full / 2);
            }
        }
        assert!(backoff(base, max, 40) <= max, "no overflow for long outages");
    }
}
