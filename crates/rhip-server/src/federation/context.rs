//! What the federation listener and the pusher share: the node's keys, its
//! peers' keys, its retention policy, and the receiving side of a batch.

use super::listener::problem;
use super::{Direction, Peer};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use rhip_auth::{NodeKey, PeerKeys};
use rhip_core::RegionCode;
use rhip_federation::{
    check_sequence, is_destination, sign_receipt, verify_batch, BatchRefusal, DataClass, Hello, Links, Parked, Receipt,
    ReceiptStatus, RetentionPolicy, Sequencing, WireChange, SCHEMA_VERSIONS,
};
use rhip_store::{ApplyOutcome, NewAuditEntry, RemoteChange, RemoteKeep, Store, StoreError};
use std::sync::RwLock;

/// The federation side of a node.
pub struct FederationContext {
    /// The node's database.
    pub store: Store,
    /// This node's region.
    pub me: RegionCode,
    /// Signs batches and receipts.
    pub key: NodeKey,
    /// Keys of the parent and children, by region (several during a rotation).
    pub peer_keys: RwLock<PeerKeys>,
    /// What this node keeps of each data class.
    pub policy: RetentionPolicy,
    /// Parent and children.
    pub peers: Vec<Peer>,
    /// Most changes per batch.
    pub batch_size: usize,
    /// Acknowledged batches kept per link after reconciliation.
    pub keep_acked_batches: i64,
    /// One mutual-TLS HTTP client per peer, pinned to the peer's region.
    pub agents: std::collections::HashMap<RegionCode, ureq::Agent>,
    /// This node's announcement of its current key, signed by its previous
    /// one (`keys/announcement.jws`, written by `rhip federation rotate-key`);
    /// sent with every batch and receipt so peers learn the new key.
    pub announcement: Option<String>,
    /// Where peers' keys are kept; keys learnt from announcements are added.
    pub trust_dir: std::path::PathBuf,
    /// Woken when a batch has been applied here, so that the pusher passes
    /// its changes on at once rather than at its next scheduled round: a
    /// change crossing three hops otherwise waits up to a push interval at
    /// every node on its way.
    pub relay: tokio::sync::Notify,
}

/// The header that carries a key announcement along with a batch.
pub const ANNOUNCEMENT_HEADER: &str = "x-rhip-key-announcement";

/// Most hops a federated document fetch may take (the tree is four tiers deep).
pub const MAX_HOPS: u32 = 8;

/// Why a federated fetch found nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No node on the way toward the holder has the bytes.
    #[error("{0}")]
    NotFound(String),
    /// A link on the way failed.
    #[error("{0}")]
    Unreachable(String),
    /// The holder withholds the document by the resident's consent.
    #[error("{0}")]
    Withheld(String),
}

/// The problem code with which a holder refuses a fetch by consent.
pub const CONSENT_WITHHELD: &str = "consent_withheld";

/// The user a node fetches a document for, as the holder needs to know them:
/// for its audit, and to apply the resident's consent to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// Who, in one line (`role subject@node`).
    pub user: String,
    /// The user's facility, when they are a clinician or hospital system.
    pub facility: Option<String>,
    /// The reason given, when a clinician broke the glass.
    pub break_glass: Option<String>,
    /// The region of the node the user asked (where the bytes will be shown).
    pub node: Option<RegionCode>,
}

impl OnBehalfOf {
    /// The viewer consent sees: staff of a facility, or an authority.
    pub fn viewer(&self) -> rhip_core::Viewer {
        match &self.facility {
            Some(facility) => {
                rhip_core::Viewer::Staff { facility: facility.clone(), break_glass: self.break_glass.is_some() }
            }
            None => rhip_core::Viewer::Authority,
        }
    }

    /// Whether the bytes will be shown at the home county node of a person
    /// living in `home_region`: the asking node is that county's (or, for a
    /// county without a node, no node is taken as home: consent is kept).
    pub fn at_home(&self, home_region: &str) -> bool {
        self.node.is_some_and(|node| node.as_str() == home_region)
    }
}

