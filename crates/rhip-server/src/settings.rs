//! Node configuration (`node.toml`).
//!
//! Typed, with unknown keys refused so a misspelt setting stops the node
//! instead of being silently ignored. Relative paths are resolved against the
//! folder of the config file. `RHIP_DATABASE_URL` overrides `database.url`
//! so a password need not be written into the file.

use rhip_core::RegionCode;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration of one node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Who this node is.
    pub node: NodeSettings,
    /// Where its data lives.
    pub database: DatabaseSettings,
    /// The HTTP API listener.
    pub api: ApiSettings,
    /// The HL7 v2 MLLP listener; none means HL7 arrives over HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mllp: Option<MllpSettings>,
    /// Key material.
    pub keys: KeySettings,
    /// Token rules.
    #[serde(default)]
    pub auth: AuthSettings,
    /// Scheduled jobs (cron expressions with seconds).
    #[serde(default)]
    pub schedules: ScheduleSettings,
    /// Node-to-node links (written by `rhip federation init`); none for a
    /// standalone node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationSettings>,
    /// De-identified exports for commissions.
    #[serde(default)]
    pub export: ExportSettings,
}

/// Identity of the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// GB/T 2260 code of the region this node serves; its tier follows from it.
    pub region: RegionCode,
    /// Display name; defaults to the region's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API URL of the parent node in the federation (none for a standalone
    /// or national node); shown in `/healthz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Database location and pool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    pub url: String,
    /// Maximum pooled connections.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
}

/// HTTP API listener.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Worker threads; defaults to the number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// PEM certificate chain; with `tls_key`, the API speaks HTTPS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Oldest TLS version the API accepts when it speaks HTTPS: `"1.2"`
    /// (default; ECDHE with AEAD suites only) or `"1.3"`.
    #[serde(default)]
    pub tls_min_version: TlsVersion,
    /// Largest JSON request body, in bytes (default 1 MiB); a larger one is
    /// answered 413 before it is read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest CDA document accepted by `POST /api/v1/documents`, in bytes
    /// (default 16 MiB); HL7 v2 over HTTP takes `mllp.max_message_bytes`.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// `Content-Security-Policy` sent with every answer that does not set
    /// its own; the default forbids everything, as JSON needs nothing. An
    /// empty string sends none.
    #[serde(default = "default_content_security_policy")]
    pub content_security_policy: String,
    /// Per-client limits on login and submission requests.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
}

