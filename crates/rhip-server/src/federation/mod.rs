//! Node-to-node federation (DESIGN §6): the mutual-TLS listener peers push
//! signed batches to, the pusher that cuts batches from the change log and
//! sends them, and the link status both show.
//!
//! The protocol itself (manifests, receipts, routing, retention) is
//! `rhip-federation`'s; the rows are `rhip-store`'s. This module only wires
//! them to sockets, schedules and the audit log.

pub mod context;
pub mod listener;
pub mod push;
pub mod tls;

use crate::settings::{FederationSettings, PeerSettings, Settings};
use rhip_core::RegionCode;
use std::collections::HashSet;

/// Whether a peer is this node's parent or one of its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The peer is an ancestor region: changes go up to it.
    Parent,
    /// The peer is a descendant region: changes go down to it.
    Child,
}

impl Direction {
    /// The word status pages and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Parent => "parent",
            Direction::Child => "child",
        }
    }
}

/// One configured peer with its direction worked out.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The peer's region.
    pub region: RegionCode,
    /// Where its federation listener is.
    pub url: String,
    /// Parent or child.
    pub direction: Direction,
}

/// The peers of a node, from `[[federation.peer]]`.
pub fn peers(settings: &Settings) -> Vec<Peer> {
    let me = settings.node.region;
    settings
        .federation
        .iter()
        .flat_map(|f: &FederationSettings| f.peers.iter())
        .map(|p: &PeerSettings| Peer {
            region: p.region,
            url: p.url.trim_end_matches('/').to_string(),
            direction: if p.region != me && p.region.contains(&me) { Direction::Parent } else { Direction::Child },
        })
        .collect()
}

/// The regions allowed to connect to this node's federation listener.
pub fn peer_regions(settings: &Settings) -> HashSet<RegionCode> {
    peers(settings).into_iter().map(|p| p.region).collect()
}

/// Everything the federation side of a running node needs, built at start.
pub struct Federation {
    /// Shared with the listener's handlers.
    pub context: std::sync::Arc<context::FederationContext>,
    /// Sends batches to the peers.
    pub pusher: std::sync::Arc<push::Pusher>,
    /// The bound mutual-TLS listener.
    pub server: actix_web::dev::Server,
    /// Its address.
    pub address: std::net::SocketAddr,
    /// TLS refusals waiting to be audited.
    pub refusals: tokio::sync::mpsc::UnboundedReceiver<tls::Refusal>,
}

/// Reads the peers' public keys from `trust_dir`: `<region>.pub.pem` as
/// written by `federation init`, plus `<region>.<kid>.pub.pem` learnt from
/// key announcements. Every peer needs at least one.
pub fn load_peer_keys(dir: &std::path::Path, peers: &[Peer]) -> Result<rhip_auth::PeerKeys, String> {
    let mut keys = rhip_auth::PeerKeys::new();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for peer in peers {
        let prefix = format!("{}.", peer.region);
        let mine: Vec<&std::path::PathBuf> = files
            .iter()
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".pub.pem"))
            })
            .collect();
        if mine.is_empty() {
            return Err(format!("{}: no key of peer {} ({}.pub.pem)", dir.display(), peer.region, peer.region));
        }
        for path in mine {
            let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let key = rhip_auth::public_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
            keys.trust(peer.region.as_str(), &key);
        }
    }
    Ok(keys)
}

