//! `POST /api/v1/hl7v2`: one HL7 v2 message over HTTP, answered with its ACK
//! (`x-application/hl7-v2+er7`) whatever the outcome, as integration engines
//! expect; the same pipeline as the MLLP listener.

use crate::error::ApiError;
use crate::hardening::read_body;
use crate::ingest::Channel;
use crate::principal::Principal;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use rhip_auth::Permission;

/// Content type of HL7 v2 ER7 messages over HTTP.
pub const ER7: &str = "x-application/hl7-v2+er7";

/// Ingests one message and answers with the ACK.
#[utoipa::path(post, path = "/api/v1/hl7v2", tag = "submission",
    request_body(content = String, content_type = "x-application/hl7-v2+er7", description = "one HL7 v2 message (ER7)"),
    responses((status = 200, description = "the ACK (AA, AE with ERR segments, or AR)", content_type = "x-application/hl7-v2+er7"),
              (status = 401, body = rhip_api_types::Problem), (status = 403, body = rhip_api_types::Problem),
              (status = 413, body = rhip_api_types::Problem, description = "larger than mllp.max_message_bytes"),
              (status = 429, body = rhip_api_types::Problem, description = "over the client's submission rate")),
    security(("bearer" = [])))]
pub async fn submit(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::SubmitRecords)?;
    let body = read_body(&request, payload, state.body_limits.hl7, "an HL7 v2 message").await?;
    let channel = Channel::Http {
        subject: principal.claims.sub.clone(),
        facility: principal.claims.facility.clone().unwrap_or_default(),
        request_id: principal.request_id.clone(),
    };
    let answer = state.ingest.submit(body.to_vec(), channel).await.map_err(ApiError::Internal)?;
    state.metrics.hl7_messages.with_label_values(&["http", answer.code]).inc();
    Ok(HttpResponse::Ok().content_type(ER7).body(answer.ack))
}
