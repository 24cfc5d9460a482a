//! A tenant's backups (`/v1/tenants/{slug}/backups`) and restores
//! (`/v1/tenants/{slug}/restore`): the same calls as `tenantry tenant backup | backups |
//! restore`, run within the request.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::{Backup, Scope, Tenant};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

#[utoipa::path(get, path = "/v1/tenants/{slug}/backups", tag = "backups",
    params(("slug" = String, Path)), responses((status = 200, body = Vec<Backup>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<Backup>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(state.tenantry.backups(&slug).await?))
}

/// How to back a tenant up.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeBackup {
    /// The engine's own copy (SQLite database tenants; restorable in place only) instead of
    /// the portable archive.
    #[serde(default)]
    pub native: bool,
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/backups", tag = "backups",
    params(("slug" = String, Path)), request_body = TakeBackup,
    responses((status = 201, body = Backup)))]
pub async fn take(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<TakeBackup>,
) -> Result<impl IntoResponse, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    let backup = state.tenantry.backup_tenant(&slug, body.native).await?;
    Ok((StatusCode::CREATED, axum::Json(backup)))
}

/// Which backup to restore, and where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// The backup's id.
    pub backup: String,
    /// Restore into a new tenant with this slug instead of in place.
    #[serde(rename = "as")]
    pub as_slug: Option<String>,
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/restore", tag = "backups",
    params(("slug" = String, Path)), request_body = Restore,
    responses((status = 200, body = Tenant)))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<Restore>,
) -> Result<axum::Json<Tenant>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    if body.as_slug.is_some() {
        // A new tenant is fleet-wide.
        caller.fleet(Scope::TenantsWrite, "resource")?;
    }
    let tenant = state
        .tenantry
        .restore_tenant(&slug, &body.backup, body.as_slug.as_deref())
        .await?;
    Ok(axum::Json(tenant))
}
