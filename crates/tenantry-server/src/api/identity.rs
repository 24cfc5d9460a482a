//! Domains and members of a tenant (`/v1/tenants/{slug}/domains`, `…/members`), and users
//! (`/v1/users`, a fleet resource: users reach several tenants).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tenantry::Scope;
use tenantry::catalog::{Domain, Membership, User};
use tenantry::identity::NewUser;
use tenantry::routing::Host;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

#[utoipa::path(get, path = "/v1/tenants/{slug}/domains", tag = "domains",
    params(("slug" = String, Path)), responses((status = 200, body = Vec<Domain>)))]
pub async fn domains(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<Domain>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(state.tenantry.domains(Some(&slug)).await?))
}

/// A host to route to the tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub host: String,
    /// Make it the tenant's primary domain.
    #[serde(default)]
    pub primary: bool,
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/domains", tag = "domains",
    params(("slug" = String, Path)), request_body = AddDomain,
    responses((status = 201, body = Domain)))]
pub async fn add_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<AddDomain>,
) -> Result<impl IntoResponse, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    let domain = state
        .tenantry
        .add_domain(&slug, &body.host, body.primary)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(domain)))
}

#[utoipa::path(delete, path = "/v1/tenants/{slug}/domains/{host}", tag = "domains",
    params(("slug" = String, Path), ("host" = String, Path)),
    responses((status = 200, body = Domain)))]
pub async fn remove_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, host)): Path<(String, String)>,
) -> Result<axum::Json<Domain>, Problem> {
    let tenant = caller.tenant(&state, &slug, Scope::TenantsWrite).await?;
    // Only a host of this tenant: another's is not found from here.
    let wanted = Host::parse(&host).map_err(|e| Problem::invalid("host", e.to_string()))?;
    let owned = state
        .tenantry
        .domains(Some(&slug))
        .await?
        .into_iter()
        .any(|d| d.host == wanted.as_str() && d.tenant_id == tenant.id.to_string());
    if !owned {
        return Err(tenantry::Error::DomainNotFound {
            host: wanted.to_string(),
        }
        .into());
    }
    Ok(axum::Json(state.tenantry.remove_domain(&host).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{slug}/members", tag = "members",
    params(("slug" = String, Path)), responses((status = 200, body = Vec<Membership>)))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<Membership>>, Problem> {
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(state.tenantry.members(Some(&slug), None).await?))
}

/// A user to make a member, with a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's id or e-mail.
    pub user: String,
    pub role: String,
}

#[utoipa::path(post, path = "/v1/tenants/{slug}/members", tag = "members",
    params(("slug" = String, Path)), request_body = AddMember,
    responses((status = 201, body = Membership)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Json(body): Json<AddMember>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Scope::MembersWrite)?;
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    let member = state
        .tenantry
        .add_member(&body.user, &slug, &body.role)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(member)))
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: String,
}

#[utoipa::path(put, path = "/v1/tenants/{slug}/members/{user}", tag = "members",
    params(("slug" = String, Path), ("user" = String, Path)), request_body = SetRole,
    responses((status = 200, body = Membership)))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, user)): Path<(String, String)>,
    Json(body): Json<SetRole>,
) -> Result<axum::Json<Membership>, Problem> {
    caller.require(Scope::MembersWrite)?;
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    Ok(axum::Json(
        state
            .tenantry
            .set_member_role(&user, &slug, &body.role)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/v1/tenants/{slug}/members/{user}", tag = "members",
    params(("slug" = String, Path), ("user" = String, Path)),
    responses((status = 204, description = "no longer a member")))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, user)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::MembersWrite)?;
    caller.tenant(&state, &slug, Scope::TenantsRead).await?;
    state.tenantry.remove_member(&user, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users", tag = "users", responses((status = 200, body = Vec<User>)))]
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<User>>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    Ok(axum::Json(state.tenantry.catalog().users().await?))
}

/// A user to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    pub email: String,
    /// Display name; the e-mail when left out.
    pub name: Option<String>,
    /// Hashed with argon2id before it is stored; never returned.
    pub password: Option<String>,
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = AddUser,
    responses((status = 201, body = User)))]
pub async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<AddUser>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::MembersWrite, "resource")?;
    let user = state
        .tenantry
        .add_user(NewUser {
            display_name: body.name.unwrap_or_else(|| body.email.clone()),
            email: body.email,
            password: body.password,
        })
        .await?;
    let location = format!("/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(user),
    ))
}

#[utoipa::path(get, path = "/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "id or e-mail")),
    responses((status = 200, body = User)))]
pub async fn user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<axum::Json<User>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    Ok(axum::Json(state.tenantry.user(&user).await?))
}

#[utoipa::path(post, path = "/v1/users/{user}/disable", tag = "users",
    params(("user" = String, Path)), responses((status = 200, body = User)))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<axum::Json<User>, Problem> {
    caller.fleet(Scope::MembersWrite, "resource")?;
    Ok(axum::Json(
        state.tenantry.set_user_active(&user, false).await?,
    ))
}

#[utoipa::path(post, path = "/v1/users/{user}/enable", tag = "users",
    params(("user" = String, Path)), responses((status = 200, body = User)))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<axum::Json<User>, Problem> {
    caller.fleet(Scope::MembersWrite, "resource")?;
    Ok(axum::Json(
        state.tenantry.set_user_active(&user, true).await?,
    ))
}
