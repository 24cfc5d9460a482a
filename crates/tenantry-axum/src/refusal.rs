//! Refusals as HTTP responses: the status of the refusal, a JSON body
//! `{"error": {"code", "message", "status"}}`, `Retry-After` on 503, `WWW-Authenticate` on
//! 401.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tenantry::routing::Refusal;

/// A [`Refusal`] rendered as a response.
#[derive(Debug, Clone)]
pub struct RefusalResponse(pub Refusal);

impl From<Refusal> for RefusalResponse {
    fn from(refusal: Refusal) -> Self {
        RefusalResponse(refusal)
    }
}

impl IntoResponse for RefusalResponse {
    fn into_response(self) -> Response {
        let refusal = self.0;
        let status =
            StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = refusal.code(), error = %refusal, "request refused");
        } else {
            tracing::debug!(code = refusal.code(), error = %refusal, "request refused");
        }
        let mut response = (status, axum::Json(refusal.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = refusal.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