impl ApiSettings {
    /// Settings listening on `listen` with every default (plain HTTP).
    pub fn on(listen: SocketAddr) -> ApiSettings {
        ApiSettings {
            listen,
            workers: None,
            shutdown_timeout_secs: default_shutdown_timeout(),
            tls_cert: None,
            tls_key: None,
            tls_min_version: TlsVersion::default(),
            max_body_bytes: default_max_body_bytes(),
            max_document_bytes: default_max_document_bytes(),
            content_security_policy: default_content_security_policy(),
            rate_limits: RateLimitSettings::default(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError("api.tls_cert and api.tls_key go together: give both or neither".into()));
        }
        if self.max_body_bytes == 0 || self.max_document_bytes == 0 {
            return Err(ConfigError("api.max_body_bytes and api.max_document_bytes must be at least 1".into()));
        }
        if self.content_security_policy.chars().any(|c| c.is_control() || !c.is_ascii()) {
            return Err(ConfigError("api.content_security_policy must be printable ASCII on one line".into()));
        }
        let limits = &self.rate_limits;
        for (name, value) in [
            ("login_per_minute", limits.login_per_minute),
            ("login_burst", limits.login_burst),
            ("submissions_per_second", limits.submissions_per_second),
            ("submissions_burst", limits.submissions_burst),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("api.rate_limits.{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A TLS protocol version, as written in `api.tls_min_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TlsVersion {
    /// TLS 1.2, with ECDHE key exchange and AEAD ciphers only.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TryFrom<String> for TlsVersion {
    type Error = String;

    fn try_from(text: String) -> Result<TlsVersion, String> {
        match text.as_str() {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            other => Err(format!("api.tls_min_version: {other:?} is not \"1.2\" or \"1.3\"")),
        }
    }
}

impl From<TlsVersion> for String {
    fn from(version: TlsVersion) -> String {
        match version {
            TlsVersion::Tls12 => "1.2".into(),
            TlsVersion::Tls13 => "1.3".into(),
        }
    }
}

/// Token buckets per client address (`[api.rate_limits]`): each class of
/// request refills at its rate and lets a burst through at once; a request
/// over the limit is answered 429 with `Retry-After`. The buckets live in
/// the process, so several processes behind a load balancer each count
/// their own share.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// `POST /auth/*` (login, register, refresh) per client and minute, so
    /// passwords cannot be guessed at speed (default 20).
    #[serde(default = "default_login_per_minute")]
    pub login_per_minute: u32,
    /// `POST /auth/*` requests a client may make at once (default 10).
    #[serde(default = "default_login_burst")]
    pub login_burst: u32,
    /// `POST /api/v1/hl7v2` and `POST /api/v1/documents` per client and
    /// second (default 200, above what one hospital's interface engine sends).
    #[serde(default = "default_submissions_per_second")]
    pub submissions_per_second: u32,
    /// Submissions a client may make at once (default 400).
    #[serde(default = "default_submissions_burst")]
    pub submissions_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> RateLimitSettings {
        RateLimitSettings {
            login_per_minute: default_login_per_minute(),
            login_burst: default_login_burst(),
            submissions_per_second: default_submissions_per_second(),
            submissions_burst: default_submissions_burst(),
        }
    }
}

fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_max_document_bytes() -> usize {
    16 << 20
}
fn default_content_security_policy() -> String {
    "default-src 'none'; frame-ancestors 'none'".into()
}
fn default_login_per_minute() -> u32 {
    20
}
fn default_login_burst() -> u32 {
    10
}
fn default_submissions_per_second() -> u32 {
    200
}
fn default_submissions_burst() -> u32 {
    400
}

/// MLLP listener for HL7 v2.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpSettings {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Seconds a connection may stay silent before it is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Largest message accepted, in bytes; a larger frame is answered with AR.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most connections served at once; more wait in the accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl MllpSettings {
    /// Settings for `listen` with every default.
    pub fn on(listen: SocketAddr) -> MllpSettings {
        MllpSettings {
            listen,
            idle_timeout_secs: default_idle_timeout(),
            max_message_bytes: default_max_message_bytes(),
            max_connections: default_max_connections(),
        }
    }
}

impl Settings {
    /// Largest HL7 v2 message accepted over HTTP: the MLLP listener's limit,
    /// so both channels take the same messages.
    pub fn max_hl7_bytes(&self) -> usize {
        self.mllp.as_ref().map_or_else(default_max_message_bytes, |mllp| mllp.max_message_bytes)
    }
}

fn default_idle_timeout() -> u64 {
    300
}
fn default_max_message_bytes() -> usize {
    4 << 20
}
fn default_max_connections() -> usize {
    512
}

/// Key material of the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// PEM file of the node's Ed25519 signing key (tokens, later batches).
    pub signing_key: PathBuf,
    /// JSON file of the node's data keys (blind indexes; written by
    /// `rhip init`). Kept apart from the database on purpose.
    #[serde(default = "default_data_keys")]
    pub data_keys: PathBuf,
}

fn default_data_keys() -> PathBuf {
    PathBuf::from("keys/data-keys.json")
}

/// The federation links of a node: its mutual-TLS listener, its peers and
/// their keys, and how often batches are cut. Paths are relative to the
/// config file's folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSettings {
    /// Address the federation (mutual TLS) listener will bind.
    pub listen: SocketAddr,
    /// PEM certificate of this node, issued by the federation CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate of the federation CA that peers' certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Folder of the peers' public signing keys, `<region>.pub.pem` each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_dir: Option<PathBuf>,
    /// Most changes in one batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Cron expression (seconds first) of the batch push to every peer.
    #[serde(default = "default_push_schedule")]
    pub push_schedule: String,
    /// Cron expression of the reconciliation of per-link counts with peers.
    #[serde(default = "default_reconcile_schedule")]
    pub reconcile_schedule: String,
    /// First retry delay after a failed push; doubles per failure, with jitter.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest delay between retries.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Acknowledged batches kept per link after the nightly reconciliation
    /// (older ones are deleted); a peer restored from a backup older than
    /// these can only be repaired by an operator.
    #[serde(default = "default_keep_acked_batches")]
    pub keep_acked_batches: i64,
    /// What this node keeps of each data class; unset classes take the
    /// defaults of the node's tier (`full`, `index` or `none`).
    #[serde(default)]
    pub retention: RetentionSettings,
    /// The parent and children this node exchanges batches with.
    #[serde(default, rename = "peer", skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerSettings>,
}