/// The answer to a pushed batch.
pub enum Answer {
    /// 200 with the signed receipt (applied now, or the stored one for a replay).
    Receipt(String),
    /// A refusal, with its status, stable code, message and extra fields.
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// Stable machine code (`gap`, `bad_signature`, `digest`, ...).
        code: String,
        /// Human message.
        detail: String,
        /// Extra fields (`expected_seq`, versions).
        extra: serde_json::Value,
    },
}

impl Answer {
    /// The HTTP response for the peer; a receipt carries this node's key
    /// announcement during a rotation.
    pub fn into_response(self, announcement: Option<&str>) -> HttpResponse {
        match self {
            Answer::Receipt(receipt) => {
                HttpResponse::Ok().json(serde_json::json!({ "receipt": receipt, "announcement": announcement }))
            }
            Answer::Refused { status, code, detail, extra } => problem(status, &code, detail, extra),
        }
    }

    fn refused(status: StatusCode, code: &str, detail: String, extra: serde_json::Value) -> Answer {
        Answer::Refused { status, code: code.to_string(), detail, extra }
    }
}

/// A wire change as the store's plain struct.
pub fn to_remote(change: &WireChange) -> RemoteChange {
    RemoteChange {
        id: change.id.clone(),
        hlc: change.hlc.clone(),
        origin_region: change.origin_region.clone(),
        entity: change.entity.clone(),
        entity_id: change.entity_id.clone(),
        op: change.op.clone(),
        person_id: change.person_id.clone(),
        home_region: change.home_region.clone(),
        payload: change.payload.clone(),
    }
}

