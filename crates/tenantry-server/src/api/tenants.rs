//! `/v1/tenants`: list, create, show, suspend, resume, repair, delete, labels, events.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::{Event, NewTenant, RenameTenant, Scope, Status, Strategy, Tenant};
use utoipa::{IntoParams, ToSchema};

use super::Page;
use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path, Query};
use crate::problem::Problem;

/// Filters and a page of the tenant list, in id order.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub strategy: Option<Strategy>,
    pub server: Option<String>,
    /// Only tenants carrying this label.
    pub label: Option<String>,
    /// Only tenants at this schema version.
    pub version: Option<i64>,
    /// At most this many (1–1000; 100 by default).
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery),
    responses((status = 200, body = Page<Tenant>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<Tenant>>, Problem> {
    caller.require(Scope::TenantsRead)?;
    let limit = super::limit(q.limit)? as usize;
    let labelled = match &q.label {
        Some(label) => {
            tenantry::labels::check_label(label)?;
            let labels = state.tenantry.catalog().labels().await?;
            let ids: std::collections::HashSet<String> = labels
                .into_iter()
                .filter(|(_, labels)| labels.contains(label))
                .map(|(id, _)| id.to_string())
                .collect();
            Some(ids)
        }
        None => None,
    };
    let mut items = Vec::new();
    let mut next = None;
    for t in state.tenantry.catalog().tenants().await? {
        let id = t.id.to_string();
        // Spares are not tenants yet (as `tenant list`): listed only when asked for.
        let spare_asked = t.status != Status::Spare || q.status == Some(Status::Spare);
        let keep = spare_asked
            && caller.sees(&id)
            && q.after.as_deref().is_none_or(|after| id.as_str() > after)
            && q.status.is_none_or(|s| s == t.status)
            && q.strategy.is_none_or(|s| s == t.strategy)
            && q.server.as_deref().is_none_or(|s| s == t.server.as_str())
            && q.version.is_none_or(|v| v == t.version)
            && labelled.as_ref().is_none_or(|ids| ids.contains(&id));
        if !keep {
            continue;
        }
        if items.len() == limit {
            next = items.last().map(|t: &Tenant| t.id.to_string());
            break;
        }
        items.push(t);
    }
    Ok(axum::Json(Page { items, next }))
}

/// A tenant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub slug: String,
    /// Display name; the slug when left out.
    pub name: Option<String>,
    /// Server to place it on; by placement when left out.
    pub server: Option<String>,
    pub strategy: Option<Strategy>,
    /// Place it on the server with the fewest tenants in this region (without `server`).
    pub region: Option<String>,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = Tenant)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTenant>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::TenantsWrite, "resource")?;
    let t = &state.tenantry;
    let server = match (&body.region, body.server) {
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "name a server or a region, not both",
            )
            .field("region"));
        }
        (Some(region), None) => {
            let strategy = body.strategy.unwrap_or(t.config().default_strategy);
            Some(t.choose_server(strategy, Some(region)).await?)
        }
        (None, server) => server,
    };
    let tenant = t
        .create_tenant(NewTenant {
            slug: body.slug,
            name: body.name,
            server,
            strategy: body.strategy,
        })
        .await?;
    let location = format!("/v1/tenants/{}", tenant.slug);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(tenant),
    ))
}

#[utoipa::path(get, path = "/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Tenant>, Problem> {
    Ok(axum::Json(
        caller.tenant(&state, &slug, Scope::TenantsRead).await?,
    ))
}

/// A tenant's new slug and/or display name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[utoipa::path(patch, path = "/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path)), request_body = Rename,
    responses((status = 200, body = Tenant)))]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<Rename>,
) -> Result<axum::Json<Tenant>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    if body.slug.is_none() && body.name.is_none() {
        return Err(Problem::invalid(
            "slug",
            "give a new `slug`, a new `name`, or both",
        ));
    }
    let rename = RenameTenant {
        slug: body.slug,
        name: body.name,
    };
    Ok(axum::Json(
        state.tenantry.rename_tenant(&slug, rename).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also remove the catalog row, freeing the slug.
    pub purge: Option<bool>,
    /// With `purge`: remove its backups too.
    pub with_backups: Option<bool>,
}

#[utoipa::path(delete, path = "/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path), DeleteQuery),
    responses((status = 200, body = Tenant), (status = 204, description = "deleted and purged")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<axum::response::Response, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    let purge = q.purge.unwrap_or(false);
    if purge && q.with_backups.unwrap_or(false) {
        state.tenantry.purge_tenant_with_backups(&slug).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(match state.tenantry.delete_tenant(&slug, purge).await? {
        Some(tenant) => axum::Json(tenant).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/suspend", tag = "tenants",
    params(("slug" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Tenant>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    Ok(axum::Json(state.tenantry.suspend_tenant(&slug).await?))
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/resume", tag = "tenants",
    params(("slug" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Tenant>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    Ok(axum::Json(state.tenantry.resume_tenant(&slug).await?))
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/repair", tag = "tenants",
    params(("slug" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn repair(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Tenant>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    Ok(axum::Json(state.tenantry.repair_tenant(&slug).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{slug}/labels", tag = "tenants",
    params(("slug" = String, Path)), responses((status = 200, body = Vec<String>)))]
pub async fn labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<String>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(state.tenantry.tenant_labels(&slug).await?))
}

#[utoipa::path(put, path = "/v1/tenants/{slug}/labels/{label}", tag = "tenants",
    params(("slug" = String, Path), ("label" = String, Path)),
    responses((status = 200, body = Vec<String>)))]
pub async fn add_label(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, label)): Path<(String, String)>,
) -> Result<axum::Json<Vec<String>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    Ok(axum::Json(
        state.tenantry.label_tenant(&slug, &[label]).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/tenants/{slug}/labels/{label}", tag = "tenants",
    params(("slug" = String, Path), ("label" = String, Path)),
    responses((status = 200, body = Vec<String>)))]
pub async fn remove_label(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, label)): Path<(String, String)>,
) -> Result<axum::Json<Vec<String>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    Ok(axum::Json(
        state.tenantry.unlabel_tenant(&slug, &[label]).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// At most this many, newest first (1–1000; 100 by default).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/tenants/{slug}/events", tag = "tenants",
    params(("slug" = String, Path), EventsQuery), responses((status = 200, body = Vec<Event>)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<axum::Json<Vec<Event>>, Problem> {
    let tenant = caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    let limit = super::limit(q.limit)?;
    Ok(axum::Json(
        state
            .tenantry
            .catalog()
            .events(Some(&tenant), limit)
            .await?,
    ))
}
