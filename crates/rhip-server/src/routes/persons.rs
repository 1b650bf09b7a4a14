//! `GET /api/v1/persons…`: the demographic index, scoped to the caller.

use crate::blocking::in_transaction;
use crate::consent::{self, Home, Lens};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use crate::views::{self, IdNumber, PersonDetails};
use actix_web::{web, HttpResponse};
use rhip_api_types::{FieldProblem, ItemList};
use rhip_auth::Permission;
use rhip_core::{CitizenId, Identifier, RegionCode};
use rhip_store::{Access, PersonQuery, PersonRecord, Scope, Tx};
use serde::Deserialize;

/// Query parameters of the person search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Citizen ID (GB 11643, 18 characters).
    pub id_number: Option<String>,
    /// Full name (compared without whitespace or case). Needs `birth_date`:
    /// names are encrypted at rest and found through the blind index of
    /// name + birth date, so a name alone cannot be searched (422).
    pub name: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// A cross-referenced identifier, `system|value`.
    pub identifier: Option<String>,
    /// Home region subtree (GB/T 2260 code).
    pub home_region: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// EMPI id after which to continue (from `next`).
    pub after: Option<String>,
}

impl SearchParams {
    fn validate(&self) -> Result<PersonQuery, ApiError> {
        let mut errors = Vec::new();
        let mut query = PersonQuery { limit: self.limit.unwrap_or(50), ..PersonQuery::default() };
        let mut problem = |field: &str, message: String| errors.push(FieldProblem { field: field.into(), message });
        if let Some(value) = &self.id_number {
            match CitizenId::parse(value) {
                Ok(id) => query.id_number = Some(id.as_str().to_string()),
                Err(e) => problem("id_number", e.to_string()),
            }
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.chars().count() > 100 {
                problem("name", "must be 1 to 100 characters".into());
            }
            query.name = Some(name.trim().to_string());
            if self.birth_date.is_none() {
                problem("birth_date", "a search by name needs the birth date too (names are encrypted at rest)".into());
            }
        }
        if let Some(value) = &self.birth_date {
            match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
                Ok(date) => query.birth_date = Some(date),
                Err(_) => problem("birth_date", format!("{value:?} is not a date in the form YYYY-MM-DD")),
            }
        }
        if let Some(value) = &self.identifier {
            match Identifier::parse_token(value) {
                Ok(identifier) => query.identifier = Some(identifier),
                Err(e) => problem("identifier", e.to_string()),
            }
        }
        if let Some(value) = &self.home_region {
            match RegionCode::parse(value) {
                Ok(region) => query.home_region = Some(region),
                Err(e) => problem("home_region", e.to_string()),
            }
        }
        if let Some(limit) = self.limit {
            if !(1..=500).contains(&limit) {
                problem("limit", format!("{limit} is outside 1 to 500"));
            }
        }
        if let Some(after) = &self.after {
            if uuid::Uuid::parse_str(after).is_err() {
                problem("after", format!("{after:?} is not an EMPI id"));
            }
            query.after = Some(after.clone());
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(ApiError::fields(errors))
        }
    }
}

