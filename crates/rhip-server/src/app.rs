//! Building and running a node: open the store, migrate, load keys, bind the
//! listeners, start the scheduled jobs, and stop gracefully on SIGTERM or
//! Ctrl-C (in-flight requests finish; new connections are refused).

use crate::error::ApiError;
use crate::hardening::{self, Hardening, RedactedRootSpan};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::state::{AppState, BodyLimits};
use crate::trust::TokenTrust;
use crate::{jobs, routes};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{middleware, web, App, HttpMessage, HttpServer};
use anyhow::Context;
use rhip_auth::NodeKey;
use rhip_store::{Store, StoreError, StoreOptions};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;
use tracing_actix_web::{RequestId, TracingLogger};

/// Why a node could not start; `Config` problems are the operator's to fix
/// (exit status 2), the rest are runtime failures (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration, unreachable database, unreadable key.
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

/// A node ready to serve.
pub struct Application {
    server: Server,
    api_address: SocketAddr,
    scheme: &'static str,
    mllp: Option<crate::mllp::MllpListener>,
    state: AppState,
    settings: Settings,
    federation: Option<crate::federation::Federation>,
}

/// Rows sealed per transaction when an upgraded database's plaintext is
/// encrypted at first start.
const BACKFILL_BATCH: i64 = 500;

/// Opens and migrates the node's database, and checks it belongs to this node
/// (with the node's data keys, read from `keys.data_keys`).
pub fn open_store(settings: &Settings) -> Result<Store, StartError> {
    open_store_with(settings, load_data_keys(settings)?)
}

/// [`open_store`] with data keys already loaded. Refuses keys that cannot
/// encrypt (a version 1 key file), and seals once what an upgraded database
/// still holds in plaintext.
pub fn open_store_with(settings: &Settings, keys: Arc<rhip_auth::DataKeyRing>) -> Result<Store, StartError> {
    if keys.keys().current_key_id().is_none() {
        return Err(StartError::Config(format!(
            "{}: the data-key file holds no encryption key (version 1); run `rhip keys rotate --config <node.toml>` \
             once to add one",
            settings.keys.data_keys.display()
        )));
    }
    let store = open_store_unchecked(settings, keys, settings.database.pool_size)?;
    store.migrate().map_err(|e| StartError::Runtime(e.into()))?;
    store.write(|tx| tx.bind_node_region()).map_err(|e| match e {
        StoreError::WrongNode { .. } => StartError::Config(format!("{}: {e}", store.redacted_url())),
        other => StartError::Runtime(other.into()),
    })?;
    let sealed = store.encrypt_plaintext_once(BACKFILL_BATCH).map_err(|e| StartError::Runtime(e.into()))?;
    if sealed > 0 {
        tracing::info!(values = sealed, "sealed the plaintext personal data left from before encryption at rest");
    }
    Ok(store)
}

/// Opens the node's database with its data keys, neither migrating nor
/// checking anything (`rhip migrate`, `rhip keys`).
pub fn open_store_unchecked(
    settings: &Settings,
    keys: Arc<rhip_auth::DataKeyRing>,
    pool_size: u32,
) -> Result<Store, StartError> {
    let options = StoreOptions { pool_size, cipher: Some(keys), ..StoreOptions::default() };
    Store::open(&settings.database.url, settings.node.region, &options).map_err(|e| match e {
        StoreError::Config(_) | StoreError::Unreachable { .. } => StartError::Config(e.to_string()),
        other => StartError::Runtime(other.into()),
    })
}

/// Reads the node's signing key.
pub fn load_key(settings: &Settings) -> Result<NodeKey, StartError> {
    let path = &settings.keys.signing_key;
    let pem = std::fs::read_to_string(path)
        .map_err(|e| StartError::Config(format!("cannot read signing key {}: {e}", path.display())))?;
    NodeKey::from_pem(&pem).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))
}

/// Reads the node's data keys (written by `rhip init`) into a ring that
/// reads the file again when it meets a key id it does not hold, and every
/// few seconds when sealing, so a rotation made by `rhip keys rotate` in
/// another process reaches this one without a restart.
pub fn load_data_keys(settings: &Settings) -> Result<Arc<rhip_auth::DataKeyRing>, StartError> {
    let path = settings.keys.data_keys.clone();
    let read = move || -> Result<rhip_auth::DataKeys, rhip_auth::DataKeyError> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            rhip_auth::DataKeyError::Format(format!(
                "cannot read the data keys {}: {e} (rhip init writes them; keep them with the signing key)",
                path.display()
            ))
        })?;
        rhip_auth::DataKeys::from_json(&text)
            .map_err(|e| rhip_auth::DataKeyError::Format(format!("{}: {e}", path.display())))
    };
    let ring = rhip_auth::DataKeyRing::reloading(Box::new(read)).map_err(|e| StartError::Config(e.to_string()))?;
    Ok(Arc::new(ring))
}

