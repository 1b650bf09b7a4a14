//! Who is calling: the bearer token turned into a [`Principal`], the scope of
//! records it may see, and the audit entries its requests leave.
//!
//! A refused token is audited here, before the handler runs, so every 401 on
//! the API leaves a trace.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use rhip_auth::{permits, Claims, Permission};
use rhip_core::{RegionCode, Role};
use rhip_store::{NewAuditEntry, Scope};
use std::future::Future;
use std::pin::Pin;
use tracing_actix_web::RequestId;

/// An authenticated caller and the request facts the audit log needs.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Verified token claims.
    pub claims: Claims,
    /// Request id (also in the `x-request-id` header and the logs).
    pub request_id: String,
    /// Client address.
    pub source_ip: Option<String>,
    /// The reason a clinician gave to break the glass
    /// ([`BREAK_GLASS_HEADER`]): read beyond their facility's patients, in
    /// an emergency, audited with the reason and shown to the resident.
    pub break_glass: Option<String>,
    node_region: RegionCode,
}

/// Header in which a clinician states why they break the glass.
pub const BREAK_GLASS_HEADER: &str = "X-RHIP-Break-Glass";

/// Shortest and longest reason accepted for breaking the glass.
const BREAK_GLASS_REASON_CHARS: (usize, usize) = (8, 500);

impl Principal {
    /// Fails with 403 unless the role has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if permits(self.claims.role, permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("role {} may not do this ({permission:?})", self.claims.role)))
        }
    }

    /// The region whose subtree the caller may see on this node: the narrower
    /// of the token's region and the node's; `None` if they do not overlap.
    pub fn effective_region(&self) -> Option<RegionCode> {
        let token_region = self.claims.region_code().unwrap_or(self.node_region);
        if self.node_region.contains(&token_region) {
            Some(token_region)
        } else if token_region.contains(&self.node_region) {
            Some(self.node_region)
        } else {
            None
        }
    }

    /// The records this caller may see.
    pub fn scope(&self) -> Result<Scope, ApiError> {
        let out_of_region = || ApiError::Forbidden("token's region lies outside this node's jurisdiction".into());
        match (self.claims.role, &self.break_glass) {
            // Everything this node holds: the patient in front of an emergency
            // clinician may live anywhere (a visitor from another province).
            (Role::Clinician, Some(_)) => return Ok(Scope::Node),
            (role, Some(_)) => {
                return Err(ApiError::Forbidden(format!(
                    "only clinicians may break the glass ({BREAK_GLASS_HEADER}); role {role} may not"
                )))
            }
            _ => {}
        }
        match self.claims.role {
            Role::Commission | Role::Auditor | Role::NodeAdmin => {
                self.effective_region().map(Scope::Region).ok_or_else(out_of_region)
            }
            Role::Clinician | Role::HospitalSystem => {
                Ok(Scope::Facility(self.claims.facility.clone().unwrap_or_default()))
            }
            Role::Resident => Ok(Scope::Person(self.claims.person.clone().unwrap_or_default())),
        }
    }

    /// Who this is in one line (`role subject@node`), for peers that audit
    /// a read made on this principal's behalf.
    pub fn describe(&self) -> String {
        format!("{} {}@{}", self.claims.role.as_str(), self.claims.sub, self.node_region)
    }

    /// An audit entry for this principal, to be completed by the caller.
    pub fn audit(&self, action: &str, resource_type: &str, outcome: &str) -> NewAuditEntry {
        NewAuditEntry {
            actor: self.claims.sub.clone(),
            role: Some(self.claims.role.as_str().to_string()),
            actor_region: self.claims.region.clone(),
            facility_code: self.claims.facility.clone(),
            action: action.into(),
            resource_type: resource_type.into(),
            outcome: outcome.into(),
            http_status: Some(if outcome == "denied" { 403 } else { 200 }),
            request_id: Some(self.request_id.clone()),
            source_ip: self.source_ip.clone(),
            purpose: self.break_glass.as_ref().map(|reason| format!("break_glass: {reason}")),
            ..NewAuditEntry::default()
        }
    }
}

/// The request id actix-web's tracing middleware gave this request.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<RequestId>().map(|id| id.to_string()).unwrap_or_default()
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let request_id = request_id(&req);
            let source_ip = req.connection_info().realip_remote_addr().map(str::to_string);
            let token = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
                .map(str::trim);
            let verified = match token {
                None => Err("missing bearer token (Authorization: Bearer <JWT>)".to_string()),
                Some(token) => state.trust.verify(&state.store, token).await?.map_err(|e| e.to_string()),
            };
            let verified = match verified {
                Ok(claims) if state.revocations.is_revoked(&state.store, &claims.jti).await? => {
                    Err("bearer token has been revoked (logged out)".to_string())
                }
                other => other,
            };
            let break_glass = match req.headers().get(BREAK_GLASS_HEADER) {
                None => None,
                Some(value) => {
                    let reason = value.to_str().map(str::trim).unwrap_or_default().to_string();
                    let chars = reason.chars().count();
                    let (shortest, longest) = BREAK_GLASS_REASON_CHARS;
                    if !(shortest..=longest).contains(&chars) {
                        return Err(ApiError::field(
                            BREAK_GLASS_HEADER,
                            format!(
                                "state the reason in {shortest} to {longest} characters (ASCII or percent-encoded)"
                            ),
                        ));
                    }
                    Some(reason)
                }
            };
            match verified {
                Ok(claims) => Ok(Principal { claims, request_id, source_ip, break_glass, node_region: state.region }),
                Err(reason) => {
                    let entry = NewAuditEntry {
                        actor: "anonymous".into(),
                        action: "authenticate".into(),
                        resource_type: "api".into(),
                        resource_id: Some(format!("{} {}", req.method(), req.path())),
                        outcome: "denied".into(),
                        http_status: Some(401),
                        request_id: Some(request_id),
                        source_ip,
                        detail: Some(reason.clone()),
                        ..NewAuditEntry::default()
                    };
                    state.metrics.audit_entries.inc();
                    let store = state.store.clone();
                    web::block(move || store.write(|tx| tx.append_audit(&entry))).await??;
                    Err(ApiError::Unauthorized(reason))
                }
            }
        })
    }
}