/// Searches persons within the caller's scope; every person returned is audited.
#[utoipa::path(get, path = "/api/v1/persons", tag = "persons", params(SearchParams),
    responses((status = 200, body = ItemList<rhip_api_types::PersonView>), (status = 401, body = rhip_api_types::Problem),
              (status = 403, body = rhip_api_types::Problem), (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn search(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    if let Err(denied) = principal.require(Permission::ReadPersons).and_then(|()| principal.scope()) {
        return Err(deny_now(&state, &principal, "person", None, &denied.to_string()).await);
    }
    let query = params.validate()?;
    let scope = principal.scope()?;
    if let (Some(wanted), rhip_store::Scope::Region(allowed)) = (&query.home_region, &scope) {
        if !allowed.contains(wanted) {
            return Err(
                deny_now(&state, &principal, "persons", None, "home_region outside the caller's jurisdiction").await
            );
        }
    }
    let limit = query.limit;
    let (found, contacts, coverages) = in_transaction(&state, move |tx| {
        let persons = tx.find_persons(&scope, &query)?;
        let ids: Vec<String> = persons.iter().map(|p| p.id.clone()).collect();
        let (contacts, coverages) = (tx.contacts_of(&scope, &ids)?, tx.coverages_of(&scope, &ids)?);
        for person in &persons {
            let mut entry = principal.audit("search", "person", "success");
            entry.resource_id = Some(person.id.clone());
            entry.person_id = Some(person.id.clone());
            tx.append_audit(&entry)?;
        }
        if persons.is_empty() {
            let mut entry = principal.audit("search", "person", "success");
            entry.detail = Some("no match".into());
            tx.append_audit(&entry)?;
        }
        Ok(Ok((persons, contacts, coverages)))
    })
    .await?;
    state.metrics.audit_entries.inc_by(found.len().max(1) as u64);
    let next = (found.len() as i64 == limit).then(|| found.last().map(|p| p.id.clone())).flatten();
    let details = PersonDetails { contacts: &contacts, coverages: &coverages };
    let items = found.into_iter().map(|p| views::person(p, details, IdNumber::Masked)).collect();
    Ok(HttpResponse::Ok().json(ItemList { items, next }))
}

/// Reads one person.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = rhip_api_types::PersonView), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (person, (contacts, coverages), _) =
        read_person(&state, principal, path.into_inner(), Permission::ReadPersons, "person", |tx, scope, id, _| {
            let ids = [id.to_string()];
            Ok((tx.contacts_of(scope, &ids)?, tx.coverages_of(scope, &ids)?))
        })
        .await?;
    let details = PersonDetails { contacts: &contacts, coverages: &coverages };
    Ok(HttpResponse::Ok().json(views::person(person, details, IdNumber::Masked)))
}

/// A person's EHR index, newest first.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/ehr", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = ItemList<rhip_api_types::EhrEntryView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn ehr(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, entries, withheld) =
        read_person(&state, principal, path.into_inner(), Permission::ReadEhr, "ehr", |tx, _, id, lens| {
            Ok(lens.ehr_entries(tx.ehr_entries_for(id, 1000)?))
        })
        .await?;
    let items = entries.into_iter().map(views::ehr_entry).collect();
    Ok(consent::respond(withheld).json(ItemList { items, next: None }))
}

