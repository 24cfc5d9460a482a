//! The document service of the README's walkthrough: campaigns and documents, one set of
//! tenant migrations (Tenantry's example set) for every strategy, served through
//! [`tenantry_axum::TenantLayer`].
//!
//! - `GET /health` — outside the layer: no tenant;
//! - `GET /me` — the tenant, the caller and their role;
//! - `GET /documents` — the tenant's documents;
//! - `POST /documents` — add one (`{"path", "campaign"?}`), for `employee` and above.

mod documents;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tenantry::Tenantry;
use tenantry::routing::Resolver;
use tenantry_axum::{CurrentCaller, CurrentTenant, TenantLayer};

/// The service's routes, resolving tenants with `resolver`.
pub fn app(resolver: Resolver) -> Router {
    let tenant_routes = Router::new()
        .route("/me", get(me))
        .route("/documents", get(documents::list).post(documents::create))
        .layer(TenantLayer::new(resolver));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(tenant_routes)
}

/// The service's routes on a Tenantry configured by `tenantry.toml` (`[routing]`).
pub fn app_for(tenantry: &Tenantry) -> tenantry::Result<Router> {
    Ok(app(Resolver::new(tenantry)?))
}

async fn me(CurrentTenant(tenant): CurrentTenant, caller: Option<CurrentCaller>) -> Response {
    let caller = caller.map(|CurrentCaller(c)| c);
    axum::Json(json!({
        "tenant": {
            "id": tenant.id.to_string(),
            "slug": tenant.slug,
            "name": tenant.name,
            "strategy": tenant.strategy,
        },
        "user": caller.as_ref().map(|c| json!({ "id": c.user_id, "email": c.email, "name": c.display_name })),
        "role": caller.and_then(|c| c.role),
    }))
    .into_response()
}

/// An error of the service's own, in the same JSON shape as Tenantry's refusals.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body =
        json!({ "error": { "code": code, "message": message.into(), "status": status.as_u16() } });
    (status, axum::Json(body)).into_response()
}
