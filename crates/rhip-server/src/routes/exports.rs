//! `GET /api/v1/exports/deidentified?region=R&k=N`: a de-identified export
//! of a region's residents for a commission, as JSON Lines
//! (`application/x-ndjson`; format in `schemas/exports/`).
//!
//! The export is made on the blocking pool into a temporary file
//! (`crate::export`: one snapshot, two passes, checked against its own k
//! before release), audited once (who, region, k, purpose, counts, the
//! file's SHA-256), then streamed from the file, which is unlinked as soon
//! as it is open. Refusals: another role 403, a region outside the token's
//! jurisdiction 403 (both audited), a bad `region`, `k` or `purpose` 422
//! naming it; nothing is written for any of them.

use std::io::Read;

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::export::{audit_entry, write_export, ExportError, ExportRequest};
use crate::principal::Principal;
use crate::state::AppState;
use actix_web::body::SizedStream;
use actix_web::{web, HttpResponse};
use rhip_api_types::FieldProblem;
use rhip_auth::Permission;
use rhip_core::RegionCode;
use serde::Deserialize;

/// Longest stated purpose, in characters.
const PURPOSE_MAX_CHARS: usize = 200;
/// Bytes per streamed chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// What to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// GB/T 2260 code whose residents (by home region, the whole subtree) are
    /// exported; defaults to the caller's region. Must lie in the caller's
    /// jurisdiction.
    pub region: Option<String>,
    /// Smallest equivalence class (2 to 1000, at least the node's
    /// `export.min_k`); defaults to the node's `export.k` (5).
    pub k: Option<String>,
    /// Why the export is taken, for the audit log (1 to 200 characters;
    /// default `statistics`).
    pub purpose: Option<String>,
}

/// A de-identified export of a region's residents: a header line stating
/// what was done, then one line per person of an equivalence class of at
/// least `k` (pseudonym, sex, birth year or age band, municipal region,
/// coded encounters, diagnoses, results and other EHR entries by month).
#[utoipa::path(get, path = "/api/v1/exports/deidentified", tag = "exports", params(ExportParams),
    responses((status = 200, description = "JSON Lines, format rhip-deidentified-export version 1",
               content_type = "application/x-ndjson", body = String),
              (status = 401, body = rhip_api_types::Problem), (status = 403, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn deidentified(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    if let Err(denied) = principal.require(Permission::ExportDeidentified) {
        return Err(deny(&state, &principal, None, &denied.to_string()).await);
    }
    let Some(allowed) = principal.effective_region() else {
        return Err(deny(&state, &principal, None, "token's region lies outside this node's jurisdiction").await);
    };
    let params = params.into_inner();
    let (region, k, purpose) = validate(&state, &params, allowed)?;
    if !allowed.contains(&region) {
        let reason = format!("{region} lies outside your jurisdiction ({allowed})");
        return Err(deny(&state, &principal, Some(region), &reason).await);
    }
    let request = ExportRequest { region, k, purpose };
    let path = std::env::temp_dir().join(format!("rhip-export-{}.jsonl.part", uuid::Uuid::now_v7().simple()));
    let written = {
        let (store, keys, request, path) =
            (state.store.clone(), state.data_keys.clone(), request.clone(), path.clone());
        let span = tracing::Span::current();
        web::block(move || span.in_scope(|| write_export(&store, &keys, &request, &rhip_deid::KeepAll, &path))).await?
    };
    let written = match written {
        Ok(written) => written,
        Err(ExportError::Store(error)) => return Err(error.into()),
        Err(other) => return Err(ApiError::Internal(other.to_string())),
    };
    let entry = audit_entry(principal.audit("export", "deidentified_export", "success"), &request, &written);
    state.metrics.audit_entries.inc();
    if let Err(error) = in_transaction(&state, move |tx| Ok(Ok(tx.append_audit(&entry)?))).await {
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    // Unlinked once open: the bytes live as long as the stream, and a client
    // that goes away leaves nothing behind.
    let file = std::fs::File::open(&path).map_err(|e| ApiError::Internal(format!("reopen the export: {e}")))?;
    let _ = std::fs::remove_file(&path);
    tracing::info!(
        region = %request.region,
        k = request.k.get(),
        records = written.header.counts.records_exported,
        suppressed = written.header.counts.records_suppressed,
        "de-identified export released"
    );
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let chunk = web::block(move || {
            let mut buffer = vec![0u8; CHUNK_BYTES];
            let read = file.read(&mut buffer)?;
            buffer.truncate(read);
            Ok::<_, std::io::Error>((file, buffer))
        })
        .await;
        match chunk {
            Ok(Ok((_, buffer))) if buffer.is_empty() => None,
            Ok(Ok((file, buffer))) => Some((Ok(web::Bytes::from(buffer)), Some(file))),
            Ok(Err(error)) => Some((Err(error), None)),
            Err(error) => Some((Err(std::io::Error::other(error.to_string())), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"deidentified-{}.jsonl\"", request.region),
        ))
        .body(SizedStream::new(written.bytes, stream)))
}

/// The region (default: the caller's), `k` and purpose, or 422 naming every
/// bad one.
fn validate(
    state: &AppState,
    params: &ExportParams,
    allowed: RegionCode,
) -> Result<(RegionCode, rhip_deid::K, String), ApiError> {
    let mut errors = Vec::new();
    let region = match &params.region {
        None => Some(allowed),
        Some(code) => RegionCode::parse(code)
            .map_err(|e| errors.push(FieldProblem { field: "region".into(), message: e.to_string() }))
            .ok(),
    };
    let k = state
        .export
        .k_for(params.k.as_deref())
        .map_err(|message| errors.push(FieldProblem { field: "k".into(), message }))
        .ok();
    let purpose = params.purpose.as_deref().map(str::trim).unwrap_or("statistics").to_string();
    let chars = purpose.chars().count();
    if !(1..=PURPOSE_MAX_CHARS).contains(&chars) || purpose.chars().any(char::is_control) {
        errors.push(FieldProblem {
            field: "purpose".into(),
            message: format!("state the purpose in 1 to {PURPOSE_MAX_CHARS} characters, without control characters"),
        });
    }
    match (region, k) {
        (Some(region), Some(k)) if errors.is_empty() => Ok((region, k, purpose)),
        _ => Err(ApiError::fields(errors)),
    }
}

/// Audits a refused export and answers 403.
async fn deny(state: &AppState, principal: &Principal, region: Option<RegionCode>, reason: &str) -> ApiError {
    let mut entry = principal.audit("export", "deidentified_export", "denied");
    entry.http_status = Some(403);
    entry.resource_id = region.map(|r| r.as_str().to_string());
    entry.detail = Some(reason.to_string());
    state.metrics.audit_entries.inc();
    match in_transaction(state, move |tx| Ok(Ok(tx.append_audit(&entry)?))).await {
        Ok(()) => ApiError::Forbidden(reason.to_string()),
        Err(error) => error,
    }
}
