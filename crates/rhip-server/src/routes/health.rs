//! Liveness, readiness and metrics: open endpoints for load balancers and
//! Prometheus.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use rhip_api_types::Health;

/// The process answers; says which node this is.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        region: state.region.as_str().into(),
        tier: state.region.tier().as_str().into(),
        name: state.name.clone(),
        backend: state.store.backend().as_str().into(),
        version: env!("CARGO_PKG_VERSION").into(),
        parent: state.parent.clone(),
    })
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, body = rhip_api_types::Problem)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    match web::block(move || store.ping()).await? {
        Ok(()) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))),
        Err(error) => Err(error.into()),
    }
}

/// Prometheus text format; pool gauges are read at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (open, idle) = state.store.pool_state();
    state.metrics.pool.with_label_values(&["open"]).set(i64::from(open));
    state.metrics.pool.with_label_values(&["idle"]).set(i64::from(idle));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
