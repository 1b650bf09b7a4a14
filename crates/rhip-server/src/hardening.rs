//! Hardening of the HTTP API against careless and hostile clients: what
//! every answer says about itself, how much a client may send and how often,
//! which TLS the listener speaks, and what the request log may record.
//!
//! - [`security_headers`] (middleware) gives every answer — errors, the
//!   default 404, `/healthz` and `/metrics` included — `X-Content-Type-Options`,
//!   `X-Frame-Options`, `Referrer-Policy`, `Content-Security-Policy`
//!   (`api.content_security_policy`), `Cross-Origin-Resource-Policy`,
//!   `Cache-Control: no-store` under `/api/` and `/auth/` (personal data is
//!   never cached) and, when the listener speaks TLS, `Strict-Transport-Security`.
//!   A header the handler set itself is left alone.
//! - [`rate_limit`] (middleware) keeps a token bucket per client address
//!   (governor's GCRA) for `POST /auth/*` and for the submission endpoints
//!   (`[api.rate_limits]`). A request over the limit is answered 429 with
//!   `Retry-After` before any handler runs, counted in
//!   `rhip_rate_limited_total`, and audited once per client, class and
//!   minute so a flood cannot flood the audit log.
//! - [`read_body`] reads a raw body (HL7, CDA) up to a limit: refused from
//!   its declared `Content-Length` before a byte is read, and the stream cut
//!   off at the limit otherwise, so an oversized body never sits in memory.
//! - [`api_tls`] is the API listener's TLS policy: TLS 1.3, and TLS 1.2 with
//!   ECDHE key exchange and AEAD ciphers only (`api.tls_min_version`).
//! - [`RedactedRootSpan`] is the request span of the log: method, route, path
//!   without query string, client address, request id, status and problem
//!   type. Never headers (so no `Authorization`), query strings or bodies, so
//!   tokens, passwords and refresh tokens cannot reach the log.

use crate::error::ApiError;
use crate::settings::{ApiSettings, RateLimitSettings, TlsVersion};
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Decompress, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use rhip_store::NewAuditEntry;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// Everything the hardening middleware needs, built once from `[api]` and
/// shared by every worker (the rate-limit buckets must be one per process).
pub struct Hardening {
    headers: SecurityHeaders,
    limits: RateLimits,
}

impl Hardening {
    /// Builds the headers and the buckets from the API settings.
    pub fn new(api: &ApiSettings) -> Result<Hardening, String> {
        Ok(Hardening { headers: SecurityHeaders::new(api)?, limits: RateLimits::new(&api.rate_limits) })
    }
}

/// The security headers of every answer.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    content_security_policy: Option<HeaderValue>,
    strict_transport_security: bool,
}

impl SecurityHeaders {
    /// The CSP from `api.content_security_policy` (none when empty) and HSTS
    /// when the API listener speaks TLS: a browser told to use HTTPS on a
    /// plain-HTTP listener could not reach it any more.
    pub fn new(api: &ApiSettings) -> Result<SecurityHeaders, String> {
        let policy = api.content_security_policy.trim();
        let content_security_policy = if policy.is_empty() {
            None
        } else {
            Some(HeaderValue::from_str(policy).map_err(|e| format!("api.content_security_policy: {e}"))?)
        };
        Ok(SecurityHeaders { content_security_policy, strict_transport_security: api.tls_cert.is_some() })
    }

