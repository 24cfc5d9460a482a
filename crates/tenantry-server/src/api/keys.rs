//! `/v1/keys`: API keys (scope `admin`, never a tenant-bound key).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::{ApiKey, MintedKey, NewApiKey, Scope};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// `tenants:read`, `tenants:write`, `members:write`, `migrations:run`, `audit:read`,
    /// `secrets:write`, `admin`.
    pub scopes: Vec<String>,
    /// Bind the key to this tenant (slug).
    pub tenant: Option<String>,
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<ApiKey>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<ApiKey>>, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    Ok(axum::Json(state.tenantry.api_keys().await?))
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = MintedKey, description = "the key's secret, shown once")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateKey>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    let scopes = body
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<tenantry::Result<Vec<_>>>()?;
    let minted = state
        .tenantry
        .create_api_key(NewApiKey {
            name: body.name,
            scopes,
            tenant: body.tenant,
        })
        .await?;
    let location = format!("/v1/keys/{}", minted.key.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(minted),
    ))
}

#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path)), responses((status = 200, body = ApiKey)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<ApiKey>, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    Ok(axum::Json(state.tenantry.revoke_api_key(&name).await?))
}
