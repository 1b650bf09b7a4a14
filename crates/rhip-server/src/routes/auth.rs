//! `/auth/...`: residents enrol with the one-time code their home county
//! issued, log in with citizen ID and password, refresh, change their
//! password and log out.
//!
//! Answers never tell a caller whether a citizen ID is known here or has an
//! account: a wrong password, an unknown citizen ID and a disabled account
//! get the same 401 after the same argon2 work, and enrolment refuses an
//! unknown person and a wrong code in the same words. Failures count per
//! citizen ID typed (by its blind index), so a lock applies alike to known
//! and unknown ones. Every outcome is audited; the audit names the person
//! (never the citizen ID) when one is known, so the resident sees attempts
//! on their account in their access log.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::{request_id, Principal};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::Utc;
use rhip_api_types::{ChangePasswordRequest, LoginRequest, RefreshRequest, RegisterRequest, Registered, TokenPair};
use rhip_auth::claims::AUDIENCE;
use rhip_auth::{Claims, Permission};
use rhip_core::Role;
use rhip_store::{
    Access, EnrolmentRefusal, NewAuditEntry, NewRefreshToken, RefreshUse, Scope, StoreError, TokenRevocation, Tx,
};
use sha2::{Digest, Sha256};

/// Longest citizen ID or code accepted before any work is done.
const MAX_FIELD_CHARS: usize = 64;

/// The same words for every failed login.
const LOGIN_REFUSED: &str = "citizen ID or password is wrong";

/// Citizen ID as typed, in the form it is stored (trimmed, `x` upper case).
fn normalise_citizen_id(text: &str) -> String {
    text.trim().to_uppercase()
}

/// Enrolment code as typed, without dashes, spaces or case.
pub fn normalise_code(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// SHA-256 hex of a secret that is random enough not to need a slow hash
/// (enrolment codes, refresh tokens).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret: `bytes` random bytes, base64url.
fn random_secret(bytes: usize) -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut buffer = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buffer).map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

fn check_length(field: &str, value: &str) -> Result<(), ApiError> {
    match value.trim().is_empty() {
        true => Err(ApiError::field(field, "is required")),
        false if value.chars().count() > MAX_FIELD_CHARS => {
            Err(ApiError::field(field, format!("is longer than {MAX_FIELD_CHARS} characters")))
        }
        false => Ok(()),
    }
}

/// An audit entry for an unauthenticated request to `/auth`.
fn audit(req: &HttpRequest, action: &str, outcome: &str, status: u16) -> NewAuditEntry {
    NewAuditEntry {
        actor: "anonymous".into(),
        action: action.into(),
        resource_type: "account".into(),
        outcome: outcome.into(),
        http_status: Some(i32::from(status)),
        request_id: Some(request_id(req)),
        source_ip: req.connection_info().realip_remote_addr().map(str::to_string),
        ..NewAuditEntry::default()
    }
}

