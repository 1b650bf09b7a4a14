//! The one error type of the HTTP API, answered as `application/problem+json`.
//!
//! | variant           | status | when                                        |
//! |-------------------|--------|---------------------------------------------|
//! | `Unauthorized`    | 401    | no, malformed, forged or expired token      |
//! | `Forbidden`       | 403    | role lacks the permission, or out of scope  |
//! | `NotFound`        | 404    | no such record                              |
//! | `Conflict`        | 409    | the record already exists                   |
//! | `TooLarge`        | 413    | the body is over the route's size limit     |
//! | `Invalid`         | 422    | a field or parameter is wrong (named)       |
//! | `TooManyRequests` | 429    | locked out or over a rate limit; `Retry-After` |
//! | `Unavailable`     | 503    | the database does not answer                |
//! | `Internal`        | 500    | anything else; detail is logged, not sent   |

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rhip_api_types::{FieldProblem, Problem};
use rhip_store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication failed.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// Already there.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the route accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Bad input, with the fields named.
    #[error("{detail}")]
    Invalid {
        /// Summary.
        detail: String,
        /// The fields that were wrong.
        errors: Vec<FieldProblem>,
    },
    /// Too many attempts: a locked login or a rate limit.
    #[error("{detail}")]
    TooManyRequests {
        /// What was refused and why.
        detail: String,
        /// Seconds until the caller may try again (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// Database unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the text is logged only.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// One invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Invalid {
            detail: format!("{field}: {message}"),
            errors: vec![FieldProblem { field: field.into(), message }],
        }
    }

    /// Several invalid fields.
    pub fn fields(errors: Vec<FieldProblem>) -> ApiError {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        ApiError::Invalid { detail, errors }
    }

    /// The problem type's last word (`forbidden`, `too-many-requests`, ...),
    /// for logs that must not carry the detail.
    pub fn problem_type(&self) -> &'static str {
        self.kind().0
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Already exists"),
            ApiError::TooLarge(_) => ("too-large", "Payload too large"),
            ApiError::Invalid { .. } => ("invalid-input", "Invalid input"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.kind();
        let detail = match self {
            ApiError::Internal(_) => "the node failed to answer; the operator can find details in its log".to_string(),
            other => other.to_string(),
        };
        Problem {
            r#type: format!("https://rhip.invalid/problems/{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            errors: match self {
                ApiError::Invalid { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer realm=\"rhip\""));
        }
        if let ApiError::TooManyRequests { retry_after_secs, .. } = self {
            response.insert_header((actix_web::http::header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
        }
        response.json(self.problem())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::NotFound(message) => ApiError::NotFound(message),
            StoreError::Unreachable { .. } | StoreError::Pool(_) => {
                // The driver's words name hosts and databases: log them, answer plainly.
                tracing::error!(%error, "database unavailable");
                ApiError::Unavailable("the database does not answer; try again later".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> ApiError {
        ApiError::Internal(error.to_string())
    }
}
