//! The federation listener: HTTPS with mandatory client certificates, spoken
//! to only by this node's parent and children. The peer is who its
//! certificate says (checked during the handshake by [`super::tls`]); every
//! handler reads it from the connection, never from the request.
//!
//! | route | what |
//! |---|---|
//! | `GET /federation/v1/hello` | region, tier, batch schema versions, retention, key ids |
//! | `POST /federation/v1/batches` | a signed batch (manifest JWS in `X-RHIP-Manifest`, payload as body) → signed receipt |
//! | `GET /federation/v1/reconcile` | what this node holds from the caller: last batch applied, its digest, changes received |
//! | `GET /federation/v1/documents/{id}` | a document's bytes, from here or fetched on toward its holder (`X-RHIP-Holder`) |

use super::context::FederationContext;
use super::tls::{region_of, Refusal};
use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use rhip_core::RegionCode;
use rhip_store::NewAuditEntry;
use std::any::Any;
use std::net::TcpListener;
use std::sync::Arc;

/// The header that carries the batch manifest (a compact JWS).
pub const MANIFEST_HEADER: &str = "x-rhip-manifest";

/// Largest batch payload accepted, in bytes.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// The authenticated peer of a connection, put there by the TLS handshake.
#[derive(Clone, Copy, Debug)]
struct PeerRegion(RegionCode);

fn peer_from_connection(connection: &dyn Any, extensions: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(stream) = connection.downcast_ref::<Tls>() {
        let (_, session) = stream.get_ref();
        if let Some(region) = session.peer_certificates().and_then(|certs| certs.first()).and_then(region_of) {
            extensions.insert(PeerRegion(region));
        }
    }
}

/// Binds the listener; it serves once the returned server is awaited.
pub fn bind(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    context: Arc<FederationContext>,
) -> anyhow::Result<actix_web::dev::Server> {
    let data = web::Data::from(context);
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_PAYLOAD))
            .route("/federation/v1/hello", web::get().to(hello))
            .route("/federation/v1/batches", web::post().to(receive_batch))
            .route("/federation/v1/documents/{id}", web::get().to(document))
            .route("/federation/v1/reconcile", web::get().to(reconcile))
            .default_service(web::to(|| async {
                problem(StatusCode::NOT_FOUND, "not_found", "no such federation route".into(), serde_json::json!({}))
            }))
    })
    .workers(2)
    .shutdown_timeout(10)
    .on_connect(peer_from_connection)
    .listen_rustls_0_23(listener, tls)?
    .run();
    Ok(server)
}

/// Writes TLS-level refusals to the audit log as they come.
pub async fn audit_refusals(store: rhip_store::Store, mut refusals: tokio::sync::mpsc::UnboundedReceiver<Refusal>) {
    while let Some(refusal) = refusals.recv().await {
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || {
            store.write(|tx| {
                tx.append_audit(&NewAuditEntry {
                    actor: format!("peer:{}", refusal.subject.as_deref().unwrap_or("unknown")),
                    actor_region: refusal.region.clone(),
                    action: "connect".into(),
                    resource_type: "federation".into(),
                    outcome: "denied".into(),
                    detail: Some(refusal.reason.clone()),
                    ..NewAuditEntry::default()
                })
            })
        })
        .await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "federation refusal not audited"),
            Err(error) => tracing::warn!(%error, "federation refusal audit task failed"),
        }
    }
}