/// Overrides of the tier's retention defaults, per data class.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Demographics (persons, identifiers, allergies, contacts, insurance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// EHR index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ehr: Option<String>,
    /// Encounters and clinical documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr: Option<String>,
}

/// One federation peer: the parent or a child.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// The peer's region; its certificate must name it.
    pub region: RegionCode,
    /// Base URL of the peer's federation listener, `https://HOST:PORT`.
    pub url: String,
}

/// Token rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Longest lifetime `rhip token` will mint, e.g. `24h`.
    #[serde(default = "default_max_ttl")]
    pub max_token_ttl: String,
    /// Lifetime of a resident's access token after login, e.g. `15m`.
    #[serde(default = "default_resident_token_ttl")]
    pub resident_token_ttl: String,
    /// Lifetime of a resident's refresh token, e.g. `30d`.
    #[serde(default = "default_refresh_token_ttl")]
    pub refresh_token_ttl: String,
    /// Lifetime of an enrolment code, e.g. `14d`.
    #[serde(default = "default_enrolment_code_ttl")]
    pub enrolment_code_ttl: String,
    /// Failed logins in a row before a citizen ID is locked.
    #[serde(default = "default_lockout_after")]
    pub lockout_after: u32,
    /// First lock; each further failure doubles it up to `lockout_max`.
    #[serde(default = "default_lockout_base")]
    pub lockout_base: String,
    /// Longest lock.
    #[serde(default = "default_lockout_max")]
    pub lockout_max: String,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            max_token_ttl: default_max_ttl(),
            resident_token_ttl: default_resident_token_ttl(),
            refresh_token_ttl: default_refresh_token_ttl(),
            enrolment_code_ttl: default_enrolment_code_ttl(),
            lockout_after: default_lockout_after(),
            lockout_base: default_lockout_base(),
            lockout_max: default_lockout_max(),
        }
    }
}

fn default_resident_token_ttl() -> String {
    "15m".into()
}
fn default_refresh_token_ttl() -> String {
    "30d".into()
}
fn default_enrolment_code_ttl() -> String {
    "14d".into()
}
fn default_lockout_after() -> u32 {
    5
}
fn default_lockout_base() -> String {
    "1m".into()
}
fn default_lockout_max() -> String {
    "1h".into()
}

impl AuthSettings {
    /// A duration setting, already checked when the config was read.
    fn duration(text: &str, fallback_secs: u64) -> std::time::Duration {
        humantime::parse_duration(text).unwrap_or(std::time::Duration::from_secs(fallback_secs))
    }

    /// Lifetime of a resident's access token.
    pub fn resident_token_ttl(&self) -> std::time::Duration {
        Self::duration(&self.resident_token_ttl, 900)
    }

    /// Lifetime of a refresh token.
    pub fn refresh_token_ttl(&self) -> std::time::Duration {
        Self::duration(&self.refresh_token_ttl, 30 * 86_400)
    }

    /// Lifetime of an enrolment code.
    pub fn enrolment_code_ttl(&self) -> std::time::Duration {
        Self::duration(&self.enrolment_code_ttl, 14 * 86_400)
    }

    /// How long a login key is locked after `failures` failures in a row:
    /// none below `lockout_after`, then `lockout_base` doubling per further
    /// failure, at most `lockout_max`.
    pub fn lock_for(&self, failures: i64) -> Option<std::time::Duration> {
        let after = i64::from(self.lockout_after.max(1));
        if failures < after {
            return None;
        }
        let base = Self::duration(&self.lockout_base, 60);
        let max = Self::duration(&self.lockout_max, 3600);
        let doublings = u32::try_from((failures - after).min(20)).unwrap_or(20);
        Some(base.saturating_mul(1 << doublings).min(max))
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (name, text) in [
            ("auth.max_token_ttl", &self.max_token_ttl),
            ("auth.resident_token_ttl", &self.resident_token_ttl),
            ("auth.refresh_token_ttl", &self.refresh_token_ttl),
            ("auth.enrolment_code_ttl", &self.enrolment_code_ttl),
            ("auth.lockout_base", &self.lockout_base),
            ("auth.lockout_max", &self.lockout_max),
        ] {
            humantime::parse_duration(text).map_err(|e| ConfigError(format!("{name}: {e}")))?;
        }
        if self.lockout_after == 0 {
            return Err(ConfigError("auth.lockout_after must be at least 1".into()));
        }
        Ok(())
    }
}

