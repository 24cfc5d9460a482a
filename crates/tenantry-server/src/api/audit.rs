//! `/v1/audit`: the audit log in chain order, and its verification (scope `audit:read`). A
//! key bound to a tenant reads that tenant's entries only, and cannot verify the whole chain.

use axum::extract::State;
use serde::Deserialize;
use tenantry::audit::AuditReport;
use tenantry::catalog::AuditFilter;
use tenantry::{Event, Scope, TenantId};
use utoipa::IntoParams;

use super::Page;
use crate::AppState;
use crate::auth::Caller;
use crate::body::Query;
use crate::problem::Problem;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// One tenant's entries (slug).
    pub tenant: Option<String>,
    /// At most this many (1–1000; 100 by default).
    pub limit: Option<i64>,
    /// The `next` of the previous page (a position in the chain).
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<Event>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Page<Event>>, Problem> {
    caller.require(Scope::AuditRead)?;
    let limit = super::limit(q.limit)?;
    let tenant_id = match (&q.tenant, &caller.0.tenant_id) {
        (Some(slug), _) => Some(caller.tenant(&state, slug, Scope::AuditRead).await?.id),
        (None, Some(own)) => Some(TenantId::parse(own)?),
        (None, None) => None,
    };
    let filter = AuditFilter {
        since: q
            .since
            .as_deref()
            .map(tenantry::audit::parse_time)
            .transpose()?,
        tenant_id,
    };
    let items = state
        .tenantry
        .catalog()
        .audit_page(&filter, q.after.unwrap_or(0).max(0), limit)
        .await?;
    let next = match items.len() as i64 == limit {
        true => items.last().and_then(|e| e.seq).map(|s| s.to_string()),
        false => None,
    };
    Ok(axum::Json(Page { items, next }))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditReport)))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<AuditReport>, Problem> {
    caller.fleet(Scope::AuditRead, "resource")?;
    Ok(axum::Json(state.tenantry.verify_audit().await?))
}
