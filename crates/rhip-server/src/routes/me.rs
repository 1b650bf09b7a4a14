//! `GET /api/v1/me…`: a resident's own record, who looked at it, and the
//! consent that restricts who else may.

use crate::blocking::in_transaction;
use crate::consent::Home;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::routes::persons::read_person;
use crate::state::AppState;
use crate::views::{self, IdNumber, PersonDetails};
use actix_web::{web, HttpResponse};
use rhip_api_types::{ConsentRequest, ConsentRuleView, ConsentView, FieldProblem, ItemList};
use rhip_auth::Permission;
use rhip_core::{ConsentCategory, Restrictions};
use rhip_store::{AuditQuery, ConsentRecord};
use std::collections::BTreeMap;

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
    let (person, (contacts, coverages), _) =
        read_person(&state, principal, id, Permission::ReadOwnRecord, "person", |tx, scope, id, _| {
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
    let (_, entries, _) = read_person(&state, principal, id, Permission::ReadOwnRecord, "ehr", |tx, _, id, _| {
        tx.ehr_entries_for(id, 1000)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ItemList { items: entries.into_iter().map(views::ehr_entry).collect(), next: None }))
}

/// The resident's own documents.
#[utoipa::path(get, path = "/api/v1/me/documents", tag = "me",
    responses((status = 200, body = ItemList<rhip_api_types::DocumentView>), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn documents(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let (_, documents, _) =
        read_person(&state, principal, id, Permission::ReadOwnRecord, "documents", |tx, _, id, _| {
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

/// The resident's consent: the sensitive categories they restrict.
#[utoipa::path(get, path = "/api/v1/me/consent", tag = "me",
    responses((status = 200, body = rhip_api_types::ConsentView), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn consent(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = own_id(&principal)?;
    let (_, consent, _) =
        read_person(&state, principal, id.clone(), Permission::ReadOwnRecord, "consent", |tx, _, id, _| {
            tx.consent_of(id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(consent_view(id, consent)))
}

/// Replaces the resident's consent; it travels to every node, which enforce it.
#[utoipa::path(put, path = "/api/v1/me/consent", tag = "me", request_body = rhip_api_types::ConsentRequest,
    responses((status = 200, body = rhip_api_types::ConsentView), (status = 403, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn set_consent(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ManageOwnConsent)?;
    let id = own_id(&principal)?;
    let mut rules = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, rule) in body.into_inner().restrictions.into_iter().enumerate() {
        match ConsentCategory::parse(&rule.category) {
            Err(error) => {
                errors.push(FieldProblem { field: format!("restrictions[{i}].category"), message: error.to_string() })
            }
            Ok(category) if rules.contains_key(category.as_str()) => errors.push(FieldProblem {
                field: format!("restrictions[{i}].category"),
                message: format!("{category} is listed twice"),
            }),
            Ok(category) => {
                let restrictions =
                    Restrictions { leave_home: rule.leave_home, other_facilities: rule.other_facilities };
                rules.insert(category.as_str().to_string(), restrictions);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let home = Home::of(&state);
    let person = id.clone();
    let saved = in_transaction(&state, move |tx| {
        let mut entry = principal.audit("update", "consent", "success");
        entry.person_id = Some(person.clone());
        entry.resource_id = Some(person.clone());
        if !home.is_home(&tx.home_region_of(&person)?) {
            entry.outcome = "denied".into();
            entry.http_status = Some(403);
            entry.detail = Some("not the home county node".into());
            tx.append_audit(&entry)?;
            return Ok(Err(ApiError::Forbidden("consent is recorded at the resident's home county node".into())));
        }
        let saved = tx.set_consent(&person, rules)?;
        let restricted: Vec<String> =
            saved.restrictions().iter().map(|(category, rule)| describe(*category, *rule)).collect();
        entry.detail = Some(if restricted.is_empty() { "nothing restricted".into() } else { restricted.join("; ") });
        tx.append_audit(&entry)?;
        Ok(Ok(saved))
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Ok().json(consent_view(id, Some(saved))))
}

fn describe(category: ConsentCategory, rule: Restrictions) -> String {
    let what: Vec<&str> = [(rule.leave_home, "leave_home"), (rule.other_facilities, "other_facilities")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    format!("{category}: {}", what.join(","))
}

fn consent_view(person: String, consent: Option<ConsentRecord>) -> ConsentView {
    let restrictions = consent
        .as_ref()
        .map(|c| {
            c.restrictions()
                .into_iter()
                .map(|(category, rule)| ConsentRuleView {
                    category: category.as_str().to_string(),
                    leave_home: rule.leave_home,
                    other_facilities: rule.other_facilities,
                })
                .collect()
        })
        .unwrap_or_default();
    ConsentView {
        person,
        restrictions,
        categories: ConsentCategory::ALL.iter().map(|c| c.as_str().to_string()).collect(),
        updated_at: consent.map(|c| c.updated_at),
    }
}