/// De-identified exports (`rhip export deidentified`,
/// `GET /api/v1/exports/deidentified`; the rules are `rhip-deid`'s).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// The `k` of k-anonymity when a request names none: every equivalence
    /// class (sex, birth year or age band, municipal region) in an export has
    /// at least this many records; persons of smaller classes are left out.
    #[serde(default = "default_export_k")]
    pub k: u32,
    /// The smallest `k` a request may ask for: a commission may ask for more
    /// protection than the default, never for less than this.
    #[serde(default = "default_export_min_k")]
    pub min_k: u32,
}

impl Default for ExportSettings {
    fn default() -> ExportSettings {
        ExportSettings { k: default_export_k(), min_k: default_export_min_k() }
    }
}

fn default_export_k() -> u32 {
    5
}
fn default_export_min_k() -> u32 {
    5
}

impl ExportSettings {
    fn check(&self) -> Result<(), ConfigError> {
        let (min, max) = (rhip_deid::K::MIN, rhip_deid::K::MAX);
        if !(min..=max).contains(&self.min_k) {
            return Err(ConfigError(format!("export.min_k must be from {min} to {max}, got {}", self.min_k)));
        }
        if !(self.min_k..=max).contains(&self.k) {
            return Err(ConfigError(format!(
                "export.k must be from export.min_k ({}) to {max}, got {}",
                self.min_k, self.k
            )));
        }
        Ok(())
    }

    /// The `k` of a request: `asked` if given (at least `min_k`), else `k`.
    /// The error names the problem in words fit for `k`'s field message.
    pub fn k_for(&self, asked: Option<&str>) -> Result<rhip_deid::K, String> {
        let Some(text) = asked else {
            return rhip_deid::K::new(self.k).map_err(|e| e.to_string());
        };
        let k = rhip_deid::K::parse(text).map_err(|e| e.to_string())?;
        if k.get() < self.min_k {
            return Err(format!("{k} is below this node's smallest k ({}; export.min_k)", self.min_k));
        }
        Ok(k)
    }
}

/// Cron expressions (six fields, seconds first) of the scheduled jobs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Refresh of the record-count gauges in `/metrics`.
    #[serde(default = "default_metrics_refresh")]
    pub metrics_refresh: String,
    /// Chaining of new audit entries into the hash chain; between runs,
    /// entries wait unchained (verification reports them, not as damage).
    #[serde(default = "default_audit_chain")]
    pub audit_chain: String,
    /// Sealing of the chain head with the node's signing key (only when the
    /// head moved); entries after the last seal are only as safe as the
    /// database until the next one.
    #[serde(default = "default_audit_seal")]
    pub audit_seal: String,
}

impl Default for ScheduleSettings {
    fn default() -> ScheduleSettings {
        ScheduleSettings {
            metrics_refresh: default_metrics_refresh(),
            audit_chain: default_audit_chain(),
            audit_seal: default_audit_seal(),
        }
    }
}

fn default_pool_size() -> u32 {
    8
}
fn default_shutdown_timeout() -> u64 {
    30
}
fn default_max_ttl() -> String {
    "24h".into()
}
fn default_metrics_refresh() -> String {
    "*/15 * * * * *".into()
}
fn default_audit_chain() -> String {
    "*/10 * * * * *".into()
}
fn default_audit_seal() -> String {
    "0 */5 * * * *".into()
}
fn default_batch_size() -> usize {
    1000
}
fn default_push_schedule() -> String {
    "*/1 * * * * *".into()
}
fn default_reconcile_schedule() -> String {
    "0 30 2 * * *".into()
}
fn default_retry_base_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    60_000
}
fn default_keep_acked_batches() -> i64 {
    10_000
}

