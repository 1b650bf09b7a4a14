//! `GET /api/v1/submissions`: what was received and what became of it; a
//! hospital sees its own, a commission its jurisdiction's facilities.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::routes::params;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use rhip_api_types::{FieldProblem, ItemList, SubmissionView};
use rhip_auth::Permission;
use rhip_core::Role;
use rhip_store::{SubmissionQuery, SubmissionRecord};
use serde::Deserialize;

/// Filters of the submission list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmissionParams {
    /// Sending facility.
    pub facility: Option<String>,
    /// `AA`, `AE` or `AR`.
    pub outcome: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    pub to: Option<String>,
    /// At most this many (default 100, up to 10000).
    pub limit: Option<i64>,
}

/// Received submissions, newest first.
#[utoipa::path(get, path = "/api/v1/submissions", tag = "submission", params(SubmissionParams),
    responses((status = 200, body = ItemList<SubmissionView>), (status = 403, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<SubmissionParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadSubmissions)?;
    let mut errors = Vec::new();
    let from = params::time("from", &params.from, &mut errors);
    let to = params::time("to", &params.to, &mut errors);
    if let Some(outcome) = &params.outcome {
        if !["AA", "AE", "AR"].contains(&outcome.as_str()) {
            errors.push(FieldProblem { field: "outcome".into(), message: format!("{outcome:?} is not AA, AE or AR") });
        }
    }
    let limit = params::limit(params.limit, 100, 10_000, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut query = SubmissionQuery {
        facility: params.facility.clone(),
        outcome: params.outcome.clone(),
        from,
        to,
        limit,
        region: None,
    };
    match principal.claims.role {
        Role::HospitalSystem => {
            let own = principal.claims.facility.clone().unwrap_or_default();
            if query.facility.as_ref().is_some_and(|f| f != &own) {
                return Err(ApiError::Forbidden("a hospital system sees only its own submissions".into()));
            }
            query.facility = Some(own);
        }
        _ => {
            query.region =
                Some(principal.effective_region().ok_or_else(|| {
                    ApiError::Forbidden("token's region lies outside this node's jurisdiction".into())
                })?);
        }
    }
    let found = in_transaction(&state, move |tx| Ok(Ok(tx.list_submissions(&query)?))).await?;
    Ok(HttpResponse::Ok().json(ItemList { items: found.into_iter().map(view).collect(), next: None }))
}

fn view(record: SubmissionRecord) -> SubmissionView {
    SubmissionView {
        id: record.id,
        channel: record.channel,
        kind: record.kind,
        sending_facility: record.sending_facility,
        control_id: record.control_id,
        message_type: record.message_type,
        version: record.version,
        received_at: record.received_at,
        outcome: record.outcome,
        errors: record.errors.and_then(|e| serde_json::from_str(&e).ok()).unwrap_or_default(),
        person: record.person_id,
        z_segments: record.z_segments.map(|z| z.split('\r').map(str::to_string).collect()).unwrap_or_default(),
    }
}

/// Person-linking decisions waiting for a human, oldest first (commissions
/// see those about their region's residents).
#[utoipa::path(get, path = "/api/v1/review-queue", tag = "submission",
    responses((status = 200, body = ItemList<rhip_api_types::ReviewItemView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn review_queue(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadPersons)?;
    let scope = match principal.claims.role {
        Role::Commission => principal.scope()?,
        _ => return Err(ApiError::Forbidden("the review queue is for commissions".into())),
    };
    let items = in_transaction(&state, move |tx| {
        let items = tx.open_review_items(&scope, 1000)?;
        for item in &items {
            let mut entry = principal.audit("read", "review_queue", "success");
            entry.person_id = Some(item.person_id.clone());
            entry.resource_id = Some(item.id.clone());
            tx.append_audit(&entry)?;
        }
        Ok(Ok(items))
    })
    .await?;
    let items = items
        .into_iter()
        .map(|i| rhip_api_types::ReviewItemView {
            id: i.id,
            person: i.person_id,
            candidate: i.candidate_id,
            reason: i.reason,
            submission: i.submission_id,
            created_at: i.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ItemList { items, next: None }))
}
