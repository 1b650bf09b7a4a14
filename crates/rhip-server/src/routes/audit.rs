//! `GET /api/v1/audit`: auditors read this node's access log.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::routes::params;
use crate::state::AppState;
use crate::views;
use actix_web::{web, HttpResponse};
use rhip_api_types::ItemList;
use rhip_auth::Permission;
use rhip_store::AuditQuery;
use serde::Deserialize;

/// Filters of the audit query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// EMPI id of the person the entries are about.
    pub person: Option<String>,
    /// Actor (token subject).
    pub actor: Option<String>,
    /// Facility of the actor.
    pub facility: Option<String>,
    /// `success`, `denied`, `not_found`.
    pub outcome: Option<String>,
    /// `read`, `search`, `create`, `connect`, `federation_apply`, ...
    pub action: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    pub to: Option<String>,
    /// At most this many entries (default 100, up to 10000).
    pub limit: Option<i64>,
}

/// Audit entries, newest first, filtered by person, actor, facility and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = ItemList<rhip_api_types::AuditEntryView>), (status = 403, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn query(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    if let Err(denied) = principal.require(Permission::ReadAudit) {
        return Err(crate::routes::persons::deny_now(&state, &principal, "audit_log", None, &denied.to_string()).await);
    }
    if principal.effective_region() != Some(state.region) {
        let reason = "only auditors of this node's whole region may read its audit log";
        return Err(crate::routes::persons::deny_now(&state, &principal, "audit_log", None, reason).await);
    }
    let mut errors = Vec::new();
    let from = params::time("from", &params.from, &mut errors);
    let to = params::time("to", &params.to, &mut errors);
    let limit = params::limit(params.limit, 100, 10_000, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let query = AuditQuery {
        person_id: params.person.clone(),
        actor: params.actor.clone(),
        facility_code: params.facility.clone(),
        outcome: params.outcome.clone(),
        action: params.action.clone(),
        from,
        to,
        limit,
    };
    let entries = in_transaction(&state, move |tx| {
        let entries = tx.query_audit(&query)?;
        let mut entry = principal.audit("read", "audit_log", "success");
        entry.person_id = query.person_id.clone();
        entry.detail = Some(format!("{} entries", entries.len()));
        tx.append_audit(&entry)?;
        Ok(Ok(entries))
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Ok().json(ItemList { items: entries.into_iter().map(views::audit_entry).collect(), next: None }))
}
