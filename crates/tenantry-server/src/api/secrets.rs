//! `/v1/tenants/{slug}/secrets`: a tenant's secrets by name (values are written, never read
//! back: the library hands them only to the tenant's own context).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry::Scope;
use tenantry::catalog::SecretInfo;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

#[utoipa::path(get, path = "/v1/tenants/{slug}/secrets", tag = "secrets",
    params(("slug" = String, Path)), responses((status = 200, body = Vec<SecretInfo>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<SecretInfo>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(state.tenantry.secret_names(&slug).await?))
}

/// A secret's value (1 byte to 64 KiB).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    pub value: String,
}

#[utoipa::path(put, path = "/v1/tenants/{slug}/secrets/{name}", tag = "secrets",
    params(("slug" = String, Path), ("name" = String, Path)), request_body = SetSecret,
    responses((status = 200, body = SecretInfo)))]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
    Json(body): Json<SetSecret>,
) -> Result<axum::Json<SecretInfo>, Problem> {
    caller.require(Scope::SecretsWrite)?;
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(
        state.tenantry.set_secret(&slug, &name, &body.value).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/tenants/{slug}/secrets/{name}", tag = "secrets",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "removed")))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::SecretsWrite)?;
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    state.tenantry.remove_secret(&slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