/// Enrols a resident: a valid one-time code for this citizen ID and a
/// strong enough password create the account.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Registered), (status = 409, body = rhip_api_types::Problem),
              (status = 422, body = rhip_api_types::Problem)))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_length("id_number", &body.id_number)?;
    check_length("enrolment_code", &body.enrolment_code)?;
    let id_number = normalise_citizen_id(&body.id_number);
    let birth = id_number.get(6..14).unwrap_or_default().to_string();
    if let Err(reasons) = rhip_auth::check_strength(&body.password, &[&id_number, &birth]) {
        return Err(ApiError::field("password", reasons.join("; ")));
    }
    let password = body.password;
    let hash = web::block(move || rhip_auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let code_hash = secret_hash(&normalise_code(&body.enrolment_code));
    let mut entry = audit(&req, "register", "denied", 422);
    let registered = in_transaction(&state, move |tx| {
        let person = tx.active_person_by_citizen_id(&id_number)?;
        let outcome = match &person {
            Some(person) => tx.enrol_resident(person, &code_hash, &hash)?,
            None => Err(EnrolmentRefusal::InvalidCode),
        };
        let answer = match (outcome, person) {
            (Ok(user_id), Some(person)) => {
                entry.outcome = "success".into();
                entry.http_status = Some(201);
                entry.actor = format!("resident:{person}");
                entry.role = Some(Role::Resident.as_str().into());
                entry.resource_id = Some(user_id);
                entry.person_id = Some(person.clone());
                Ok(Registered { empi_id: person })
            }
            (Err(EnrolmentRefusal::AlreadyEnrolled), person) => {
                entry.http_status = Some(409);
                entry.person_id = person;
                entry.detail = Some("already enrolled".into());
                Err(ApiError::Conflict("this resident already has an account; log in instead".into()))
            }
            (_, person) => {
                // Named in the person's log only when the person is known.
                entry.person_id = person;
                entry.detail = Some("enrolment code not valid for the citizen ID".into());
                Err(ApiError::field(
                    "enrolment_code",
                    "is not valid for this citizen ID (unknown, already used or expired); ask your county for a new one",
                ))
            }
        };
        tx.append_audit(&entry)?;
        Ok(answer)
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Created().json(registered))
}

/// A new access token and refresh token for a resident, the refresh
/// token kept (by hash) in `family`.
fn issue_pair(
    state: &AppState,
    tx: &mut Tx<'_>,
    user_id: &str,
    person: &str,
    family: &str,
) -> Result<Result<TokenPair, ApiError>, StoreError> {
    let ttl = state.auth.resident_token_ttl();
    let now = Utc::now();
    let claims = Claims {
        sub: format!("resident:{person}"),
        role: Role::Resident,
        region: None,
        facility: None,
        person: Some(person.to_string()),
        iss: state.region.to_string(),
        aud: AUDIENCE.into(),
        iat: now.timestamp(),
        exp: now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(900),
        jti: rhip_core::new_id().to_string(),
    };
    let access_token = match state.key.mint(&claims) {
        Ok(token) => token,
        Err(e) => return Ok(Err(ApiError::Internal(e.to_string()))),
    };
    let refresh_token = match random_secret(32) {
        Ok(secret) => secret,
        Err(e) => return Ok(Err(e)),
    };
    let refresh_ttl = chrono::Duration::from_std(state.auth.refresh_token_ttl()).unwrap_or(chrono::Duration::days(30));
    tx.store_refresh_token(&NewRefreshToken {
        id: rhip_core::new_id().to_string(),
        token_hash: secret_hash(&refresh_token),
        family_id: family.to_string(),
        user_id: user_id.to_string(),
        person_id: person.to_string(),
        expires_at: (now + refresh_ttl).naive_utc(),
    })?;
    Ok(Ok(TokenPair { access_token, refresh_token, token_type: "Bearer".into(), expires_in: ttl.as_secs() }))
}

/// The revocation of the bearer token `principal` came with, kept until the
/// token would have expired anyway.
fn revocation_of(principal: &Principal, reason: &str) -> TokenRevocation {
    TokenRevocation {
        jti: principal.claims.jti.clone(),
        issuer: principal.claims.iss.clone(),
        expires_at: chrono::DateTime::from_timestamp(principal.claims.exp, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_else(|| Utc::now().naive_utc()),
        reason: reason.into(),
    }
}

/// Logs a resident in: citizen ID and password give a short-lived access
/// token and a single-use refresh token. Repeated failures lock the
/// citizen ID for a while (429 with `Retry-After`).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = rhip_api_types::Problem),
              (status = 429, body = rhip_api_types::Problem)))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_length("id_number", &body.id_number)?;
    if body.password.is_empty() {
        return Err(ApiError::field("password", "is required"));
    }
    let id_number = normalise_citizen_id(&body.id_number);
    let login_key = state.data_keys.blind_index("login", &id_number);

    // 1. Is the citizen ID locked, and whose account is it?
    let key = login_key.clone();
    let mut locked_entry = audit(&req, "login", "denied", 429);
    let account = in_transaction(&state, move |tx| {
        let failures = tx.login_failures(&key)?;
        let person = tx.active_person_by_citizen_id(&id_number)?;
        let account = match &person {
            Some(person) => tx.resident_account(person)?,
            None => None,
        };
        let now = Utc::now().naive_utc();
        if let Some(until) = failures.locked_until.filter(|until| *until > now) {
            let wait = u64::try_from((until - now).num_seconds()).unwrap_or(0).max(1);
            locked_entry.person_id = account.as_ref().map(|a| a.person_id.clone());
            locked_entry.detail = Some(format!("locked after {} failed logins", failures.failures));
            tx.append_audit(&locked_entry)?;
            return Ok(Err(ApiError::TooManyRequests {
                detail: format!("too many failed logins for this citizen ID; try again in {wait} s"),
                retry_after_secs: wait,
            }));
        }
        Ok(Ok(account))
    })
    .await?;

    // 2. The slow part, off the workers; an unknown account costs the same.
    let password = body.password;
    let candidate = account.clone();
    let verified = web::block(move || match &candidate {
        Some(account) => rhip_auth::verify_password(&password, &account.password_hash) && account.status == "active",
        None => {
            rhip_auth::verify_nothing(&password);
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;

    // 3. Keep the outcome.
    let mut entry = audit(&req, "login", "denied", 401);
    let app = state.clone();
    let answer = in_transaction(&state, move |tx| {
        entry.person_id = account.as_ref().map(|a| a.person_id.clone());
        let answer = match (&account, verified) {
            (Some(account), true) => {
                tx.record_login(&login_key, &account.user_id)?;
                let family = rhip_core::new_id().to_string();
                let pair = issue_pair(&app, tx, &account.user_id, &account.person_id, &family)?;
                entry.actor = format!("resident:{}", account.person_id);
                entry.role = Some(Role::Resident.as_str().into());
                entry.outcome = "success".into();
                entry.http_status = Some(200);
                pair
            }
            _ => {
                let lock_for =
                    |failures| app.auth.lock_for(failures).and_then(|span| chrono::Duration::from_std(span).ok());
                let failures = tx.record_login_failure(&login_key, lock_for)?;
                entry.detail = Some(match failures.locked_until {
                    Some(_) => format!("wrong password; locked after {} failures in a row", failures.failures),
                    None => format!("wrong citizen ID or password ({} in a row)", failures.failures),
                });
                Err(ApiError::Unauthorized(LOGIN_REFUSED.into()))
            }
        };
        tx.append_audit(&entry)?;
        Ok(answer)
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Ok().json(answer))
}

/// A resident changes their password: the current one must be given; the
/// new one meets the enrolment rule. Every session of the account ends
/// (its refresh tokens and the access token used here are revoked) and a
/// fresh pair is answered for this one.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = rhip_api_types::Problem),
              (status = 403, body = rhip_api_types::Problem), (status = 422, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ManageOwnAccount)?;
    let body = body.into_inner();
    check_length("current_password", &body.current_password)?;
    let person = principal.claims.person.clone().unwrap_or_default();

    // 1. The account and what the new password must not contain.
    let who = person.clone();
    let found = in_transaction(&state, move |tx| {
        let account = tx.resident_account(&who)?;
        let record = match tx.get_person(&Scope::Person(who.clone()), &who)? {
            Access::Granted(record) => Some(record),
            _ => None,
        };
        Ok(Ok((account, record)))
    })
    .await?;
    let (Some(account), Some(record)) = found else {
        return Err(ApiError::Forbidden("this token is not a resident's account here".into()));
    };
    let id_number = record.id_number.clone().unwrap_or_default();
    let birth = record.birth_date.map(|d| d.format("%Y%m%d").to_string()).unwrap_or_default();
    if let Err(reasons) = rhip_auth::check_strength(&body.new_password, &[&id_number, &birth, &record.name]) {
        return Err(ApiError::field("new_password", reasons.join("; ")));
    }

    // 2. The slow part, off the workers.
    let (current, new, stored) = (body.current_password, body.new_password, account.password_hash.clone());
    let checked = web::block(move || {
        if !rhip_auth::verify_password(&current, &stored) {
            return Ok(None);
        }
        rhip_auth::hash_password(&new).map(Some)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;

    // 3. Keep the outcome.
    let app = state.clone();
    let revocation = revocation_of(&principal, "password changed");
    let mut entry = principal.audit("change_password", "account", "denied");
    entry.person_id = Some(person.clone());
    entry.resource_id = Some(account.user_id.clone());
    let changed = checked.is_some();
    let answer = in_transaction(&state, move |tx| {
        let answer = match checked {
            None => {
                entry.http_status = Some(422);
                entry.detail = Some("current password wrong".into());
                Err(ApiError::field("current_password", "is not this account's password"))
            }
            Some(hash) => {
                tx.set_password_hash(&account.user_id, &hash)?;
                let ended = tx.revoke_user_refresh_tokens(&account.user_id, "password changed")?;
                tx.revoke_access_token(&revocation)?;
                entry.outcome = "success".into();
                entry.detail = Some(format!("{ended} refresh tokens revoked"));
                let family = rhip_core::new_id().to_string();
                issue_pair(&app, tx, &account.user_id, &person, &family)?
            }
        };
        tx.append_audit(&entry)?;
        Ok(answer)
    })
    .await?;
    state.metrics.audit_entries.inc();
    if changed {
        state.revocations.add(&principal.claims.jti);
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Trades a refresh token for a new pair. Each refresh token works once: a
/// replayed one ends every session of that login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = rhip_api_types::Problem)))]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = body.into_inner().refresh_token.filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::field("refresh_token", "is required"));
    };
    let token_hash = secret_hash(token.trim());
    let mut entry = audit(&req, "refresh", "denied", 401);
    let app = state.clone();
    let pair = in_transaction(&state, move |tx| {
        let answer = match tx.use_refresh_token(&token_hash)? {
            RefreshUse::Valid { family_id, user_id, person_id } => {
                entry.person_id = Some(person_id.clone());
                let active = tx.resident_account(&person_id)?.is_some_and(|a| a.status == "active");
                if active {
                    entry.actor = format!("resident:{person_id}");
                    entry.role = Some(Role::Resident.as_str().into());
                    entry.outcome = "success".into();
                    entry.http_status = Some(200);
                    issue_pair(&app, tx, &user_id, &person_id, &family_id)?
                } else {
                    tx.revoke_refresh_family(&family_id, "account not active")?;
                    entry.detail = Some("account not active".into());
                    Err(ApiError::Unauthorized("refresh token is no longer valid; log in again".into()))
                }
            }
            RefreshUse::Replayed { person_id } => {
                entry.person_id = Some(person_id);
                entry.detail = Some("refresh token replayed; every session of that login ended".into());
                Err(ApiError::Unauthorized("refresh token was already used; log in again".into()))
            }
            RefreshUse::Invalid => {
                entry.detail = Some("unknown or expired refresh token".into());
                Err(ApiError::Unauthorized("refresh token is not valid; log in again".into()))
            }
        };
        tx.append_audit(&entry)?;
        Ok(answer)
    })
    .await?;
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::Ok().json(pair))
}

/// Ends a session: the bearer token is revoked at once and, when the body
/// names the session's refresh token, so is every token of that login.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn logout(
    state: web::Data<AppState>,
    principal: Principal,
    body: Option<web::Json<RefreshRequest>>,
) -> Result<HttpResponse, ApiError> {
    let refresh = body.and_then(|b| b.into_inner().refresh_token).filter(|t| !t.trim().is_empty());
    let revocation = revocation_of(&principal, "logout");
    let person = principal.claims.person.clone();
    let revoked_jti = revocation.jti.clone();
    in_transaction(&state, move |tx| {
        // Travels to the nodes that accept this token: the issuer's
        // descendants, and the issuer itself when it was used below it.
        tx.revoke_access_token(&revocation)?;
        let mut entry = principal.audit("logout", "account", "success");
        entry.person_id = person.clone();
        entry.http_status = Some(204);
        if let Some(token) = refresh {
            match tx.refresh_token_owner(&secret_hash(token.trim()))? {
                Some((family, owner)) if Some(&owner) == person.as_ref() => {
                    tx.revoke_refresh_family(&family, "logout")?;
                }
                _ => entry.detail = Some("refresh token not this principal's; only the access token revoked".into()),
            }
        }
        tx.append_audit(&entry)?;
        Ok(Ok(()))
    })
    .await?;
    state.revocations.add(&revoked_jti);
    state.metrics.audit_entries.inc();
    Ok(HttpResponse::NoContent().finish())
}
