//! Moving a tenant (`/v1/tenants/{slug}/move`): the same call as `tenantry tenant move`, run
//! within the request. Placing a tenant on a server is the fleet's business: an admin key.

use axum::extract::State;
use serde::Deserialize;
use tenantry::{MoveTenant, Moved, Scope, Strategy};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

/// Where to move a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    /// The server to move it to.
    pub to_server: String,
    /// The strategy there; its own when left out.
    pub strategy: Option<Strategy>,
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/move", tag = "tenants",
    params(("slug" = String, Path)), request_body = MoveTo,
    responses((status = 200, body = Moved)))]
pub async fn move_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<MoveTo>,
) -> Result<axum::Json<Moved>, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    let req = MoveTenant {
        to_server: body.to_server,
        strategy: body.strategy,
    };
    Ok(axum::Json(state.tenantry.move_tenant(&slug, req).await?))
}