    /// Adds the headers `headers` lacks; `private` answers (under `/api/` and
    /// `/auth/`) must not be stored by any cache.
    pub fn apply(&self, headers: &mut HeaderMap, private: bool) {
        let mut set = |name: HeaderName, value: HeaderValue| {
            if !headers.contains_key(&name) {
                headers.insert(name, value);
            }
        };
        set(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        set(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        set(header::CROSS_ORIGIN_RESOURCE_POLICY, HeaderValue::from_static("same-origin"));
        if let Some(policy) = &self.content_security_policy {
            set(header::CONTENT_SECURITY_POLICY, policy.clone());
        }
        if private {
            set(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if self.strict_transport_security {
            set(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
        }
    }
}

/// True for paths whose answers may carry personal data or credentials.
fn is_private(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/auth/")
}

/// Adds the security headers to every answer. Handler and extractor errors
/// (`ApiError`) arrive here as answers and get them too; the middleware
/// inside this one (`observe`, [`rate_limit`]) answers rather than fails.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let hardening = req.app_data::<web::Data<Hardening>>().cloned();
    let private = is_private(req.path());
    let mut response = next.call(req).await?;
    match hardening {
        Some(hardening) => hardening.headers.apply(response.headers_mut(), private),
        None => tracing::warn!("security headers not configured; answer sent without them"),
    }
    Ok(response)
}

/// The kinds of request that have a rate limit of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitClass {
    /// `POST /auth/*`: login, register, refresh; guessing passwords.
    Login,
    /// `POST /api/v1/hl7v2` and `POST /api/v1/documents`.
    Submission,
}

impl LimitClass {
    /// The class of a request, if it has one; by path prefix, so routes
    /// added under `/auth/` are limited without being listed here.
    pub fn of(method: &Method, path: &str) -> Option<LimitClass> {
        if method != Method::POST {
            None
        } else if path.starts_with("/auth/") {
            Some(LimitClass::Login)
        } else if path == "/api/v1/hl7v2" || path == "/api/v1/documents" {
            Some(LimitClass::Submission)
        } else {
            None
        }
    }

    /// The label in metrics and audit entries.
    pub fn name(self) -> &'static str {
        match self {
            LimitClass::Login => "login",
            LimitClass::Submission => "submission",
        }
    }
}

/// The bucket key of a client: its address, with IPv4-mapped IPv6 read as
/// IPv4 and IPv6 cut to its /64 (one subscriber's prefix), so a client
/// cannot pass the limit by walking through its own addresses.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

/// How often keys are swept out of the buckets (every this many checks).
const SWEEP_EVERY: u64 = 4096;

/// The token buckets of one process, per class and client.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    submissions: DefaultKeyedRateLimiter<IpAddr>,
    /// One audit entry per class, client and minute.
    audited: DefaultKeyedRateLimiter<(LimitClass, IpAddr)>,
    settings: RateLimitSettings,
    checks: AtomicU64,
}

impl RateLimits {
    /// Buckets for the configured rates; zero rates (refused by the settings
    /// check) are read as one.
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let login =
            Quota::per_minute(at_least_one(settings.login_per_minute)).allow_burst(at_least_one(settings.login_burst));
        let submissions = Quota::per_second(at_least_one(settings.submissions_per_second))
            .allow_burst(at_least_one(settings.submissions_burst));
        RateLimits {
            login: DefaultKeyedRateLimiter::keyed(login),
            submissions: DefaultKeyedRateLimiter::keyed(submissions),
            audited: DefaultKeyedRateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)),
            settings: settings.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a token for `client`, or says how long until one is there.
    pub fn check(&self, class: LimitClass, client: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Forget clients whose buckets are full again, so memory follows
            // the clients of the last minutes, not of all time.
            for limiter in [&self.login, &self.submissions] {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            self.audited.retain_recent();
            self.audited.shrink_to_fit();
        }
        let limiter = match class {
            LimitClass::Login => &self.login,
            LimitClass::Submission => &self.submissions,
        };
        limiter.check_key(&client).map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// True for the first refusal of `client` in `class` this minute.
    fn audit_due(&self, class: LimitClass, client: IpAddr) -> bool {
        self.audited.check_key(&(class, client)).is_ok()
    }

    /// The limit in words, for the problem detail and the audit entry.
    fn describe(&self, class: LimitClass) -> String {
        let s = &self.settings;
        match class {
            LimitClass::Login => {
                format!("at most {} login requests a minute per client, {} at once", s.login_per_minute, s.login_burst)
            }
            LimitClass::Submission => format!(
                "at most {} submissions a second per client, {} at once",
                s.submissions_per_second, s.submissions_burst
            ),
        }
    }
}

/// Whole seconds a client must wait, at least one (`Retry-After` has no fractions).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Refuses requests over their class's rate limit with 429 before any
/// handler (or token check) runs.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let class = LimitClass::of(req.method(), req.path());
    let hardening = req.app_data::<web::Data<Hardening>>().cloned();
    let peer = req.peer_addr().map(|address| address.ip());
    let (Some(class), Some(hardening), Some(peer)) = (class, hardening, peer) else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let client = client_key(peer);
    let Err(wait) = hardening.limits.check(class, client) else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let retry_after_secs = retry_after_secs(wait);
    let limit = hardening.limits.describe(class);
    let error = ApiError::TooManyRequests {
        detail: format!("too many requests from this address ({limit}); retry in {retry_after_secs} s"),
        retry_after_secs,
    };
    if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        state.metrics.rate_limited.with_label_values(&[class.name()]).inc();
        if hardening.limits.audit_due(class, client) {
            let entry = NewAuditEntry {
                actor: "anonymous".into(),
                action: "rate_limit".into(),
                resource_type: "api".into(),
                resource_id: Some(format!("{} {}", req.method(), req.path())),
                outcome: "denied".into(),
                http_status: Some(429),
                request_id: req.extensions().get::<RequestId>().map(|id| id.to_string()),
                source_ip: Some(peer.to_string()),
                detail: Some(format!(
                    "{} limit reached ({limit}); further refusals of this client in the next minute are counted in \
                     rhip_rate_limited_total, not audited",
                    class.name()
                )),
                ..NewAuditEntry::default()
            };
            state.metrics.audit_entries.inc();
            let store = state.store.clone();
            match web::block(move || store.write(|tx| tx.append_audit(&entry))).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "rate-limit refusal not audited"),
                Err(error) => tracing::warn!(%error, "rate-limit audit task failed"),
            }
        }
    }
    let (request, _) = req.into_parts();
    Ok(ServiceResponse::new(request, HttpResponse::from_error(error)).map_into_right_body())
}