/// This node's key announcement, if it rotated its key (next to the key).
pub fn own_announcement(settings: &Settings) -> Result<Option<String>, String> {
    let path = settings.keys.signing_key.with_file_name("announcement.jws");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// Builds the federation side when `[federation]` names peers; binds its
/// listener. Errors are configuration problems, named by file.
pub fn build(
    settings: &Settings,
    store: rhip_store::Store,
    key: rhip_auth::NodeKey,
) -> Result<Option<Federation>, String> {
    let Some(federation) = &settings.federation else { return Ok(None) };
    let peers = peers(settings);
    if peers.is_empty() {
        return Ok(None);
    }
    let (Some(cert), Some(tls_key), Some(ca), Some(trust)) =
        (&federation.tls_cert, &federation.tls_key, &federation.ca, &federation.trust_dir)
    else {
        return Err("federation.peer needs tls_cert, tls_key, ca and trust_dir".into());
    };
    let material = tls::TlsMaterial::load(cert, tls_key, ca)?;
    let peer_keys = load_peer_keys(trust, &peers)?;
    let policy = policy(settings)?;
    let mut agents = std::collections::HashMap::new();
    for peer in &peers {
        let config = material.client_config(peer.region)?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(std::sync::Arc::new(config))
            .timeout_connect(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .build();
        agents.insert(peer.region, agent);
    }
    let context = std::sync::Arc::new(context::FederationContext {
        announcement: own_announcement(settings)?,
        trust_dir: trust.clone(),
        agents,
        store,
        me: settings.node.region,
        key,
        peer_keys: std::sync::RwLock::new(peer_keys),
        policy,
        peers,
        batch_size: federation.batch_size,
        keep_acked_batches: federation.keep_acked_batches,
        relay: tokio::sync::Notify::new(),
    });
    let (sender, refusals) = tokio::sync::mpsc::unbounded_channel();
    let server_config = material.server_config(peer_regions(settings), sender)?;
    let listener = std::net::TcpListener::bind(federation.listen)
        .map_err(|e| format!("cannot listen for federation on {}: {e}", federation.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let server = listener::bind(listener, server_config, context.clone()).map_err(|e| e.to_string())?;
    let pusher = push::Pusher::new(
        context.clone(),
        std::time::Duration::from_millis(federation.retry_base_ms),
        std::time::Duration::from_millis(federation.retry_max_ms),
    )?;
    Ok(Some(Federation { context, pusher: std::sync::Arc::new(pusher), server, address, refusals }))
}

/// This node's retention policy: its tier's defaults with the config's overrides.
pub fn policy(settings: &Settings) -> Result<rhip_federation::RetentionPolicy, String> {
    let parse = |name: &str, value: &Option<String>| -> Result<Option<rhip_federation::Keep>, String> {
        value
            .as_deref()
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.to_string()))
                    .map_err(|_| format!("federation.retention.{name}: {v:?} is not one of full, index, none"))
            })
            .transpose()
    };
    let retention = settings.federation.as_ref().map(|f| f.retention.clone()).unwrap_or_default();
    let overrides = rhip_federation::RetentionOverride {
        did: parse("did", &retention.did)?,
        ehr: parse("ehr", &retention.ehr)?,
        emr: parse("emr", &retention.emr)?,
    };
    Ok(rhip_federation::RetentionPolicy::default_for(settings.node.region.tier()).with(overrides))
}

/// The status of every link, from the store (no peer is asked).
pub fn status(
    tx: &mut rhip_store::Tx<'_>,
    context: &context::FederationContext,
) -> Result<rhip_api_types::FederationStatus, rhip_store::StoreError> {
    let now = chrono::Utc::now().naive_utc();
    let inbound = tx.inbound_states()?;
    let mut links = Vec::new();
    for record in tx.links()? {
        let backlog = tx.link_backlog(&record.peer_region)?;
        let lag = backlog.oldest_pending_at.map_or(0, |oldest| (now - oldest).num_seconds().max(0));
        links.push(rhip_api_types::LinkStatus {
            url: context.peers.iter().find(|p| p.region.as_str() == record.peer_region).map(|p| p.url.clone()),
            pending_changes: backlog.unexamined + backlog.unacked_changes,
            unacked_batches: backlog.unacked_batches,
            last_sent_seq: backlog.last_sent_seq,
            last_acked_seq: record.last_acked_seq,
            lag_seconds: lag,
            failures: record.failures,
            last_error: record.last_error.clone(),
            last_sent_at: record.last_sent_at,
            last_acked_at: record.last_acked_at,
            parked_at_peer: backlog.parked_at_peer,
            kept_batches: backlog.kept_batches,
            last_received_seq: inbound.iter().find(|(peer, _, _)| *peer == record.peer_region).map_or(0, |i| i.1),
            direction: record.direction,
            peer: record.peer_region,
        });
    }
    links.sort_by_key(|l| (l.direction != "parent", l.peer.clone()));
    Ok(rhip_api_types::FederationStatus {
        region: context.me.to_string(),
        retention: serde_json::to_value(context.policy).unwrap_or_default(),
        links,
        dead_letters: tx.dead_letter_count()?,
    })
}
