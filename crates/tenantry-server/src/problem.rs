//! Every error the API answers, as `application/problem+json` (RFC 9457), from one mapping:
//! the library's errors and the request's own faults. Bad input is a 4xx naming the field,
//! never a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenantry::Error;

/// An error answer; sent as a [`ProblemDocument`].
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// A stable, machine-readable code (`tenant_not_found`, `slug_taken`, …).
    pub code: &'static str,
    pub detail: String,
    /// The request field at fault, for 400 and 422.
    pub field: Option<String>,
    /// Seconds to wait before retrying (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

/// The problem document (RFC 9457) every error is answered with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// `urn:tenantry:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable, machine-readable code (`tenant_not_found`, `slug_taken`, …).
    pub code: String,
    /// The request field at fault, for 400 and 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            kind: format!("urn:tenantry:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            field: self.field.clone(),
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Problem {
        self.status = status;
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Problem {
        self.retry_after = Some(secs);
        self
    }

    /// 404 for anything a caller may not know exists, worded the same whatever the reason.
    pub fn not_found(what: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer tnt_…`",
        )
    }

    pub fn forbidden(scope: tenantry::Scope) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this key lacks the scope {scope}"),
        )
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail).field(field)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tenantry\""),
            );
        }
        response
    }
}

/// The one mapping from the library's errors.
impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        use StatusCode as S;
        let detail = e.to_string();
        let (status, code, field): (StatusCode, &'static str, Option<&str>) = match &e {
            Error::TenantNotFound { .. } => (S::NOT_FOUND, "tenant_not_found", None),
            Error::RolloutNotFound { .. } => (S::NOT_FOUND, "rollout_not_found", None),
            Error::DomainNotFound { .. } => (S::NOT_FOUND, "domain_not_found", None),
            Error::UserNotFound { .. } => (S::NOT_FOUND, "user_not_found", None),
            Error::ServerNotFound { .. } => (S::NOT_FOUND, "server_not_found", None),
            Error::ApiKeyNotFound { .. } => (S::NOT_FOUND, "api_key_not_found", None),
            Error::SecretNotFound { .. } => (S::NOT_FOUND, "secret_not_found", None),
            Error::BackupNotFound { .. } => (S::NOT_FOUND, "backup_not_found", Some("backup")),
            Error::ServerFull { .. } => (S::CONFLICT, "server_full", Some("server")),
            Error::NoServerFits { .. } => (S::CONFLICT, "no_server_fits", None),
            Error::OperationRunning { .. } => (S::CONFLICT, "operation_running", None),
            Error::MoveRefused { .. } => (S::CONFLICT, "move_refused", None),
            Error::AdoptRefused { .. } => (S::CONFLICT, "adopt_refused", None),
            Error::SplitStopped { .. } => (S::CONFLICT, "split_stopped", None),
            Error::TenantPaused { .. } => (S::SERVICE_UNAVAILABLE, "tenant_paused", None),
            Error::TenantMoved { .. } => (S::SERVICE_UNAVAILABLE, "tenant_moved", None),
            Error::RestoreUnfinished { .. } => (S::CONFLICT, "restore_unfinished", None),
            Error::ImportAbandoned { .. } => (S::CONFLICT, "import_abandoned", None),
            Error::ContentMismatch { .. } => (S::CONFLICT, "content_mismatch", None),
            Error::PurgeIncomplete { .. } => (S::CONFLICT, "purge_incomplete", None),
            Error::ArchiveRefused { .. } => (S::UNPROCESSABLE_ENTITY, "archive_refused", None),
            Error::ArchiveInvalid { .. } => (S::UNPROCESSABLE_ENTITY, "archive_invalid", None),
            Error::NotAMember { .. } => (S::NOT_FOUND, "membership_not_found", None),
            Error::TenantExists { .. } => (S::CONFLICT, "slug_taken", Some("slug")),
            Error::DomainTaken { .. } => (S::CONFLICT, "host_taken", Some("host")),
            Error::UserExists { .. } => (S::CONFLICT, "email_taken", Some("email")),
            Error::ServerExists { .. } => (S::CONFLICT, "server_exists", Some("name")),
            Error::ApiKeyExists { .. } => (S::CONFLICT, "api_key_exists", Some("name")),
            Error::InvalidTransition { .. } => (S::CONFLICT, "invalid_transition", None),
            Error::ServerInUse { .. } => (S::CONFLICT, "server_in_use", None),
            Error::ServerRemoving { .. } => (S::CONFLICT, "server_removing", Some("server")),
            Error::Locked { .. } => (S::CONFLICT, "locked", None),
            Error::RolloutMismatch { .. } => (S::CONFLICT, "rollout_mismatch", None),
            Error::NoSpares { .. } => (S::CONFLICT, "no_spares", None),
            Error::SharedPoolPartial { .. } => (S::CONFLICT, "shared_pool_partial", None),
            Error::InvalidName { kind, .. } => {
                (S::UNPROCESSABLE_ENTITY, "invalid", Some(name_field(kind)))
            }
            Error::InvalidLabel { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("label")),
            Error::InvalidHost { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("host")),
            Error::InvalidEmail { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("email")),
            Error::UnknownRole { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("role")),
            Error::UnknownScope { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("scopes")),
            Error::NoScopes { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("scopes")),
            Error::InvalidTime { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("since")),
            Error::UnknownStrategy { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("strategy")),
            Error::StrategyUnsupported { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "strategy_unsupported",
                Some("strategy"),
            ),
            Error::RolloutOption { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", None),
            Error::RevertTargetAbove { .. } | Error::RevertTargetUnknown { .. } => {
                (S::UNPROCESSABLE_ENTITY, "invalid", Some("to"))
            }
            Error::DownMissing { .. } => (S::UNPROCESSABLE_ENTITY, "down_missing", None),
            Error::InvalidSecret { field, .. } => {
                (S::UNPROCESSABLE_ENTITY, "invalid", Some(*field))
            }
            Error::UnsupportedUrl { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("url")),
            Error::Password { .. } => (S::UNPROCESSABLE_ENTITY, "invalid", Some("password")),
            Error::ServerUnreachable { .. } | Error::ServerTimedOut { .. } => {
                return Problem::new(S::SERVICE_UNAVAILABLE, "server_unavailable", detail)
                    .retry_after(5);
            }
            Error::KeyRotation { .. } => {
                return Problem::new(S::SERVICE_UNAVAILABLE, "key_rotation", detail).retry_after(5);
            }
            Error::Busy { .. } => {
                return Problem::new(S::SERVICE_UNAVAILABLE, "busy", detail).retry_after(1);
            }
            Error::Catalog { .. } | Error::CatalogBusy { .. } => {
                tracing::warn!(error = %detail, "catalog unavailable");
                return Problem::new(S::SERVICE_UNAVAILABLE, "catalog_unavailable", detail)
                    .retry_after(5);
            }
            _ => {
                tracing::error!(error = %detail, "request failed");
                (S::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let problem = Problem::new(status, code, detail);
        match field {
            Some(field) => problem.field(field),
            None => problem,
        }
    }
}

/// The request field an invalid name came in.
fn name_field(kind: &str) -> &'static str {
    match kind {
        "slug" => "slug",
        "server name" => "server",
        _ => "name",
    }
}

/// Answer for a path no route serves.
pub async fn not_found() -> Problem {
    Problem::not_found("resource")
}