/// Keys this node signed with before a rotation (`keys/previous-*.pem`).
pub fn previous_keys(settings: &Settings) -> Result<Vec<NodeKey>, StartError> {
    let Some(dir) = settings.keys.signing_key.parent() else { return Ok(Vec::new()) };
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut keys = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("previous-") && name.ends_with(".pem") {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| StartError::Config(format!("cannot read {}: {e}", path.display())))?;
            keys.push(NodeKey::from_pem(&pem).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?);
        }
    }
    Ok(keys)
}

impl Application {
    /// Opens everything and binds the listeners; nothing is served until
    /// [`Application::run`].
    pub fn build(settings: Settings) -> Result<Application, StartError> {
        let data_keys = load_data_keys(&settings)?;
        let store = open_store_with(&settings, data_keys.clone())?;
        let key = load_key(&settings)?;
        let federation =
            crate::federation::build(&settings, store.clone(), load_key(&settings)?).map_err(StartError::Config)?;
        // Tokens signed before a key rotation stay valid until they expire.
        let previous = previous_keys(&settings)?;
        let own: Vec<&NodeKey> = std::iter::once(&key).chain(&previous).collect();
        // The node's keys go down to its descendants, which then accept its
        // tokens; theirs are accepted here once received from above.
        let known = store
            .write(|tx| {
                for key in &own {
                    tx.publish_own_key(key.key_id(), &key.public_key_pem())?;
                }
                tx.issuer_keys()
            })
            .context("publish the node's token keys")?;
        let trust =
            TokenTrust::new(settings.node.region, own.iter().map(|key| key.public_key().to_vec()).collect(), &known);
        let metrics = Metrics::new(settings.node.region.as_str()).context("metrics registry")?;
        let writers = usize::try_from(settings.database.pool_size / 2).unwrap_or(1).max(1);
        let ingest = crate::ingest::Writer::start(store.clone(), writers).context("start the ingest writers")?;
        let state = AppState {
            ingest,
            store,
            trust: Arc::new(trust),
            region: settings.node.region,
            name: settings.node_name(),
            parent: settings.node.parent.clone(),
            metrics: Arc::new(metrics),
            federation: federation.as_ref().map(|f| f.context.clone()),
            key: Arc::new(key),
            data_keys,
            auth: settings.auth.clone(),
            revocations: Arc::default(),
            body_limits: BodyLimits { document: settings.api.max_document_bytes, hl7: settings.max_hl7_bytes() },
            export: settings.export.clone(),
        };
        // One set of rate-limit buckets for all workers.
        let hardening = web::Data::new(Hardening::new(&settings.api).map_err(StartError::Config)?);
        let max_json_bytes = settings.api.max_body_bytes;
        let listener = TcpListener::bind(settings.api.listen)
            .map_err(|e| StartError::Config(format!("cannot listen on {}: {e}", settings.api.listen)))?;
        let api_address = listener.local_addr().context("listener address")?;
        let data = web::Data::new(state.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(hardening.clone())
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|error, _| ApiError::field("query", error.to_string()).into()),
                )
                .app_data(web::JsonConfig::default().limit(max_json_bytes).error_handler(|error, _| match error {
                    // Refused from its declared length before it is read, or cut off at the limit.
                    JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
                        ApiError::TooLarge(format!("a JSON body may be at most {limit} bytes")).into()
                    }
                    other => ApiError::field("body", other.to_string()).into(),
                }))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|error, _| ApiError::field("path", error.to_string()).into()),
                )
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such route".into()))
                }))
                // Outermost last: the span and request id first, then the
                // security headers on whatever comes back, then metrics, then
                // the rate limits before any handler or token check.
                .wrap(middleware::from_fn(hardening::rate_limit))
                .wrap(middleware::from_fn(observe))
                .wrap(middleware::from_fn(hardening::security_headers))
                .wrap(TracingLogger::<RedactedRootSpan>::new())
                .configure(routes::configure)
        })
        .shutdown_timeout(settings.api.shutdown_timeout_secs);
        if let Some(workers) = settings.api.workers {
            server = server.workers(workers.max(1));
        }
        let server = match tls_config(&settings)? {
            Some(tls) => server.listen_rustls_0_23(listener, tls).context("start HTTPS listener")?,
            None => server.listen(listener).context("start HTTP listener")?,
        };
        let scheme = if settings.api.tls_cert.is_some() { "https" } else { "http" };
        let mllp = match &settings.mllp {
            Some(mllp) => Some(
                crate::mllp::MllpListener::bind(mllp)
                    .map_err(|e| StartError::Config(format!("cannot listen for MLLP on {}: {e}", mllp.listen)))?,
            ),
            None => None,
        };
        Ok(Application { server: server.run(), api_address, scheme, mllp, state, settings, federation })
    }

    /// The API's base URL, `http://` or `https://` as configured.
    pub fn api_url(&self) -> String {
        format!("{}://{}", self.scheme, self.api_address)
    }

    /// The address the API listens on (useful when configured with port 0).
    pub fn api_address(&self) -> SocketAddr {
        self.api_address
    }

    /// A handle to stop the server from elsewhere (the demo's `--once`).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared state (store, metrics), for embedding callers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The federation listener's address, when the node has peers.
    pub fn federation_address(&self) -> Option<SocketAddr> {
        self.federation.as_ref().map(|f| f.address)
    }

    /// The MLLP listener's address, when one is configured.
    pub fn mllp_address(&self) -> Option<SocketAddr> {
        self.mllp.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// Serves until SIGTERM or Ctrl-C, then drains in-flight requests and
    /// messages.
    ///
    /// `on_ready` runs once everything is started (jobs, listeners), right
    /// before the server is awaited and its SIGTERM handler installed: a
    /// caller that announces readiness there is never stopped by a signal
    /// the node cannot handle yet.
    pub async fn run(self, on_ready: impl FnOnce()) -> anyhow::Result<()> {
        let pusher = self.federation.as_ref().map(|f| f.pusher.clone());
        let scheduler = jobs::start(&self.settings, self.state.clone(), pusher).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mllp = self.mllp.map(|listener| tokio::spawn(listener.serve(self.state.clone(), stopped)));
        let federation = self.federation.map(|federation| {
            let audit = tokio::spawn(crate::federation::listener::audit_refusals(
                self.state.store.clone(),
                federation.refusals,
            ));
            let handle = federation.server.handle();
            let server = tokio::spawn(federation.server);
            (handle, server, audit)
        });
        on_ready();
        let result = self.server.await.context("HTTP server");
        let _ = stop.send(true);
        if let Some((handle, server, audit)) = federation {
            handle.stop(true).await;
            if let Err(error) = server.await {
                tracing::warn!(%error, "federation listener task failed");
            }
            audit.abort();
        }
        if let Some(mllp) = mllp {
            match mllp.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "MLLP listener failed"),
                Err(error) => tracing::warn!(%error, "MLLP listener task failed"),
            }
        }
        jobs::stop(scheduler).await;
        tracing::info!("node stopped");
        result
    }
}

/// The rustls server configuration when the API is to speak HTTPS: TLS 1.3,
/// and TLS 1.2 unless `api.tls_min_version = "1.3"`, with ECDHE key exchange
/// and AEAD ciphers only (`hardening::api_tls`).
fn tls_config(settings: &Settings) -> Result<Option<rustls::ServerConfig>, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert_path), Some(key_path)) = (&settings.api.tls_cert, &settings.api.tls_key) else {
        return Ok(None);
    };
    let problem =
        |path: &std::path::Path, e: &dyn std::fmt::Display| StartError::Config(format!("{}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| problem(cert_path, &e))?;
    if certs.is_empty() {
        return Err(problem(cert_path, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| problem(key_path, &e))?;
    let (provider, versions) = hardening::api_tls(settings.api.tls_min_version);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| StartError::Runtime(e.into()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| problem(cert_path, &e))?;
    Ok(Some(config))
}

/// Adds `x-request-id` to every answer and records request metrics.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut response = next.call(req).await?;
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), id);
    }
    if let Some(state) = state {
        let status = response.status().as_u16().to_string();
        state.metrics.http_requests.with_label_values(&[&method, &route, &status]).inc();
        state.metrics.http_duration.with_label_values(&[&method, &route]).observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