/// Filters of a person's document list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct DocumentFilter {
    /// Only this document type code (`C0032`, `EHR09`).
    pub r#type: Option<String>,
    /// Effective at or after (RFC 3339).
    pub from: Option<String>,
    /// Effective before (RFC 3339).
    pub to: Option<String>,
    /// Only documents authored by this facility code.
    pub facility: Option<String>,
    /// Include versions replaced by a newer one.
    #[serde(default)]
    pub include_superseded: bool,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// A person's document index entries, newest first.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/documents", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id"), DocumentFilter),
    responses((status = 200, body = ItemList<rhip_api_types::DocumentView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem), (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn documents(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    filter: web::Query<DocumentFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = filter.into_inner();
    let mut errors = Vec::new();
    let query = rhip_store::DocumentQuery {
        type_code: filter.r#type,
        from: super::params::time("from", &filter.from, &mut errors),
        to: super::params::time("to", &filter.to, &mut errors),
        facility: filter.facility,
        include_superseded: filter.include_superseded,
        limit: super::params::limit(filter.limit, 100, 1000, &mut errors),
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (_, documents, withheld) = read_person(
        &state,
        principal,
        path.into_inner(),
        Permission::ReadDocuments,
        "documents",
        move |tx, _, id, lens| Ok(lens.documents(tx.find_documents(id, &query)?)),
    )
    .await?;
    let items = documents.into_iter().map(views::document).collect();
    Ok(consent::respond(withheld).json(ItemList { items, next: None }))
}

/// A person's allergies, by allergen code.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/allergies", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = ItemList<rhip_api_types::AllergyView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem), (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn allergies(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, allergies, _) =
        read_person(&state, principal, path.into_inner(), Permission::ReadEhr, "allergies", |tx, scope, id, _| {
            tx.allergies_of(scope, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ItemList { items: allergies.into_iter().map(views::allergy).collect(), next: None }))
}

/// Reads one person and something of theirs under the caller's scope and
/// through the person's consent (which `then` gets, to read under and filter
/// by too), and audits the outcome (success, denied or not found, and what
/// consent withheld or a broken glass overrode) in the same transaction.
/// Also answers how many items consent withheld.
pub(crate) async fn read_person<T, F>(
    state: &AppState,
    principal: Principal,
    empi_id: String,
    permission: Permission,
    resource_type: &'static str,
    then: F,
) -> Result<(PersonRecord, T, usize), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Tx<'_>, &Scope, &str, &Lens) -> Result<T, rhip_store::StoreError> + Send + 'static,
{
    if let Err(denied) = principal.require(permission) {
        return Err(deny_now(state, &principal, resource_type, Some(empi_id), &denied.to_string()).await);
    }
    if uuid::Uuid::parse_str(&empi_id).is_err() {
        return Err(ApiError::field("empi_id", format!("{empi_id:?} is not an EMPI id (UUID)")));
    }
    let scope = match principal.scope() {
        Ok(scope) => scope,
        Err(denied) => return Err(deny_now(state, &principal, resource_type, Some(empi_id), &denied.to_string()).await),
    };
    state.metrics.audit_entries.inc();
    let (home, viewer) = (Home::of(state), consent::viewer(&principal));
    in_transaction(state, move |tx| {
        let mut entry = principal.audit("read", resource_type, "success");
        entry.resource_id = Some(empi_id.clone());
        match tx.get_person(&scope, &empi_id)? {
            Access::Granted(person) => {
                let lens = Lens::read(tx, &person.id, &viewer, home.is_home(&person.home_region))?;
                let extra = then(tx, &scope, &person.id, &lens)?;
                entry.person_id = Some(person.id.clone());
                entry.detail = lens.audit_note();
                if lens.refused() {
                    entry.outcome = "denied".into();
                    entry.http_status = Some(403);
                    tx.append_audit(&entry)?;
                    return Ok(Err(consent::withheld_error(resource_type)));
                }
                tx.append_audit(&entry)?;
                Ok(Ok((person, extra, lens.withheld_count())))
            }
            Access::OutOfScope => {
                entry.outcome = "denied".into();
                entry.http_status = Some(403);
                entry.person_id = Some(empi_id.clone());
                entry.detail = Some("outside the caller's scope".into());
                tx.append_audit(&entry)?;
                Ok(Err(not_yours("person", &empi_id)))
            }
            Access::NotFound => {
                // The same answer as out of scope: a guess learns nothing.
                entry.outcome = "not_found".into();
                entry.http_status = Some(403);
                tx.append_audit(&entry)?;
                Ok(Err(not_yours("person", &empi_id)))
            }
        }
    })
    .await
}

/// The one answer for a record that is out of the caller's scope and for
/// one that does not exist, so guessing ids tells nothing about which exist.
pub(crate) fn not_yours(kind: &str, id: &str) -> ApiError {
    ApiError::Forbidden(format!("{kind} {id} does not exist or lies outside your jurisdiction"))
}

/// Audits a refusal decided before any record was read, and returns the 403.
pub(crate) async fn deny_now(
    state: &AppState,
    principal: &Principal,
    resource_type: &str,
    person: Option<String>,
    reason: &str,
) -> ApiError {
    let mut entry = principal.audit("read", resource_type, "denied");
    entry.http_status = Some(403);
    entry.resource_id = person.clone();
    entry.person_id = person;
    entry.detail = Some(reason.to_string());
    state.metrics.audit_entries.inc();
    match in_transaction(state, move |tx| Ok(Ok(tx.append_audit(&entry)?))).await {
        Ok(()) => ApiError::Forbidden(reason.to_string()),
        Err(error) => error,
    }
}

/// A person's encounters with their diagnoses, newest first.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/encounters", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = ItemList<rhip_api_types::EncounterView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn encounters(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, (encounters, diagnoses), withheld) =
        read_person(&state, principal, path.into_inner(), Permission::ReadEhr, "encounters", |tx, _, id, lens| {
            Ok((lens.encounters(tx.encounters_for(id)?), lens.diagnoses(tx.diagnoses_for(id)?)))
        })
        .await?;
    let items = encounters.into_iter().map(|e| views::encounter(e, &diagnoses)).collect();
    Ok(consent::respond(withheld).json(ItemList { items, next: None }))
}

/// A person's lab and exam results, newest first.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/observations", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = ItemList<rhip_api_types::ObservationView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn observations(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, observations, withheld) =
        read_person(&state, principal, path.into_inner(), Permission::ReadEhr, "observations", |tx, _, id, lens| {
            Ok(lens.observations(tx.observations_for(id, 1000)?))
        })
        .await?;
    let items = observations.into_iter().map(views::observation).collect();
    Ok(consent::respond(withheld).json(ItemList { items, next: None }))
}

/// Merges a person took part in, newest first.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/merges", tag = "persons",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, body = ItemList<rhip_api_types::MergeView>), (status = 403, body = rhip_api_types::Problem),
              (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn merges(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, merges, _) =
        read_person(&state, principal, path.into_inner(), Permission::ReadPersons, "merges", |tx, _, id, _| {
            tx.merges_of(id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ItemList { items: merges.into_iter().map(views::merge).collect(), next: None }))
}
