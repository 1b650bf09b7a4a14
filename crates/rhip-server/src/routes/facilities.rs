//! `GET/POST /api/v1/facilities`: the registry of facilities that may submit.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use crate::views;
use actix_web::{web, HttpResponse};
use rhip_api_types::{FieldProblem, ItemList, NewFacilityRequest};
use rhip_auth::Permission;
use rhip_core::{FacilityCode, FacilityKind, RegionCode, Role};
use rhip_store::NewFacility;

/// Facilities the caller may see: a commission its jurisdiction, a
/// hospital or clinician their own facility.
#[utoipa::path(get, path = "/api/v1/facilities", tag = "facilities",
    responses((status = 200, body = ItemList<rhip_api_types::FacilityView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadFacilities)?;
    let own_facility = match principal.claims.role {
        Role::Clinician | Role::HospitalSystem => principal.claims.facility.clone(),
        _ => None,
    };
    let region = principal
        .effective_region()
        .ok_or_else(|| ApiError::Forbidden("token's region lies outside this node's jurisdiction".into()))?;
    let facilities = in_transaction(&state, move |tx| Ok(Ok(tx.list_facilities(Some(&region))?))).await?;
    let items = facilities
        .into_iter()
        .filter(|f| own_facility.as_ref().is_none_or(|own| own == &f.code))
        .map(views::facility)
        .collect();
    Ok(HttpResponse::Ok().json(ItemList { items, next: None }))
}

/// Registers a facility (node administrators only).
#[utoipa::path(post, path = "/api/v1/facilities", tag = "facilities", request_body = NewFacilityRequest,
    responses((status = 201, body = rhip_api_types::FacilityView), (status = 403, body = rhip_api_types::Problem),
              (status = 409, body = rhip_api_types::Problem), (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewFacilityRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::WriteFacilities)?;
    let new = validate(&body, state.region)?;
    let record = in_transaction(&state, move |tx| {
        let record = tx.insert_facility(&new)?;
        let mut entry = principal.audit("create", "facility", "success");
        entry.http_status = Some(201);
        entry.resource_id = Some(record.code.clone());
        tx.append_audit(&entry)?;
        Ok(Ok(record))
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Created().json(views::facility(record)))
}

/// Checks a registration request; every wrong field is named.
pub fn validate(body: &NewFacilityRequest, node_region: RegionCode) -> Result<NewFacility, ApiError> {
    let mut errors = Vec::new();
    let code = FacilityCode::parse(&body.code)
        .map_err(|e| errors.push(FieldProblem { field: "code".into(), message: e.to_string() }))
        .ok();
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldProblem { field: "name".into(), message: "must be 1 to 200 characters".into() });
    }
    let kind = match &body.kind {
        None => Some(FacilityKind::Hospital),
        Some(kind) => FacilityKind::parse(kind)
            .map_err(|e| errors.push(FieldProblem { field: "kind".into(), message: e.to_string() }))
            .ok(),
    };
    let region = match &body.region {
        None => Some(node_region),
        Some(region) => match RegionCode::parse(region) {
            Ok(region) if node_region.contains(&region) => Some(region),
            Ok(region) => {
                errors.push(FieldProblem {
                    field: "region".into(),
                    message: format!("{region} lies outside this node's jurisdiction ({node_region})"),
                });
                None
            }
            Err(e) => {
                errors.push(FieldProblem { field: "region".into(), message: e.to_string() });
                None
            }
        },
    };
    match (code, kind, region) {
        (Some(code), Some(kind), Some(region)) if errors.is_empty() => Ok(NewFacility { code, name, kind, region }),
        _ => Err(ApiError::fields(errors)),
    }
}