/// The end of a received batch's transaction, once its changes are applied:
/// signs the receipt, records the batch (for replays and the chain) and
/// audits it. Returns the signed receipt.
pub fn record_applied_batch(
    tx: &mut rhip_store::Tx<'_>,
    key: &NodeKey,
    peer: RegionCode,
    batch: &rhip_federation::VerifiedBatch,
    applied: u64,
    parked: Vec<Parked>,
) -> Result<String, StoreError> {
    let seq = batch.manifest.seq;
    let detail =
        format!("batch {seq}: {} changes, {applied} applied, {} parked", batch.payload.changes.len(), parked.len());
    let receipt = Receipt::for_batch(batch, ReceiptStatus::Applied, applied, parked);
    let signed = sign_receipt(key, &receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.record_inbound_batch(
        peer.as_str(),
        i64::try_from(seq).unwrap_or(i64::MAX),
        &batch.manifest.batch_id,
        &batch.digest,
        &signed,
    )?;
    tx.append_audit(&NewAuditEntry {
        actor: format!("node:{peer}"),
        actor_region: Some(peer.to_string()),
        action: "federation_apply".into(),
        resource_type: "batch".into(),
        resource_id: Some(batch.manifest.batch_id.clone()),
        outcome: "success".into(),
        detail: Some(detail),
        ..NewAuditEntry::default()
    })?;
    Ok(signed)
}

/// Applies the changes of a verified batch in the caller's transaction,
/// keeping what `policy` keeps of each (and audit entries only where their
/// way ends, the person's home node); returns how many were applied and
/// the ones parked with their reasons (for the receipt).
pub fn apply_changes(
    tx: &mut rhip_store::Tx<'_>,
    policy: &RetentionPolicy,
    links: &Links,
    peer: RegionCode,
    changes: &[WireChange],
) -> Result<(u64, Vec<Parked>), StoreError> {
    let remote: Vec<RemoteChange> = changes.iter().map(to_remote).collect();
    let keep = |change: &RemoteChange| match DataClass::of(&change.entity) {
        Some(DataClass::Audit) => match change.home_region.as_deref().is_some_and(|home| is_destination(links, home)) {
            true => RemoteKeep::Full,
            false => RemoteKeep::None,
        },
        _ => match policy.keep_entity(&change.entity) {
            rhip_federation::Keep::Full => RemoteKeep::Full,
            rhip_federation::Keep::Index => RemoteKeep::Index,
            rhip_federation::Keep::None => RemoteKeep::None,
        },
    };
    let mut applied = 0u64;
    let mut parked = Vec::new();
    for (change, outcome) in remote.iter().zip(tx.apply_remote_changes(&remote, peer.as_str(), keep)?) {
        match outcome {
            ApplyOutcome::Applied => applied += 1,
            ApplyOutcome::AlreadyApplied => {}
            ApplyOutcome::Parked(reason) => parked.push(Parked { change_id: change.id.clone(), reason }),
        }
    }
    Ok((applied, parked))
}

fn status_of(refusal: &BatchRefusal) -> StatusCode {
    match refusal.code() {
        "version" => StatusCode::BAD_REQUEST,
        "bad_signature" | "unknown_key" | "wrong_source" | "wrong_target" => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl FederationContext {
    /// Learns a peer's new signing key from its announcement, which must be
    /// signed by a key already trusted for that same peer; the key is kept
    /// in the trust folder (so a restart keeps it) and audited. The old key
    /// stays trusted: both are accepted during the overlap.
    pub fn learn_key(&self, peer: RegionCode, announcement: &str) -> Result<String, String> {
        let mut keys = self.peer_keys.write().unwrap_or_else(|p| p.into_inner());
        let mut trial = keys.clone();
        let kid = trial.accept_announcement(announcement).map_err(|e| format!("key announcement refused: {e}"))?;
        if trial.region_of(&kid) != Some(peer.as_str()) {
            return Err(format!("key announcement from {peer} is for another region"));
        }
        let claims: rhip_auth::KeyAnnouncement = announcement
            .split('.')
            .nth(1)
            .and_then(|part| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()
            })
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| "key announcement claims unreadable".to_string())?;
        let raw = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(&claims.new_public_key)
                .map_err(|e| format!("key announcement: {e}"))?
        };
        let path = self.trust_dir.join(format!("{peer}.{kid}.pub.pem"));
        std::fs::write(&path, rhip_auth::public_key_to_pem(&raw))
            .map_err(|e| format!("cannot keep the new key of {peer} in {}: {e}", path.display()))?;
        *keys = trial;
        drop(keys);
        let audited = self.store.write(|tx| {
            tx.append_audit(&NewAuditEntry {
                actor: format!("node:{peer}"),
                actor_region: Some(peer.to_string()),
                action: "federation_key".into(),
                resource_type: "signing_key".into(),
                resource_id: Some(kid.clone()),
                outcome: "success".into(),
                detail: Some(format!("new signing key of {peer} trusted, announced by its previous key")),
                ..NewAuditEntry::default()
            })
        });
        if let Err(error) = audited {
            tracing::warn!(%error, "key rotation not audited");
        }
        tracing::info!(%peer, %kid, "learnt a peer's new signing key");
        Ok(kid)
    }

    /// What `GET /federation/v1/hello` answers.
    pub fn hello(&self) -> Hello {
        Hello {
            region: self.me.to_string(),
            tier: self.me.tier().as_str().to_string(),
            schema_versions: SCHEMA_VERSIONS.to_vec(),
            key_ids: vec![self.key.key_id().to_string()],
            retention: self.policy,
            key_announcement: self.announcement.clone(),
        }
    }

    /// The peer with this region, if it is one.
    pub fn peer(&self, region: RegionCode) -> Option<&Peer> {
        self.peers.iter().find(|p| p.region == region)
    }

    /// The parent peer.
    pub fn parent(&self) -> Option<&Peer> {
        self.peers.iter().find(|p| p.direction == Direction::Parent)
    }

    /// This node's place in the tree, as routing sees it.
    pub fn links(&self) -> Links {
        Links {
            me: self.me,
            parent: self.parent().map(|p| p.region),
            children: self.peers.iter().filter(|p| p.direction == Direction::Child).map(|p| p.region).collect(),
        }
    }

    /// The peer one hop toward `region`: the child whose subtree holds it,
    /// else the parent.
    pub fn next_hop(&self, region: RegionCode) -> Option<&Peer> {
        self.peers
            .iter()
            .filter(|p| p.direction == Direction::Child && p.region.contains(&region))
            .max_by_key(|p| p.region.jurisdiction_prefix().len())
            .or_else(|| if self.me.contains(&region) { None } else { self.parent() })
    }

    /// Fetches a document's original bytes from the node that holds them,
    /// hop by hop over the federation links (blocking). `on_behalf_of`
    /// names the user the requesting node authorised, for the holder's audit.
    pub fn fetch_document(
        &self,
        id: &str,
        holder: RegionCode,
        on_behalf_of: &OnBehalfOf,
        hops: u32,
        not_via: Option<RegionCode>,
    ) -> Result<Vec<u8>, FetchError> {
        if hops >= MAX_HOPS {
            return Err(FetchError::NotFound(format!("document {id}: too many hops toward {holder}")));
        }
        let Some(peer) = self.next_hop(holder).filter(|p| Some(p.region) != not_via) else {
            return Err(FetchError::NotFound(format!("document {id}: no link leads toward its holder {holder}")));
        };
        let agent = self
            .agents
            .get(&peer.region)
            .ok_or_else(|| FetchError::Unreachable(format!("no link to {}", peer.region)))?;
        let mut request = agent
            .get(&format!("{}/federation/v1/documents/{id}", peer.url))
            .set("x-rhip-holder", holder.as_str())
            .set("x-rhip-on-behalf-of", &on_behalf_of.user)
            .set("x-rhip-hops", &(hops + 1).to_string());
        if let Some(facility) = &on_behalf_of.facility {
            request = request.set("x-rhip-facility", facility);
        }
        if let Some(reason) = &on_behalf_of.break_glass {
            request = request.set("x-rhip-break-glass", reason);
        }
        if let Some(node) = &on_behalf_of.node {
            request = request.set("x-rhip-requester", node.as_str());
        }
        let answer = request.call();
        match answer {
            Ok(response) => {
                let mut bytes = Vec::new();
                let reader = response.into_reader();
                std::io::Read::read_to_end(&mut std::io::Read::take(reader, 64 << 20), &mut bytes)
                    .map_err(|e| FetchError::Unreachable(format!("document {id} from {}: {e}", peer.region)))?;
                Ok(bytes)
            }
            Err(ureq::Error::Status(404, response)) => {
                let body: serde_json::Value = response.into_json().unwrap_or_default();
                Err(FetchError::NotFound(body["detail"].as_str().unwrap_or("not found").to_string()))
            }
            Err(ureq::Error::Status(403, response)) => {
                let body: serde_json::Value = response.into_json().unwrap_or_default();
                let detail = body["detail"].as_str().unwrap_or_default().to_string();
                match body["code"].as_str() {
                    Some(CONSENT_WITHHELD) => Err(FetchError::Withheld(detail)),
                    _ => Err(FetchError::Unreachable(format!("{} refused the fetch of {id}: {detail}", peer.region))),
                }
            }
            Err(ureq::Error::Status(status, _)) => {
                Err(FetchError::Unreachable(format!("{} answered {status} for document {id}", peer.region)))
            }
            Err(error) => Err(FetchError::Unreachable(format!("{}: {error}", peer.region))),
        }
    }

    /// Serves a peer's fetch: the bytes if held here, else the next hop's
    /// answer. Audited as a read on behalf of the named user; the holder
    /// applies the resident's consent to that user, as for a read of its own.
    pub fn serve_document(
        &self,
        peer: RegionCode,
        id: &str,
        holder: Option<RegionCode>,
        on_behalf_of: &OnBehalfOf,
        hops: u32,
    ) -> Result<Vec<u8>, FetchError> {
        let local = self.store.write(|tx| {
            let content = match tx.document_content(id) {
                Ok(bytes) => Some(bytes),
                Err(StoreError::NotFound(_)) => None,
                Err(error) => return Err(error),
            };
            let holder_here = tx.document_holder(id)?;
            let person = tx.document_person(id)?;
            let mut entry = NewAuditEntry {
                actor: format!("node:{peer}"),
                actor_region: Some(peer.to_string()),
                facility_code: on_behalf_of.facility.clone(),
                action: "federated_read".into(),
                resource_type: "document".into(),
                resource_id: Some(id.to_string()),
                person_id: person.clone(),
                purpose: on_behalf_of.break_glass.as_ref().map(|reason| format!("break_glass: {reason}")),
                outcome: if content.is_some() { "success" } else { "forwarded" }.into(),
                detail: Some(format!("on behalf of {}", on_behalf_of.user)),
                ..NewAuditEntry::default()
            };
            let mut withheld = false;
            if let (Some(_), Some(person), rhip_store::Access::Granted(record)) =
                (&content, &person, tx.get_document(&rhip_store::Scope::Node, id)?)
            {
                let at_home = on_behalf_of.at_home(&tx.home_region_of(person)?);
                let lens = crate::consent::Lens::read(tx, person, &on_behalf_of.viewer(), at_home)?;
                if let Some(note) = lens.audit_note() {
                    entry.detail = Some(format!("on behalf of {}; {note}", on_behalf_of.user));
                }
                if !lens.shows_document(&record) {
                    withheld = true;
                    entry.outcome = "denied".into();
                    entry.http_status = Some(403);
                }
            }
            tx.append_audit(&entry)?;
            Ok((if withheld { None } else { content }, holder_here, withheld))
        });
        match local {
            Ok((_, _, true)) => Err(FetchError::Withheld(crate::consent::withheld_error("document").to_string())),
            Ok((Some(bytes), _, _)) => Ok(bytes),
            Ok((None, holder_here, _)) => {
                let holder = holder_here.and_then(|h| RegionCode::parse(&h).ok()).or(holder).ok_or_else(|| {
                    FetchError::NotFound(format!("document {id} is not held at {} and names no holder", self.me))
                })?;
                if holder == self.me {
                    return Err(FetchError::NotFound(format!("document {id} is not held at {}", self.me)));
                }
                self.fetch_document(id, holder, on_behalf_of, hops, Some(peer))
            }
            Err(error) => Err(FetchError::Unreachable(format!("store: {error}"))),
        }
    }

    /// Verifies, sequences and applies one pushed batch (blocking: call on
    /// the blocking pool). The whole batch is applied in one transaction;
    /// business-rule failures of single changes are parked, not fatal.
    pub fn receive(&self, peer: RegionCode, manifest_jws: &str, payload: &[u8], announcement: Option<&str>) -> Answer {
        let verify = || {
            let keys = self.peer_keys.read().unwrap_or_else(|p| p.into_inner());
            verify_batch(&keys, peer.as_str(), self.me.as_str(), manifest_jws, payload)
        };
        let verified = match (verify(), announcement) {
            (Err(refusal), Some(announcement)) if refusal.code() == "unknown_key" => {
                match self.learn_key(peer, announcement) {
                    Ok(_) => verify(),
                    Err(problem) => {
                        tracing::warn!(%peer, %problem, "key announcement not accepted");
                        Err(refusal)
                    }
                }
            }
            (verified, _) => verified,
        };
        let batch = match verified {
            Ok(batch) => batch,
            Err(refusal) => {
                let mut extra = serde_json::json!({});
                if let BatchRefusal::Version { theirs, ours } = &refusal {
                    extra = serde_json::json!({ "ours": ours, "theirs": theirs });
                }
                self.audit_refusal(peer, refusal.code(), &refusal.message(), None);
                return Answer::refused(status_of(&refusal), refusal.code(), refusal.message(), extra);
            }
        };
        let seq = batch.manifest.seq;
        let policy = self.policy;
        let links = self.links();
        let outcome = self.store.write(|tx| {
            let (last_seq, last_digest) = tx.inbound_state(peer.as_str())?;
            let last_seq = u64::try_from(last_seq).unwrap_or(0);
            match check_sequence(last_seq, &last_digest, &batch.manifest) {
                Sequencing::Replay => {
                    let stored = tx.inbound_batch(peer.as_str(), i64::try_from(seq).unwrap_or(i64::MAX))?;
                    return Ok(match stored {
                        Some((digest, receipt)) if digest == batch.digest => Answer::Receipt(receipt),
                        Some(_) => Answer::refused(
                            StatusCode::CONFLICT,
                            "replay_mismatch",
                            format!("batch {seq} was already received with other content; its digest differs"),
                            serde_json::json!({ "expected_seq": last_seq + 1 }),
                        ),
                        None => Answer::refused(
                            StatusCode::CONFLICT,
                            "gap",
                            format!("batch {seq} is older than what this node keeps; send batch {}", last_seq + 1),
                            serde_json::json!({ "expected_seq": last_seq + 1 }),
                        ),
                    });
                }
                Sequencing::Gap { expected } => {
                    return Ok(Answer::refused(
                        StatusCode::CONFLICT,
                        "gap",
                        format!("batch {seq} skips ahead; this node expects batch {expected} from {peer}"),
                        serde_json::json!({ "expected_seq": expected }),
                    ));
                }
                Sequencing::BrokenChain { expected_digest } => {
                    return Ok(Answer::refused(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "chain",
                        format!(
                            "batch {seq} does not chain to batch {last_seq}: prev_digest {} but the last batch \
                             received has digest {expected_digest}",
                            batch.manifest.prev_digest
                        ),
                        serde_json::json!({ "expected_seq": seq }),
                    ));
                }
                Sequencing::Next => {}
            }
            let (applied, parked) = apply_changes(tx, &policy, &links, peer, &batch.payload.changes)?;
            Ok(Answer::Receipt(record_applied_batch(tx, &self.key, peer, &batch, applied, parked)?))
        });
        match outcome {
            Ok(answer) => {
                match &answer {
                    Answer::Refused { code, detail, .. } => {
                        self.audit_refusal(peer, code, detail, Some(&batch.manifest.batch_id));
                    }
                    _ => self.relay.notify_one(),
                }
                answer
            }
            Err(StoreError::Conflict(message)) => Answer::refused(
                StatusCode::CONFLICT,
                "busy",
                format!("another receiver applied batch {seq} at the same time; retry: {message}"),
                serde_json::json!({}),
            ),
            Err(error) => {
                tracing::error!(%error, %peer, seq, "batch not applied");
                Answer::refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the batch could not be applied now; nothing of it was kept; retry later".into(),
                    serde_json::json!({}),
                )
            }
        }
    }

    fn audit_refusal(&self, peer: RegionCode, code: &str, detail: &str, batch: Option<&str>) {
        let written = self.store.write(|tx| {
            tx.append_audit(&NewAuditEntry {
                actor: format!("node:{peer}"),
                actor_region: Some(peer.to_string()),
                action: "federation_apply".into(),
                resource_type: "batch".into(),
                resource_id: batch.map(str::to_string),
                outcome: "denied".into(),
                detail: Some(format!("{code}: {detail}")),
                ..NewAuditEntry::default()
            })
        });
        if let Err(error) = written {
            tracing::warn!(%error, "federation refusal not audited");
        }
    }
}
