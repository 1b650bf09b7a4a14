//! CDA documents: `POST /api/v1/documents` (a hospital submits a document),
//! `GET /api/v1/documents/{id}` (original bytes or index entry),
//! `GET /api/v1/persons/{empi_id}/summary.xml` (a generated EHR summary) and
//! `GET /api/v1/encounters/{id}/document.xml` (a generated EMR document).

use crate::blocking::in_transaction;
use crate::consent;
use crate::documents;
use crate::error::ApiError;
use crate::federation::context::FetchError;
use crate::hardening::read_body;
use crate::principal::Principal;
use crate::routes::persons::{deny_now, read_person};
use crate::state::AppState;
use crate::views;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rhip_auth::Permission;
use rhip_core::RegionCode;
use rhip_store::{Access, StoreError};

/// Content type of CDA documents.
const XML: &str = "application/xml";

/// Stores one CDA R2 document: 201 with its index entry, 200 when the same
/// document was stored before, 422 naming the element that was wrong.
#[utoipa::path(post, path = "/api/v1/documents", tag = "documents",
    request_body(content = String, content_type = "application/xml", description = "a CDA R2 document"),
    responses((status = 201, body = rhip_api_types::DocumentView, description = "stored"),
              (status = 200, body = rhip_api_types::DocumentView, description = "the same document was stored before"),
              (status = 409, body = rhip_api_types::Problem, description = "another document has this id"),
              (status = 413, body = rhip_api_types::Problem, description = "larger than api.max_document_bytes"),
              (status = 422, body = rhip_api_types::Problem),
              (status = 429, body = rhip_api_types::Problem, description = "over the client's submission rate"),
              (status = 401, body = rhip_api_types::Problem), (status = 403, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn submit(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::SubmitRecords)?;
    let Some(facility) = principal.claims.facility.clone() else {
        return Err(ApiError::Forbidden("the token names no facility".into()));
    };
    let limit = state.body_limits.document;
    let bytes = read_body(&request, payload, limit, "a CDA document").await?;
    let today = chrono::Utc::now().date_naive();
    let checked = {
        let bytes = bytes.clone();
        web::block(move || documents::check(&bytes, &documents::limits(limit), today)).await?
    };
    let document = match checked {
        Ok(document) => document,
        Err(problem) => return Err(refuse(&state, &principal, &facility, bytes.to_vec(), problem).await),
    };
    let (archived, raw, twin) = (principal.clone(), bytes.to_vec(), (document.clone(), bytes.clone()));
    let stored = in_transaction(&state, move |tx| {
        // The submitting facility must be registered and active here.
        let region = match tx.get_facility(&facility)? {
            Some(found) if found.status == "active" => found.region,
            Some(found) => return Ok(Err(ApiError::Forbidden(format!("facility {facility} is {}", found.status)))),
            None => return Ok(Err(ApiError::Forbidden(format!("facility {facility} is not registered at this node")))),
        };
        let stored = match documents::store(tx, &document, &bytes, &facility)? {
            Ok(stored) => stored,
            Err(refused) => return Ok(Err(refused)),
        };
        let record = &stored.record;
        let mut archive =
            submission(&facility, record.cda_id.clone(), Some(record.type_code.clone()), "AA", None, Vec::new());
        archive.person_id = record.person_id.clone();
        archive.region = Some(region);
        tx.insert_submission(&rhip_core::new_id().to_string(), &archive)?;
        let mut entry = principal.audit("submit", "document", "success");
        entry.http_status = Some(if stored.repeated { 200 } else { 201 });
        entry.resource_id = Some(record.id.clone());
        entry.person_id = record.person_id.clone();
        entry.detail = Some(format!("{} {}", record.type_code, if stored.repeated { "resent" } else { "stored" }));
        tx.append_audit(&entry)?;
        Ok(Ok(stored))
    })
    .await;
    let stored = match stored {
        Ok(stored) => stored,
        // The same document arrived twice at once and the other copy won the unique key: same answer as a resend.
        Err(ApiError::Conflict(message)) => {
            let (document, bytes) = twin;
            match in_transaction(&state, move |tx| Ok(Ok(documents::stored_twin(tx, &document, &bytes)?))).await? {
                Some(record) => documents::Stored { record, repeated: true },
                None => {
                    let facility = archived.claims.facility.clone().unwrap_or_default();
                    return Err(refuse(&state, &archived, &facility, raw, ApiError::Conflict(message)).await);
                }
            }
        }
        Err(error @ (ApiError::Invalid { .. } | ApiError::Forbidden(_))) => {
            let facility = archived.claims.facility.clone().unwrap_or_default();
            return Err(refuse(&state, &archived, &facility, raw, error).await);
        }
        Err(error) => return Err(error),
    };
    state.metrics.documents.with_label_values(&[if stored.repeated { "repeated" } else { "stored" }]).inc();
    let mut response = if stored.repeated { HttpResponse::Ok() } else { HttpResponse::Created() };
    if !stored.repeated {
        response.insert_header((header::LOCATION, format!("/api/v1/documents/{}", stored.record.id)));
    }
    Ok(response.json(views::document(stored.record)))
}

/// Archives and audits a refused document (its bytes kept as the evidence
/// of what was refused, like a refused HL7 message), then answers `error`.
async fn refuse(state: &AppState, principal: &Principal, facility: &str, raw: Vec<u8>, error: ApiError) -> ApiError {
    state.metrics.documents.with_label_values(&["refused"]).inc();
    let problem = error.problem();
    let errors = if problem.errors.is_empty() {
        vec![rhip_api_types::FieldProblem { field: "document".into(), message: problem.detail.clone() }]
    } else {
        problem.errors.clone()
    };
    let mut archive = submission(facility, None, None, "AE", serde_json::to_string(&errors).ok(), raw);
    let mut entry = principal.audit("submit", "document", "refused");
    entry.http_status = Some(i32::from(problem.status));
    entry.detail = Some(problem.detail.chars().take(500).collect());
    state.metrics.audit_entries.inc();
    let written = in_transaction(state, move |tx| {
        let id = rhip_core::new_id().to_string();
        archive.region = tx.get_facility(&archive.sending_facility)?.map(|found| found.region);
        tx.insert_submission(&id, &archive)?;
        entry.resource_id = Some(id);
        tx.append_audit(&entry)?;
        Ok(Ok(()))
    })
    .await;
    match written {
        Ok(()) => error,
        Err(failure) => failure,
    }
}

/// The archive row of a document submission.
fn submission(
    facility: &str,
    cda_id: Option<String>,
    type_code: Option<String>,
    outcome: &str,
    errors: Option<String>,
    raw: Vec<u8>,
) -> rhip_store::NewSubmission {
    rhip_store::NewSubmission {
        channel: "http".into(),
        kind: "cda".into(),
        sending_facility: facility.to_string(),
        control_id: cda_id.unwrap_or_default(),
        message_type: type_code,
        outcome: outcome.into(),
        errors,
        raw,
        ..rhip_store::NewSubmission::default()
    }
}

/// One document: the original bytes with `Accept: application/xml`, else its index entry.
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = rhip_api_types::DocumentView, description = "index entry (JSON) or the original bytes (application/xml)"),
              (status = 403, body = rhip_api_types::Problem), (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if let Err(denied) = principal.require(Permission::ReadDocuments) {
        return Err(deny_now(&state, &principal, "document", None, &denied.to_string()).await);
    }
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::field("id", format!("{id:?} is not a document id (UUID)")));
    }
    let scope = principal.scope()?;
    let want_xml = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/xml") || accept.contains("text/xml"));
    state.metrics.audit_entries.inc();
    let federated = state.federation.is_some();
    let on_behalf_of = consent::on_behalf_of(&principal, state.region);
    let (home, viewer) = (consent::Home::of(&state), consent::viewer(&principal));
    let mut held_back = principal.audit("read", "document", "denied");
    let (record, content) = in_transaction(&state, move |tx| {
        let mut entry = principal.audit("read", "document", "success");
        entry.resource_id = Some(id.clone());
        match tx.get_document(&scope, &id)? {
            Access::Granted(record) => {
                entry.person_id = record.person_id.clone();
                if let Some(person) = record.person_id.clone() {
                    let at_home = home.is_home(&tx.home_region_of(&person)?);
                    let lens = consent::Lens::read(tx, &person, &viewer, at_home)?;
                    entry.detail = lens.audit_note();
                    if !lens.shows_document(&record) {
                        entry.outcome = "denied".into();
                        entry.http_status = Some(403);
                        tx.append_audit(&entry)?;
                        return Ok(Err(consent::withheld_error("document")));
                    }
                }
                let content = if want_xml {
                    match tx.document_content(&id) {
                        Ok(bytes) => Some(Content::Here(bytes)),
                        Err(StoreError::NotFound(message)) => match tx.document_holder(&id)? {
                            Some(holder) if federated => {
                                let fetched = format!("bytes fetched from {holder} over the federation");
                                entry.detail =
                                    Some(entry.detail.take().map_or(fetched.clone(), |d| format!("{d}; {fetched}")));
                                Some(Content::At(holder))
                            }
                            _ => return Err(StoreError::NotFound(message)),
                        },
                        Err(error) => return Err(error),
                    }
                } else {
                    None
                };
                tx.append_audit(&entry)?;
                Ok(Ok((record, content)))
            }
            Access::OutOfScope => {
                entry.outcome = "denied".into();
                entry.http_status = Some(403);
                tx.append_audit(&entry)?;
                Ok(Err(crate::routes::persons::not_yours("document", &id)))
            }
            Access::NotFound => {
                // The same answer as out of scope: a guess learns nothing.
                entry.outcome = "not_found".into();
                entry.http_status = Some(403);
                tx.append_audit(&entry)?;
                Ok(Err(crate::routes::persons::not_yours("document", &id)))
            }
        }
    })
    .await?;
    match content {
        Some(Content::Here(bytes)) => Ok(HttpResponse::Ok().content_type(XML).body(bytes)),
        Some(Content::At(holder)) => {
            let (Some(context), Ok(holder)) = (state.federation.clone(), RegionCode::parse(&holder)) else {
                return Err(ApiError::NotFound(format!("the bytes of document {} are held at {holder}", record.id)));
            };
            let id = record.id.clone();
            let fetched = web::block(move || context.fetch_document(&id, holder, &on_behalf_of, 0, None)).await?;
            match fetched {
                Ok(bytes) => Ok(HttpResponse::Ok().content_type(XML).body(bytes)),
                Err(FetchError::NotFound(detail)) => Err(ApiError::NotFound(detail)),
                Err(FetchError::Withheld(detail)) => {
                    // The read was audited as a fetch; its refusal by the holder is audited too.
                    held_back.resource_id = Some(record.id.clone());
                    held_back.person_id = record.person_id.clone();
                    held_back.detail =
                        Some(format!("the holder {holder} withheld the bytes by the resident's consent"));
                    in_transaction(&state, move |tx| Ok(Ok(tx.append_audit(&held_back)?))).await?;
                    Err(ApiError::Forbidden(detail))
                }
                Err(FetchError::Unreachable(detail)) => Err(ApiError::Unavailable(format!(
                    "the bytes of document {} are held at {holder}, which cannot be reached now: {detail}",
                    record.id
                ))),
            }
        }
        None => Ok(HttpResponse::Ok().json(views::document(record))),
    }
}

