//! `GET /api/v1/federation/status`: this node's links to its parent and
//! children: what waits, what was sent and acknowledged, lag, failures,
//! and changes parked on either side.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use rhip_api_types::FederationStatus;
use rhip_auth::Permission;

/// The node's federation links (empty for a standalone node).
#[utoipa::path(get, path = "/api/v1/federation/status", tag = "federation",
    responses((status = 200, body = FederationStatus), (status = 401, body = rhip_api_types::Problem),
              (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn status(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadFederation)?;
    let Some(context) = state.federation.clone() else {
        return Ok(HttpResponse::Ok().json(FederationStatus {
            region: state.region.to_string(),
            retention: serde_json::Value::Null,
            links: Vec::new(),
            dead_letters: 0,
        }));
    };
    let status = in_transaction(&state, move |tx| Ok(Ok(crate::federation::status(tx, &context)?))).await?;
    state.metrics.set_federation(&status);
    Ok(HttpResponse::Ok().json(status))
}
