//! Node-to-node federation (DESIGN §6): the mutual-TLS listener peers push
//! signed batches to, the pusher that cuts batches from the change log and
//! sends them, and the link status both show.
//!
//! The protocol itself (manifests, receipts, routing, retention) is
//! `rhip-federation`'s; the rows are `rhip-store`'s. This module only wires
//! them to sockets, schedules and the audit log.

pub mod listener;
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