/// Where a document's bytes are: here, or at another node (index only here).
enum Content {
    Here(Vec<u8>),
    At(String),
}

/// A CDA EHR summary of the person, generated from what this node holds.
#[utoipa::path(get, path = "/api/v1/persons/{empi_id}/summary.xml", tag = "documents",
    params(("empi_id" = String, Path, description = "EMPI id")),
    responses((status = 200, description = "a CDA R2 document (EHR90 个人健康档案摘要)", content_type = "application/xml"),
              (status = 403, body = rhip_api_types::Problem), (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn summary(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (node, name) = (state.region, state.name.clone());
    let (_, xml, withheld) =
        read_person(&state, principal, path.into_inner(), Permission::ReadEhr, "summary", move |tx, _, id, lens| {
            let person = match tx.get_person(&rhip_store::Scope::Node, id)? {
                Access::Granted(person) => person,
                _ => return Err(rhip_store::StoreError::NotFound(format!("person {id}"))),
            };
            documents::summary_xml(tx, &person, node, &name, lens)
        })
        .await?;
    Ok(consent::respond(withheld).content_type(XML).body(xml))
}

/// The WS/T 500 EMR document of one encounter, generated from stored data.
#[utoipa::path(get, path = "/api/v1/encounters/{id}/document.xml", tag = "documents",
    params(("id" = String, Path, description = "encounter id")),
    responses((status = 200, description = "a CDA R2 document (C0002, C0003 or C0053)", content_type = "application/xml"),
              (status = 403, body = rhip_api_types::Problem), (status = 404, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn encounter_document(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::field("id", format!("{id:?} is not an encounter id (UUID)")));
    }
    let lookup = id.clone();
    let person = in_transaction(&state, move |tx| Ok(Ok(tx.encounter_by_id(&lookup)?.map(|e| e.person_id)))).await?;
    let Some(person) = person else { return Err(ApiError::NotFound(format!("no encounter {id}"))) };
    let (_, xml, _) =
        read_person(&state, principal, person, Permission::ReadEhr, "encounter_document", move |tx, _, _, lens| {
            if !lens.shows_encounter(&id) {
                lens.refuse();
                return Ok(None);
            }
            let encounter = tx.encounter_by_id(&id)?.ok_or_else(|| rhip_store::StoreError::NotFound(id.clone()))?;
            let person = match tx.get_person(&rhip_store::Scope::Node, &encounter.person_id)? {
                Access::Granted(person) => person,
                _ => return Err(rhip_store::StoreError::NotFound(format!("person {}", encounter.person_id))),
            };
            documents::encounter_xml(tx, &person, &encounter).map(Some)
        })
        .await?;
    Ok(HttpResponse::Ok().content_type(XML).body(xml.unwrap_or_default()))
}