impl FederationSettings {
    /// Settings listening on `listen` with every default and no peers.
    pub fn on(listen: SocketAddr) -> FederationSettings {
        FederationSettings {
            listen,
            tls_cert: None,
            tls_key: None,
            ca: None,
            trust_dir: None,
            batch_size: default_batch_size(),
            push_schedule: default_push_schedule(),
            reconcile_schedule: default_reconcile_schedule(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            keep_acked_batches: default_keep_acked_batches(),
            retention: RetentionSettings::default(),
            peers: Vec::new(),
        }
    }

    fn check(&self, me: RegionCode) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "federation.tls_cert and federation.tls_key go together: give both or neither".into(),
            ));
        }
        if !self.peers.is_empty() && (self.tls_cert.is_none() || self.ca.is_none() || self.trust_dir.is_none()) {
            return Err(ConfigError(
                "federation.peer needs federation.tls_cert, tls_key, ca and trust_dir (mutual TLS and signed batches)"
                    .into(),
            ));
        }
        for (name, expression) in [
            ("federation.push_schedule", &self.push_schedule),
            ("federation.reconcile_schedule", &self.reconcile_schedule),
        ] {
            check_cron(name, expression)?;
        }
        if self.keep_acked_batches < 1 {
            return Err(ConfigError(
                "federation.keep_acked_batches must be at least 1 (the chain's last batch)".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(ConfigError("federation.batch_size must be at least 1".into()));
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err(ConfigError("federation.retry_base_ms must be at least 1 and at most retry_max_ms".into()));
        }
        for (name, value) in [("did", &self.retention.did), ("ehr", &self.retention.ehr), ("emr", &self.retention.emr)]
        {
            if let Some(value) = value {
                if !matches!(value.as_str(), "full" | "index" | "none") {
                    return Err(ConfigError(format!(
                        "federation.retention.{name}: {value:?} is not one of full, index, none"
                    )));
                }
            }
        }
        let mut parents = 0;
        let mut seen = std::collections::HashSet::new();
        for peer in &self.peers {
            if !seen.insert(peer.region) {
                return Err(ConfigError(format!("federation.peer {} is listed twice", peer.region)));
            }
            if !peer.url.starts_with("https://") {
                return Err(ConfigError(format!(
                    "federation.peer {}: url {:?} must start with https:// (mutual TLS only)",
                    peer.region, peer.url
                )));
            }
            if peer.region != me && peer.region.contains(&me) {
                parents += 1;
            } else if peer.region == me || !me.contains(&peer.region) {
                return Err(ConfigError(format!(
                    "federation.peer {} is neither an ancestor nor a descendant of this node's region {me}",
                    peer.region
                )));
            }
        }
        if parents > 1 {
            return Err(ConfigError("federation.peer: a node has at most one parent".into()));
        }
        Ok(())
    }

    /// The peer that is this node's parent, if any.
    pub fn parent(&self, me: RegionCode) -> Option<&PeerSettings> {
        self.peers.iter().find(|p| p.region != me && p.region.contains(&me))
    }
}

fn check_cron(name: &str, expression: &str) -> Result<(), ConfigError> {
    if expression.split_whitespace().count() != 6 {
        return Err(ConfigError(format!(
            "{name}: {expression:?} is not a cron expression with six fields (seconds first)"
        )));
    }
    Ok(())
}

