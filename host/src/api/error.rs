//! The one error type of the HTTP API. Clients get Backstage's error shape
//! (`{"error":{"name","message"},"response":{"statusCode"}}`) with the right
//! status; internal details go to the log only.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::{QueryError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Well-formed but refers to what does not exist or conflicts.
    #[error("{0}")]
    Unprocessable(String),
    /// A plugin or upstream failed to answer.
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Too many attempts from one address.
    #[error("{0}")]
    TooMany(String),
    /// The request body is over `server.max_body_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// The store cannot take writes now (disk full, read-only data
    /// folder); reads keep working.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "InputError"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundError"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "ConflictError"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "AuthenticationError"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "NotAllowedError"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InputError"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "UpstreamError"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "InputError"),
            ApiError::HeadersTooLarge(_) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "InputError")
            }
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsError"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError"),
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, name) = self.parts();
        let retry = matches!(self, ApiError::Unavailable(_));
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let body = json!({
            "error": {"name": name, "message": message},
            "response": {"statusCode": status.as_u16()},
        });
        let mut response = (status, Json(body)).into_response();
        if retry {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("30"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let Some(why) = e.unwritable() {
            tracing::error!(error = %e, "the store cannot be written");
            return ApiError::Unavailable(format!(
                "the store cannot be written now: {why}; nothing stored is lost and reads keep working. An operator frees space or makes the data folder writable, then the request can be sent again"
            ));
        }
        match e {
            StoreError::LocationExists(what) => {
                ApiError::Conflict(format!("location {what} already exists"))
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::service::ServiceError> for ApiError {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError as S;
        match e {
            S::BadInput(m) => ApiError::BadRequest(m),
            S::NotFound(m) => ApiError::NotFound(m),
            S::Forbidden(m) => ApiError::Forbidden(m),
            S::Conflict(m) => ApiError::Conflict(m),
            S::Invalid(m) => ApiError::Unprocessable(m),
            S::Plugin(m) => ApiError::Upstream(m),
            S::Store(e) => e.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge(
                "the request body is over the limit (server.max_body_bytes); send less, or an operator raises the limit".into(),
            );
        }
        ApiError::BadRequest(format!("invalid JSON body: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<StoreError>() {
            Ok(store) => store.into(),
            Err(e) => ApiError::Internal(e),
        }
    }
}