/// A federation refusal as `application/problem+json`, with a stable `code`
/// and whatever the peer needs to act on it (`expected_seq`, versions).
pub fn problem(status: StatusCode, code: &str, detail: String, extra: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::json!({
        "type": format!("https://rhip.invalid/problems/federation/{code}"),
        "title": code.replace('_', " "),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    HttpResponse::build(status).content_type("application/problem+json").json(body)
}

fn peer_of(request: &HttpRequest) -> Option<RegionCode> {
    request.conn_data::<PeerRegion>().map(|p| p.0).or_else(|| request.extensions().get::<PeerRegion>().map(|p| p.0))
}

async fn hello(request: HttpRequest, context: web::Data<FederationContext>) -> HttpResponse {
    let Some(peer) = peer_of(&request) else {
        return problem(StatusCode::FORBIDDEN, "no_peer", "no peer certificate".into(), serde_json::json!({}));
    };
    tracing::debug!(%peer, "hello");
    HttpResponse::Ok().json(context.hello())
}

async fn receive_batch(request: HttpRequest, body: web::Bytes, context: web::Data<FederationContext>) -> HttpResponse {
    let Some(peer) = peer_of(&request) else {
        return problem(StatusCode::FORBIDDEN, "no_peer", "no peer certificate".into(), serde_json::json!({}));
    };
    let Some(manifest) = request.headers().get(MANIFEST_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("header {MANIFEST_HEADER} (the signed manifest) is missing"),
            serde_json::json!({}),
        );
    };
    let announcement =
        request.headers().get(super::context::ANNOUNCEMENT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let context = context.into_inner();
    let ours = context.announcement.clone();
    match tokio::task::spawn_blocking(move || context.receive(peer, &manifest, &body, announcement.as_deref())).await {
        Ok(answer) => answer.into_response(ours.as_deref()),
        Err(error) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("batch task failed: {error}"),
            serde_json::json!({}),
        ),
    }
}

/// A peer fetches a document's bytes for a user it has authorised; this node
/// answers from its store or asks the next hop toward the holder.
async fn document(
    request: HttpRequest,
    path: web::Path<String>,
    context: web::Data<FederationContext>,
) -> HttpResponse {
    let Some(peer) = peer_of(&request) else {
        return problem(StatusCode::FORBIDDEN, "no_peer", "no peer certificate".into(), serde_json::json!({}));
    };
    let id = path.into_inner();
    if uuid::Uuid::parse_str(&id).is_err() {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("{id:?} is not a document id"),
            serde_json::json!({}),
        );
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let holder = header("x-rhip-holder").and_then(|h| RegionCode::parse(&h).ok());
    let on_behalf_of = super::context::OnBehalfOf {
        user: header("x-rhip-on-behalf-of").unwrap_or_else(|| format!("node:{peer}")),
        facility: header("x-rhip-facility").filter(|f| !f.is_empty()),
        break_glass: header("x-rhip-break-glass").filter(|r| !r.trim().is_empty()),
        node: header("x-rhip-requester").and_then(|r| RegionCode::parse(&r).ok()),
    };
    let hops = header("x-rhip-hops").and_then(|h| h.parse::<u32>().ok()).unwrap_or(1);
    let context = context.into_inner();
    let answer =
        tokio::task::spawn_blocking(move || context.serve_document(peer, &id, holder, &on_behalf_of, hops)).await;
    match answer {
        Ok(Ok(bytes)) => HttpResponse::Ok().content_type("application/xml").body(bytes),
        Ok(Err(super::context::FetchError::NotFound(detail))) => {
            problem(StatusCode::NOT_FOUND, "not_found", detail, serde_json::json!({}))
        }
        Ok(Err(super::context::FetchError::Unreachable(detail))) => {
            problem(StatusCode::BAD_GATEWAY, "unreachable", detail, serde_json::json!({}))
        }
        Ok(Err(super::context::FetchError::Withheld(detail))) => {
            problem(StatusCode::FORBIDDEN, super::context::CONSENT_WITHHELD, detail, serde_json::json!({}))
        }
        Err(error) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("document task failed: {error}"),
            serde_json::json!({}),
        ),
    }
}

/// What this node holds from the calling peer, for its reconciliation.
async fn reconcile(request: HttpRequest, context: web::Data<FederationContext>) -> HttpResponse {
    let Some(peer) = peer_of(&request) else {
        return problem(StatusCode::FORBIDDEN, "no_peer", "no peer certificate".into(), serde_json::json!({}));
    };
    let store = context.store.clone();
    let me = context.me;
    match tokio::task::spawn_blocking(move || store.read(|tx| tx.received_from(peer.as_str()))).await {
        Ok(Ok((last_seq, last_digest, received))) => HttpResponse::Ok().json(serde_json::json!({
            "region": me.as_str(),
            "peer": peer.as_str(),
            "last_seq": last_seq,
            "last_digest": last_digest,
            "received_changes": received,
        })),
        Ok(Err(error)) => {
            problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error.to_string(), serde_json::json!({}))
        }
        Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string(), serde_json::json!({})),
    }
}