/// A configuration that cannot be used; the message is one line naming the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        let mut settings =
            Settings::parse(&text).map_err(|e| ConfigError(format!("config {}: {}", path.display(), e.0)))?;
        if let Ok(url) = std::env::var("RHIP_DATABASE_URL") {
            settings.database.url = url;
        }
        settings.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        settings.check().map_err(|e| ConfigError(format!("config {}: {}", path.display(), e.0)))?;
        Ok(settings)
    }

    /// Parses config text; errors name the line and the key.
    pub fn parse(text: &str) -> Result<Settings, ConfigError> {
        toml::from_str::<Settings>(text).map_err(|e| {
            let line = e.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match line {
                Some(line) => ConfigError(format!("line {line}: {message}")),
                None => ConfigError(message),
            }
        })
    }

    /// Renders the settings as TOML (for `rhip init`).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError(e.to_string()))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let mut paths = vec![
            Some(&mut self.keys.signing_key),
            Some(&mut self.keys.data_keys),
            self.api.tls_cert.as_mut(),
            self.api.tls_key.as_mut(),
        ];
        if let Some(federation) = self.federation.as_mut() {
            paths.extend([
                federation.tls_cert.as_mut(),
                federation.tls_key.as_mut(),
                federation.ca.as_mut(),
                federation.trust_dir.as_mut(),
            ]);
        }
        for path in paths.into_iter().flatten() {
            if !path.is_absolute() {
                *path = base.join(&*path);
            }
        }
        let url = self.database.url.trim().to_string();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(&url);
            if !path.is_empty() && !path.starts_with(':') && !Path::new(path).is_absolute() {
                self.database.url = format!("sqlite://{}", base.join(path).display());
            }
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.auth.check()?;
        for (name, expression) in [
            ("schedules.metrics_refresh", &self.schedules.metrics_refresh),
            ("schedules.audit_chain", &self.schedules.audit_chain),
            ("schedules.audit_seal", &self.schedules.audit_seal),
        ] {
            check_cron(name, expression)?;
        }
        self.api.check()?;
        self.export.check()?;
        if let Some(federation) = &self.federation {
            federation.check(self.node.region)?;
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError("database.pool_size must be at least 1".into()));
        }
        Ok(())
    }

    /// Longest token lifetime allowed.
    pub fn max_token_ttl(&self) -> std::time::Duration {
        humantime::parse_duration(&self.auth.max_token_ttl).unwrap_or(std::time::Duration::from_secs(86_400))
    }

    /// Display name of the node.
    pub fn node_name(&self) -> String {
        self.node.name.clone().unwrap_or_else(|| {
            format!("{} health commission node", self.node.region.name().unwrap_or(self.node.region.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
region = "330106"
[database]
url = "sqlite://rhip.db"
[api]
listen = "127.0.0.1:0"
[keys]
signing_key = "keys/signing.pem"
"#;

    #[test]
    fn a_minimal_config_parses_with_defaults() {
        let settings = Settings::parse(GOOD).unwrap();
        assert_eq!(settings.node.region.as_str(), "330106");
        assert_eq!(settings.database.pool_size, 8);
        assert_eq!(settings.schedules.metrics_refresh, "*/15 * * * * *");
        assert_eq!(settings.schedules.audit_chain, "*/10 * * * * *");
        assert_eq!(settings.schedules.audit_seal, "0 */5 * * * *");
    }

    #[test]
    fn audit_schedules_are_checked_like_the_others() {
        let text = format!("{GOOD}[schedules]\naudit_seal = \"every five minutes\"\n");
        let error = Settings::parse(&text).unwrap().check().unwrap_err().0;
        assert!(error.contains("schedules.audit_seal"), "{error}");
        let text = format!("{GOOD}[schedules]\naudit_chain = \"*/2 * * * * *\"\n");
        let settings = Settings::parse(&text).unwrap();
        assert!(settings.check().is_ok());
        assert_eq!(settings.schedules.audit_chain, "*/2 * * * * *");
    }

    #[test]
    fn a_federation_section_parses_and_its_paths_resolve_against_the_config_folder() {
        let text = format!(
            "{GOOD}[federation]\nlisten = \"127.0.0.1:26002\"\ntls_cert = \"tls/node.crt\"\ntls_key = \"tls/node.key\"\n\
             ca = \"tls/ca.crt\"\ntrust_dir = \"trust\"\n"
        );
        let mut settings = Settings::parse(&text).unwrap();
        settings.resolve_paths(Path::new("/srv/node"));
        let federation = settings.federation.clone().unwrap();
        assert_eq!(federation.listen.port(), 26002);
        assert_eq!(federation.tls_cert.unwrap(), Path::new("/srv/node/tls/node.crt"));
        assert_eq!(federation.trust_dir.unwrap(), Path::new("/srv/node/trust"));
        assert!(settings.check().is_ok());
        let half = text.replace("tls_key = \"tls/node.key\"\n", "");
        let error = Settings::parse(&half).unwrap().check().unwrap_err().0;
        assert!(error.contains("federation.tls_cert"), "{error}");
        let error = Settings::parse(&format!("{text}port = 3\n")).unwrap_err().0;
        assert!(error.contains("unknown field `port`"), "{error}");
    }

    #[test]
    fn api_hardening_settings_have_defaults_and_are_checked() {
        let settings = Settings::parse(GOOD).unwrap();
        let api = &settings.api;
        assert_eq!((api.max_body_bytes, api.max_document_bytes), (1 << 20, 16 << 20));
        assert_eq!(api.tls_min_version, TlsVersion::Tls12);
        assert_eq!(api.content_security_policy, "default-src 'none'; frame-ancestors 'none'");
        let limits = &api.rate_limits;
        assert_eq!((limits.login_per_minute, limits.login_burst), (20, 10));
        assert_eq!((limits.submissions_per_second, limits.submissions_burst), (200, 400));
        assert_eq!(settings.max_hl7_bytes(), 4 << 20);
        let strict = GOOD.replace("[keys]", "tls_min_version = \"1.3\"\n[api.rate_limits]\nlogin_burst = 2\n[keys]");
        let settings = Settings::parse(&strict).unwrap();
        assert_eq!(settings.api.tls_min_version, TlsVersion::Tls13);
        assert_eq!((settings.api.rate_limits.login_burst, settings.api.rate_limits.login_per_minute), (2, 20));
        let error = Settings::parse(&GOOD.replace("[api]", "[api]\ntls_min_version = \"1.1\"")).unwrap_err().0;
        assert!(error.contains("api.tls_min_version: \"1.1\" is not"), "{error}");
        let zero = GOOD.replace("[keys]", "[api.rate_limits]\nlogin_per_minute = 0\n[keys]");
        let error = Settings::parse(&zero).unwrap().check().unwrap_err().0;
        assert!(error.contains("api.rate_limits.login_per_minute"), "{error}");
        let error = Settings::parse(&GOOD.replace("[keys]", "[api.rate_limits]\nlogins = 3\n[keys]")).unwrap_err().0;
        assert!(error.contains("unknown field `logins`"), "{error}");
        // What `rhip init` writes out parses back to the same.
        let written = Settings::parse(&settings.to_toml().unwrap()).unwrap();
        assert_eq!(written.api.rate_limits.login_burst, 2);
    }

    #[test]
    fn export_settings_have_defaults_and_are_checked() {
        let settings = Settings::parse(GOOD).unwrap();
        assert_eq!((settings.export.k, settings.export.min_k), (5, 5));
        assert_eq!(settings.export.k_for(None).map(rhip_deid::K::get), Ok(5));
        assert_eq!(settings.export.k_for(Some("10")).map(rhip_deid::K::get), Ok(10));
        assert!(settings.export.k_for(Some("3")).unwrap_err().contains("export.min_k"));
        assert!(settings.export.k_for(Some("abc")).unwrap_err().contains("from 2 to 1000"));
        let text = format!("{GOOD}[export]\nk = 3\nmin_k = 2\n");
        let settings = Settings::parse(&text).unwrap();
        assert!(settings.check().is_ok());
        assert_eq!(settings.export.k_for(Some("2")).map(rhip_deid::K::get), Ok(2));
        let error = Settings::parse(&format!("{GOOD}[export]\nk = 3\n")).unwrap().check().unwrap_err().0;
        assert!(error.contains("export.k must be from export.min_k (5)"), "{error}");
        let error = Settings::parse(&format!("{GOOD}[export]\nmin_k = 1\n")).unwrap().check().unwrap_err().0;
        assert!(error.contains("export.min_k"), "{error}");
        let error = Settings::parse(&format!("{GOOD}[export]\nkk = 3\n")).unwrap_err().0;
        assert!(error.contains("unknown field `kk`"), "{error}");
    }

    #[test]
    fn unknown_keys_and_bad_regions_name_the_problem_on_one_line() {
        let error = Settings::parse(&GOOD.replace("[api]", "[api]\nlisten_port = 3")).unwrap_err().0;
        assert!(error.contains("unknown field `listen_port`"), "{error}");
        assert!(error.starts_with("line 6: "), "the [api] table: {error}");
        assert!(!error.contains('\n'));
        let error = Settings::parse(&GOOD.replace("330106", "339999")).unwrap_err().0;
        assert!(error.contains("339999"), "{error}");
    }
}