/// Reads a raw request body (`Content-Encoding` decoded) of at most `limit`
/// bytes; `what` names it in the 413 problem (e.g. "a CDA document").
pub async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    what: &str,
) -> Result<web::Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("{what} may be at most {limit} bytes"));
    // Refused from its declared length, before any of it is read.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(0, |length| usize::try_from(length).unwrap_or(limit)).min(limit);
    let mut body = web::BytesMut::with_capacity(capacity);
    let mut stream = std::pin::pin!(Decompress::from_headers(payload.into_inner(), request.headers()));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::field("body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            // Undeclared (chunked) or compressed: cut off at the limit.
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The cipher suites the API offers: TLS 1.3's (all AEAD) and TLS 1.2's
/// with ECDHE key exchange and an AEAD cipher. Listed rather than taken from
/// the provider's defaults so a future provider version cannot widen them.
const API_CIPHER_SUITES: [rustls::CipherSuite; 9] = [
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The API listener's TLS policy: the ring provider with only
/// [`API_CIPHER_SUITES`] (and only TLS 1.3's when `minimum` is 1.3; its key
/// exchange groups are X25519, P-256 and P-384, all ECDHE), and the
/// protocol versions from `minimum` up.
pub fn api_tls(
    minimum: TlsVersion,
) -> (rustls::crypto::CryptoProvider, &'static [&'static rustls::SupportedProtocolVersion]) {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|suite| {
        API_CIPHER_SUITES.contains(&suite.suite())
            && (minimum == TlsVersion::Tls12 || suite.version() == &rustls::version::TLS13)
    });
    static FROM_TLS12: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let versions: &'static [&'static rustls::SupportedProtocolVersion] = match minimum {
        TlsVersion::Tls12 => &FROM_TLS12,
        TlsVersion::Tls13 => &TLS13_ONLY,
    };
    (provider, versions)
}

/// The request span: identifiers only. The default span of
/// tracing-actix-web records the query string (where a token or a citizen
/// ID may travel) and its error event prints the error's `Debug`, which for
/// a JSON body that does not parse can quote the body; this one records
/// neither.
pub struct RedactedRootSpan;

