//! What every handler can reach: the store, the token verifier, the node's
//! identity and the metrics registry.

use crate::metrics::Metrics;
use rhip_core::RegionCode;
use rhip_store::Store;
use std::sync::Arc;

/// Shared application state (cloned into every worker).
#[derive(Clone)]
pub struct AppState {
    /// The node's database.
    pub store: Store,
    /// Trusted token keys: this node's and its ancestors'.
    pub trust: Arc<crate::trust::TokenTrust>,
    /// This node's region.
    pub region: RegionCode,
    /// This node's display name.
    pub name: String,
    /// API URL of the parent node, if configured.
    pub parent: Option<String>,
    /// Prometheus registry and collectors.
    pub metrics: Arc<Metrics>,
    /// The group-commit writer every HL7 message goes through.
    pub ingest: crate::ingest::Writer,
    /// The federation side, when the node has peers.
    pub federation: Option<Arc<crate::federation::context::FederationContext>>,
    /// The node's signing key, for the tokens it issues at login.
    pub key: Arc<rhip_auth::NodeKey>,
    /// The node's data keys (blind indexes; the same ring seals the store's
    /// encrypted columns).
    pub data_keys: Arc<rhip_auth::DataKeyRing>,
    /// Token lifetimes and lockout rules.
    pub auth: crate::settings::AuthSettings,
    /// Access tokens revoked before their expiry.
    pub revocations: Arc<crate::revocation::Revocations>,
    /// Largest raw bodies the submission routes read.
    pub body_limits: BodyLimits,
    /// De-identified export rules (`[export]`).
    pub export: crate::settings::ExportSettings,
}

/// Largest raw request bodies, in bytes, from the settings (JSON bodies are
/// limited by actix's `JsonConfig` with `api.max_body_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// A CDA document (`api.max_document_bytes`).
    pub document: usize,
    /// An HL7 v2 message over HTTP (`mllp.max_message_bytes`, as over MLLP).
    pub hl7: usize,
}
