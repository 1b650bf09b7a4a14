//! `GET /api/v1/me…`: a resident's own record and who looked at it.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::routes::persons::read_person;
use crate::state::AppState;
use crate::views::{self, IdNumber, PersonDetails};
use actix_web::{web, HttpResponse};
use rhip_api_types::ItemList;
use rhip_auth::Permission;
use rhip_store::AuditQuery;

fn own_id(principal: &Principal) -> Result<String, ApiError> {
    principal.require(Permission::ReadOwnRecord)?;
    principal.claims.person.clone().ok_or_else(|| ApiError::Forbidden("token names no person".into()))
}

/// The resident's own person record, with the full citizen ID.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = rhip_api_types::PersonView), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn me(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let (person, (contacts, coverages)) =
        read_person(&state, principal, id, Permission::ReadOwnRecord, "person", |tx, scope, id| {
            let ids = [id.to_string()];
            Ok((tx.contacts_of(scope, &ids)?, tx.coverages_of(scope, &ids)?))
        })
        .await?;
    let details = PersonDetails { contacts: &contacts, coverages: &coverages };
    Ok(HttpResponse::Ok().json(views::person(person, details, IdNumber::Full)))
}

/// The resident's own EHR index, newest first.
#[utoipa::path(get, path = "/api/v1/me/ehr", tag = "me",
    responses((status = 200, body = ItemList<rhip_api_types::EhrEntryView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn ehr(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let (_, entries) =
        read_person(&state, principal, id, Permission::ReadOwnRecord, "ehr", |tx, _, id| tx.ehr_entries_for(id, 1000))
            .await?;
    Ok(HttpResponse::Ok().json(ItemList { items: entries.into_iter().map(views::ehr_entry).collect(), next: None }))
}

/// The resident's own documents.
#[utoipa::path(get, path = "/api/v1/me/documents", tag = "me",
    responses((status = 200, body = ItemList<rhip_api_types::DocumentView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn documents(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let (_, documents) = read_person(&state, principal, id, Permission::ReadOwnRecord, "documents", |tx, _, id| {
        tx.documents_for(id, 1000)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ItemList { items: documents.into_iter().map(views::document).collect(), next: None }))
}

/// Who accessed the resident's record (every audited read and refusal), newest first.
#[utoipa::path(get, path = "/api/v1/me/access-log", tag = "me",
    responses((status = 200, body = ItemList<rhip_api_types::AuditEntryView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn access_log(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let entries = in_transaction(&state, move |tx| {
        let entries =
            tx.query_audit(&AuditQuery { person_id: Some(id.clone()), limit: 1000, ..AuditQuery::default() })?;
        let mut entry = principal.audit("read", "access_log", "success");
        entry.person_id = Some(id);
        tx.append_audit(&entry)?;
        Ok(Ok(entries))
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Ok().json(ItemList { items: entries.into_iter().map(views::audit_entry).collect(), next: None }))
}
