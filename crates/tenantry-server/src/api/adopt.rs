//! Adopting an existing database or schema as a tenant (`/v1/adoptions`): the same call as
//! `tenantry tenant adopt`. Registering storage found on a server is the fleet's business:
//! an admin key.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::{AdoptTenant, Adopted, Scope, Strategy};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::Json;
use crate::problem::Problem;

/// What to adopt: a database or a schema that exists on a server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adopt {
    /// The new tenant's slug.
    pub slug: String,
    /// Display name; the slug when left out.
    pub name: Option<String>,
    /// The server holding the storage.
    pub server: String,
    /// The existing database (database strategy); give this or `schema`.
    pub database: Option<String>,
    /// The existing schema (schema strategy, PostgreSQL).
    pub schema: Option<String>,
    /// The version its schema holds, when it has no `_sqlx_migrations` to say so (0: none
    /// of the set's migrations).
    pub baseline: Option<i64>,
}

#[utoipa::path(post, path = "/v1/adoptions", tag = "tenants", request_body = Adopt,
    responses((status = 201, body = Adopted)))]
pub async fn adopt(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Adopt>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::Admin, "resource")?;
    let (storage, strategy) = match (body.database, body.schema) {
        (Some(database), None) => (database, Strategy::Database),
        (None, Some(schema)) => (schema, Strategy::Schema),
        _ => {
            return Err(Problem::invalid(
                "database",
                "give a database or a schema, one of them",
            ));
        }
    };
    let adopted = state
        .tenantry
        .adopt_tenant(AdoptTenant {
            slug: body.slug,
            name: body.name,
            server: body.server,
            storage,
            strategy,
            baseline: body.baseline,
        })
        .await?;
    let location = format!("/v1/tenants/{}", adopted.tenant.slug);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(adopted),
    ))
}
