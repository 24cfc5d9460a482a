//! Why a request is not served: one enum with a stable code and HTTP status per variant, used
//! by the axum layer and `tenantry resolve` alike.

use std::time::Duration;

use serde::Serialize;

/// A request Tenantry will not serve, and why. `code()` is stable: clients may match on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No identifier named a tenant, or the one named does not exist (or is deleted).
    #[error("no tenant {named} ({via})")]
    TenantNotFound { named: String, via: String },

    /// The tenant exists but is not serving.
    #[error("tenant {tenant:?} is {status}")]
    TenantSuspended { tenant: String, status: String },

    /// The caller is not a member of the tenant.
    #[error("user {user} is not a member of tenant {tenant:?}")]
    NotAMember { user: String, tenant: String },

    /// Two identifiers (or two values of the tenant header) named different tenants.
    #[error("{first_via} names tenant {first:?} but {second_via} names tenant {second:?}")]
    TenantMismatch {
        first: String,
        first_via: String,
        second: String,
        second_via: String,
    },

    /// The bearer token is missing, malformed, expired, badly signed, or names a user that
    /// cannot act.
    #[error("invalid token: {reason}")]
    InvalidToken { reason: String },

    /// The request's host cannot be a host (empty, overlong, two Host headers…).
    #[error("invalid host: {reason}")]
    InvalidHost { reason: String },

    /// Every connection to the tenant's server is in use.
    #[error("busy: {reason}")]
    Busy {
        reason: String,
        retry_after: Duration,
    },

    /// The catalog or the tenant's server could not answer.
    #[error("unavailable: {reason}")]
    Unavailable { reason: String },
}

impl Refusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TenantNotFound { .. } => "tenant_not_found",
            Refusal::TenantSuspended { .. } => "tenant_suspended",
            Refusal::NotAMember { .. } => "not_a_member",
            Refusal::TenantMismatch { .. } => "tenant_mismatch",
            Refusal::InvalidToken { .. } => "invalid_token",
            Refusal::InvalidHost { .. } => "invalid_host",
            Refusal::Busy { .. } => "busy",
            Refusal::Unavailable { .. } => "unavailable",
        }
    }

    /// The HTTP status it is served with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::TenantNotFound { .. } => 404,
            Refusal::TenantSuspended { .. }
            | Refusal::NotAMember { .. }
            | Refusal::TenantMismatch { .. } => 403,
            Refusal::InvalidToken { .. } => 401,
            Refusal::InvalidHost { .. } => 400,
            Refusal::Busy { .. } | Refusal::Unavailable { .. } => 503,
        }
    }

    /// Seconds a client should wait before retrying, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::Busy { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            Refusal::Unavailable { .. } => Some(1),
            _ => None,
        }
    }

    /// The JSON body: `{"error": {"code", "message", "status"}}`.
    pub fn body(&self) -> RefusalBody {
        RefusalBody {
            error: RefusalDetail {
                code: self.code(),
                message: self.to_string(),
                status: self.status(),
            },
        }
    }

    /// The refusal a library error becomes when it happens while serving a request: `busy`
    /// for a full server, the tenant's status for a revoked tenant, `unavailable` otherwise.
    pub fn from_error(error: &crate::Error) -> Refusal {
        match error {
            crate::Error::Busy { .. } => Refusal::Busy {
                reason: error.to_string(),
                retry_after: Duration::from_secs(1),
            },
            crate::Error::InvalidTransition { slug, status, .. } => {
                if matches!(status, crate::Status::Active | crate::Status::Suspended) {
                    Refusal::TenantSuspended {
                        tenant: slug.clone(),
                        status: status.to_string(),
                    }
                } else {
                    Refusal::TenantNotFound {
                        named: slug.clone(),
                        via: format!("it is {status}"),
                    }
                }
            }
            other => Refusal::Unavailable {
                reason: other.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusalBody {
    pub error: RefusalDetail,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusalDetail {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}
