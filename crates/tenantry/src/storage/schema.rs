//! The schema strategy (PostgreSQL): a tenant's own schema in the server's database, named
//! from its id, reached through its own login role whose search path is that schema.

use super::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::{self, postgres};
use crate::error::{Error, Result};
use crate::ident::SqlName;

/// The tenant's schema name (its storage name).
pub fn schema_name(tenant: &Tenant) -> Result<SqlName> {
    SqlName::new("schema", tenant.storage.as_str())
}

pub(super) async fn provision(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let schema = schema_name(tenant)?;
    let mut admin = place.admin_at(None).await?;
    let (role, password) = t.issue_credentials(tenant).await?;
    postgres::create_schema(&mut admin, &schema)
        .await
        .map_err(Error::storage(slug, "create its schema"))?;
    postgres::ensure_role(&mut admin, &role, &password, Some(&schema))
        .await
        .map_err(Error::storage(slug, "create its role"))
}

pub(super) async fn target(
    t: &Tenantry,
    place: &Place,
    tenant: &Tenant,
) -> Result<MigrationTarget> {
    let slug = tenant.slug.to_string();
    let schema = schema_name(tenant)?;
    let Place::Server { url, .. } = place else {
        return Err(place.unreachable(sqlx::Error::Protocol(
            "the schema strategy needs a PostgreSQL server".into(),
        )));
    };
    let mut conn = connect_as_admin(place, &slug, &engine::url_with(url, None, None)?).await?;
    postgres::set_search_path(&mut conn, &schema)
        .await
        .map_err(Error::storage(&slug, "enter its schema"))?;
    let hook = match &tenant.role {
        Some(role) => Hook::Grant {
            schema,
            role: role.clone(),
        },
        None => Hook::None,
    };
    Ok(MigrationTarget {
        owner: slug,
        engine: place.engine(),
        conn,
        lock: LockSpec::Advisory(t.lock_key(&format!("tenant:{}", tenant.id))?),
        hook,
    })
}

pub(super) async fn drop(place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let mut admin = place.admin_at(None).await?;
    postgres::drop_schema(&mut admin, &schema_name(tenant)?)
        .await
        .map_err(Error::storage(slug, "drop its schema"))?;
    postgres::drop_role(&mut admin, &tenant.id.role_name())
        .await
        .map_err(Error::storage(slug, "drop its role"))
}

pub(super) async fn exists(place: &Place, tenant: &Tenant) -> Result<bool> {
    let mut admin = place.admin_at(None).await?;
    postgres::schema_exists(&mut admin, &schema_name(tenant)?)
        .await
        .map_err(Error::storage(tenant.slug.as_str(), "look up its schema"))
}

/// Lets the tenant's role log in, or not (ending its open sessions).
pub(super) async fn set_access(place: &Place, tenant: &Tenant, allow: bool) -> Result<()> {
    let slug = tenant.slug.as_str();
    let role = tenant.id.role_name();
    let mut admin = place.admin_at(None).await?;
    postgres::set_login(&mut admin, &role, allow)
        .await
        .map_err(Error::storage(slug, "change whether its role may log in"))?;
    if !allow {
        postgres::terminate_role(&mut admin, &role)
            .await
            .map_err(Error::storage(slug, "end its sessions"))?;
    }
    Ok(())
}
