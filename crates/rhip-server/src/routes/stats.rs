//! `GET /api/v1/stats/summary?region=R`: counts for a region and its subtree.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use rhip_api_types::StatsSummary;
use rhip_auth::Permission;
use rhip_core::RegionCode;
use serde::Deserialize;

/// The region to count.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// GB/T 2260 code; defaults to the caller's region.
    pub region: Option<String>,
}

/// Persons, encounters, documents, EHR entries and submissions of a region's subtree.
#[utoipa::path(get, path = "/api/v1/stats/summary", tag = "stats", params(StatsParams),
    responses((status = 200, body = StatsSummary), (status = 403, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn summary(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadStats)?;
    let allowed = principal
        .effective_region()
        .ok_or_else(|| ApiError::Forbidden("token's region lies outside this node's jurisdiction".into()))?;
    let region = match &params.region {
        None => allowed,
        Some(code) => RegionCode::parse(code).map_err(|e| ApiError::field("region", e.to_string()))?,
    };
    if !allowed.contains(&region) {
        return Err(ApiError::Forbidden(format!("{region} lies outside your jurisdiction ({allowed})")));
    }
    let counts = in_transaction(&state, move |tx| Ok(Ok(tx.region_counts(&region)?))).await?;
    Ok(HttpResponse::Ok().json(StatsSummary {
        region: region.as_str().to_string(),
        persons: counts.persons,
        encounters: counts.encounters,
        documents: counts.documents,
        ehr_entries: counts.ehr_entries,
        submissions_accepted: counts.submissions_accepted,
        submissions_rejected: counts.submissions_rejected,
    }))
}
