//! The fleet's servers (`/v1/servers`), its migrations (`/v1/migrations/status`, one
//! tenant's `…/migrations`), and its event log (`/v1/events`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::migrate::{MigrationSummary, TenantMigrations};
use tenantry::{Event, Scope, Server};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path, Query};
use crate::problem::Problem;

#[utoipa::path(get, path = "/v1/servers", tag = "servers", responses((status = 200, body = Vec<Server>)))]
pub async fn servers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<Server>>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    Ok(axum::Json(state.tenantry.catalog().servers().await?))
}

/// A server to register (checked to answer first).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddServer {
    pub name: String,
    /// `postgres://…`, `mysql://…` or `sqlite:<dir>`.
    pub url: String,
    /// A transaction-mode PgBouncer in front of a PostgreSQL server.
    pub pooler: Option<String>,
}

#[utoipa::path(post, path = "/v1/servers", tag = "servers", request_body = AddServer,
    responses((status = 201, body = Server)))]
pub async fn add_server(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<AddServer>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    let t = &state.tenantry;
    let mut server = t.add_server(&body.name, &body.url).await?;
    if let Some(pooler) = &body.pooler {
        server = t.set_server_pooler(&body.name, Some(pooler)).await?;
    }
    Ok((StatusCode::CREATED, axum::Json(server)))
}

/// A change to a server's placement facts; what is left out stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPlacement {
    /// The most tenants it holds.
    pub capacity: Option<i64>,
    /// Lift the capacity limit.
    #[serde(default)]
    pub no_capacity: bool,
    pub region: Option<String>,
    /// Clear the region.
    #[serde(default)]
    pub no_region: bool,
    #[serde(default)]
    pub add_labels: Vec<String>,
    #[serde(default)]
    pub remove_labels: Vec<String>,
}

#[utoipa::path(patch, path = "/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path)), request_body = ServerPlacement,
    responses((status = 200, body = Server)))]
pub async fn set_placement(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<ServerPlacement>,
) -> Result<axum::Json<Server>, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    let change = tenantry::placement::PlacementChange {
        capacity: if body.no_capacity {
            Some(None)
        } else {
            body.capacity.map(Some)
        },
        region: if body.no_region {
            Some(None)
        } else {
            body.region.map(Some)
        },
        add_labels: body.add_labels,
        remove_labels: body.remove_labels,
    };
    Ok(axum::Json(
        state.tenantry.set_server_placement(&name, change).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path)), responses((status = 204, description = "removed")))]
pub async fn remove_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    state.tenantry.remove_server(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/migrations/status", tag = "migrations",
    responses((status = 200, body = MigrationSummary)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<MigrationSummary>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    let set = state.tenantry.migrations()?;
    Ok(axum::Json(state.tenantry.migration_summary(&set).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{slug}/migrations", tag = "migrations",
    params(("slug" = String, Path)), responses((status = 200, body = TenantMigrations)))]
pub async fn tenant_migrations(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<TenantMigrations>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    let set = state.tenantry.migrations()?;
    Ok(axum::Json(
        state.tenantry.tenant_migrations(&slug, &set).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// At most this many, newest first (1–1000; 100 by default).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = Vec<Event>)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
) -> Result<axum::Json<Vec<Event>>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    let limit = super::limit(q.limit)?;
    Ok(axum::Json(
        state.tenantry.catalog().events(None, limit).await?,
    ))
}