impl RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|id| id.to_string()).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".into());
        let client = request.peer_addr().map(|address| address.ip().to_string()).unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %client,
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        let Some(error) = error else { return };
        let status = status.as_u16();
        span.in_scope(|| match error.as_error::<ApiError>() {
            // Server-worded reasons only; an invalid input is named by its
            // fields, never by the messages, which may quote the input.
            Some(api @ (ApiError::Unauthorized(reason) | ApiError::Forbidden(reason))) => {
                tracing::warn!(status, problem = api.problem_type(), %reason, "request refused");
            }
            Some(api @ ApiError::Invalid { errors, .. }) => {
                let fields = errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(", ");
                tracing::info!(status, problem = api.problem_type(), %fields, "request refused");
            }
            Some(api @ ApiError::TooManyRequests { .. }) => {
                tracing::debug!(status, problem = api.problem_type(), "request refused");
            }
            Some(api) if status >= 500 => tracing::error!(status, problem = api.problem_type(), "request failed"),
            Some(api) => tracing::info!(status, problem = api.problem_type(), "request refused"),
            None if status >= 500 => tracing::error!(status, %error, "request failed"),
            None => tracing::info!(status, "request refused"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as actix_test;
    use actix_web::App;

    fn api(text: &str) -> ApiSettings {
        let config = format!(
            "[node]\nregion = \"330106\"\n[database]\nurl = \"sqlite://x.db\"\n[api]\nlisten = \"127.0.0.1:0\"\n{text}\n\
             [keys]\nsigning_key = \"k.pem\"\n"
        );
        crate::Settings::parse(&config).unwrap().api
    }

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    async fn own_cache_control() -> HttpResponse {
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "max-age=60")).body("ok")
    }

    async fn refused() -> Result<HttpResponse, ApiError> {
        Err(ApiError::Forbidden("no".into()))
    }

    #[actix_web::test]
    async fn every_answer_gets_the_headers_and_a_handler_keeps_its_own() {
        let hardening = web::Data::new(Hardening::new(&api("")).unwrap());
        let app = actix_test::init_service(
            App::new()
                .app_data(hardening)
                .route("/healthz", web::get().to(ok))
                .route("/api/v1/own", web::get().to(own_cache_control))
                .route("/api/v1/refused", web::get().to(refused))
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
                .wrap(actix_web::middleware::from_fn(security_headers)),
        )
        .await;
        for (path, status, cache) in [
            ("/healthz", 200, None),
            ("/api/v1/refused", 403, Some("no-store")),
            ("/api/v1/nothing", 404, Some("no-store")),
            ("/auth/login", 404, Some("no-store")),
            ("/api/v1/own", 200, Some("max-age=60")),
        ] {
            let response = actix_test::call_service(&app, actix_test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status().as_u16(), status, "{path}");
            let headers = response.headers();
            let get = |name: HeaderName| headers.get(name).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(get(header::X_CONTENT_TYPE_OPTIONS).as_deref(), Some("nosniff"), "{path}");
            assert_eq!(get(header::X_FRAME_OPTIONS).as_deref(), Some("DENY"));
            assert_eq!(get(header::REFERRER_POLICY).as_deref(), Some("no-referrer"));
            assert_eq!(get(header::CROSS_ORIGIN_RESOURCE_POLICY).as_deref(), Some("same-origin"));
            assert_eq!(
                get(header::CONTENT_SECURITY_POLICY).as_deref(),
                Some("default-src 'none'; frame-ancestors 'none'")
            );
            assert_eq!(get(header::CACHE_CONTROL).as_deref(), cache, "{path}");
            assert_eq!(get(header::STRICT_TRANSPORT_SECURITY), None, "no HSTS over plain HTTP");
        }
    }

    #[test]
    fn hsts_only_with_tls_and_an_empty_policy_sends_no_csp() {
        let mut headers = HeaderMap::new();
        let tls = api("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ncontent_security_policy = \"\"");
        SecurityHeaders::new(&tls).unwrap().apply(&mut headers, false);
        assert_eq!(headers.get(header::STRICT_TRANSPORT_SECURITY).unwrap(), "max-age=31536000");
        assert!(headers.get(header::CONTENT_SECURITY_POLICY).is_none());
        assert!(headers.get(header::CACHE_CONTROL).is_none(), "only /api/ and /auth/ are private");
    }

    #[test]
    fn classes_and_client_keys() {
        assert_eq!(LimitClass::of(&Method::POST, "/auth/login"), Some(LimitClass::Login));
        assert_eq!(LimitClass::of(&Method::POST, "/auth/refresh"), Some(LimitClass::Login));
        assert_eq!(LimitClass::of(&Method::POST, "/api/v1/hl7v2"), Some(LimitClass::Submission));
        assert_eq!(LimitClass::of(&Method::POST, "/api/v1/documents"), Some(LimitClass::Submission));
        assert_eq!(LimitClass::of(&Method::GET, "/api/v1/documents"), None);
        assert_eq!(LimitClass::of(&Method::POST, "/api/v1/facilities"), None);
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(client_key(v6), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
    }

    #[test]
    fn a_burst_passes_then_the_bucket_refuses_per_client_and_audits_once() {
        let limits = RateLimits::new(&RateLimitSettings {
            login_per_minute: 1,
            login_burst: 3,
            submissions_per_second: 1,
            submissions_burst: 1,
        });
        let (one, two): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limits.check(LimitClass::Login, one).is_ok());
        }
        let wait = limits.check(LimitClass::Login, one).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
        assert!(limits.check(LimitClass::Login, two).is_ok(), "another client has its own bucket");
        assert!(limits.check(LimitClass::Submission, one).is_ok(), "another class has its own bucket");
        assert!(limits.audit_due(LimitClass::Login, one));
        assert!(!limits.audit_due(LimitClass::Login, one), "one audit entry a minute");
        assert!(limits.audit_due(LimitClass::Submission, one));
    }

    #[actix_web::test]
    async fn over_the_limit_is_a_429_problem_with_retry_after() {
        let settings = api("[api.rate_limits]\nlogin_per_minute = 1\nlogin_burst = 2");
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(Hardening::new(&settings).unwrap()))
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
                .wrap(actix_web::middleware::from_fn(rate_limit)),
        )
        .await;
        let login = || actix_test::TestRequest::post().uri("/auth/login").peer_addr("10.9.8.7:5000".parse().unwrap());
        for _ in 0..2 {
            assert_eq!(actix_test::call_service(&app, login().to_request()).await.status().as_u16(), 404);
        }
        let refused = actix_test::call_service(&app, login().to_request()).await;
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.headers().get(header::CONTENT_TYPE).unwrap(), "application/problem+json");
        let retry: u64 = refused.headers().get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body: serde_json::Value = actix_test::read_body_json(refused).await;
        assert_eq!(body["type"], "https://rhip.invalid/problems/too-many-requests");
        assert!(body["detail"].as_str().unwrap().contains("at most 1 login requests a minute"), "{body}");
        // Other routes are not limited.
        let other = actix_test::TestRequest::get().uri("/auth/login").peer_addr("10.9.8.7:5000".parse().unwrap());
        assert_eq!(actix_test::call_service(&app, other.to_request()).await.status().as_u16(), 404);
    }

    async fn echo_length(request: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
        let body = read_body(&request, payload, 8, "a test body").await?;
        Ok(HttpResponse::Ok().body(body.len().to_string()))
    }

    #[actix_web::test]
    async fn bodies_over_the_limit_are_refused_declared_or_streamed() {
        let app = actix_test::init_service(App::new().route("/", web::post().to(echo_length))).await;
        let fits = actix_test::TestRequest::post().uri("/").set_payload("12345678").to_request();
        assert_eq!(actix_test::call_and_read_body(&app, fits).await, "8");
        let declared = actix_test::TestRequest::post().uri("/").set_payload("123456789").to_request();
        let answer = actix_test::call_service(&app, declared).await;
        assert_eq!(answer.status().as_u16(), 413);
        let body: serde_json::Value = actix_test::read_body_json(answer).await;
        assert_eq!(body["detail"], "a test body may be at most 8 bytes");
        // A body whose declared length is a lie is cut off at the limit.
        let lying = actix_test::TestRequest::post()
            .uri("/")
            .insert_header((header::CONTENT_LENGTH, "4"))
            .set_payload("123456789")
            .to_request();
        assert_eq!(actix_test::call_service(&app, lying).await.status().as_u16(), 413);
    }

    #[test]
    fn tls_policy_is_ecdhe_and_aead_only() {
        let (provider, versions) = api_tls(TlsVersion::Tls12);
        assert_eq!(versions.len(), 2);
        assert!(!provider.cipher_suites.is_empty());
        for suite in &provider.cipher_suites {
            let name = format!("{:?}", suite.suite());
            let aead = name.contains("_GCM_") || name.contains("CHACHA20_POLY1305");
            assert!(aead && (name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_")), "{name}");
        }
        assert!(provider.kx_groups.iter().all(|group| {
            let name = format!("{:?}", group.name());
            name.contains("X25519") || name.contains("secp")
        }));
        let (provider, versions) = api_tls(TlsVersion::Tls13);
        assert_eq!(versions, &[&rustls::version::TLS13]);
        assert!(provider.cipher_suites.iter().all(|suite| suite.version() == &rustls::version::TLS13));
    }
}
