//! The versioned API (`/v1`): one module per resource, every route behind
//! [`crate::auth::authenticate`]. Bodies are the library's own types, the ones the CLI prints
//! with `--json`.

mod adopt;
mod audit;
mod backups;
mod fleet;
mod identity;
mod keys;
mod moves;
mod rollouts;
mod secrets;
mod tenants;

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router(state: AppState) -> (Router<AppState>, OpenApi) {
    OpenApiRouter::new()
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::show, tenants::rename, tenants::delete))
        .routes(routes!(tenants::suspend))
        .routes(routes!(tenants::resume))
        .routes(routes!(tenants::repair))
        .routes(routes!(tenants::labels))
        .routes(routes!(tenants::add_label, tenants::remove_label))
        .routes(routes!(tenants::events))
        .routes(routes!(backups::list, backups::take))
        .routes(routes!(backups::restore))
        .routes(routes!(moves::move_tenant))
        .routes(routes!(adopt::adopt))
        .routes(routes!(identity::domains, identity::add_domain))
        .routes(routes!(identity::remove_domain))
        .routes(routes!(identity::members, identity::add_member))
        .routes(routes!(identity::set_role, identity::remove_member))
        .routes(routes!(identity::users, identity::add_user))
        .routes(routes!(identity::user))
        .routes(routes!(identity::disable_user))
        .routes(routes!(identity::enable_user))
        .routes(routes!(fleet::servers, fleet::add_server))
        .routes(routes!(fleet::remove_server, fleet::set_placement))
        .routes(routes!(fleet::status))
        .routes(routes!(fleet::tenant_migrations))
        .routes(routes!(fleet::events))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::set, secrets::remove))
        .routes(routes!(rollouts::list, rollouts::start))
        .routes(routes!(rollouts::show))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ))
        .split_for_parts()
}

/// A page of a list and the cursor of the next one.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The largest page a list returns.
pub const MAX_LIMIT: usize = 1000;
/// A list's page when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;

/// A list's `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when left out.
pub fn limit(given: Option<i64>) -> Result<i64, crate::problem::Problem> {
    let limit = given.unwrap_or(DEFAULT_LIMIT as i64);
    if (1..=MAX_LIMIT as i64).contains(&limit) {
        Ok(limit)
    } else {
        Err(
            crate::problem::Problem::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))
                .with_status(axum::http::StatusCode::BAD_REQUEST),
        )
    }
}
