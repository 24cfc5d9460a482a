//! The schema strategy (PostgreSQL): a tenant's own schema in the server's database, named
//! from its id, reached through its own login role whose search path is that schema.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::sessions::Reuse;
use super::strategy::StrategyOps;
use super::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::{self, Engine, postgres};
use crate::error::{Error, Result};
use crate::ident::SqlName;

/// A schema of its own per tenant (PostgreSQL).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema;

impl StrategyOps for Schema {
    fn provision<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        _repair: bool,
    ) -> BoxFuture<'a, Result<()>> {
        provision(t, place, tenant).boxed()
    }

    fn target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        reused: Option<sqlx::AnyConnection>,
    ) -> BoxFuture<'a, Result<MigrationTarget>> {
        target(t, place, tenant, reused).boxed()
    }

    fn session_key(&self, tenant: &Tenant) -> Option<String> {
        Some(tenant.server.to_string())
    }

    fn drop<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        drop(place, tenant).boxed()
    }

    fn exists<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>> {
        exists(place, tenant).boxed()
    }

    fn set_access<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>> {
        postgres::set_role_access(place, tenant, allow).boxed()
    }

    fn allow_on<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        tenant: &'a Tenant,
    ) -> Option<BoxFuture<'a, sqlx::Result<()>>> {
        Some(async move { postgres::set_login(conn, &tenant.id.role_name(), true).await }.boxed())
    }

    fn login_database(&self, _tenant: &Tenant) -> Option<String> {
        None
    }

    fn pooled(&self) -> bool {
        false
    }
}

/// The tenant's schema name (its storage name).
pub fn schema_name(tenant: &Tenant) -> Result<SqlName> {
    SqlName::new("schema", tenant.storage.as_str())
}

async fn provision(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<()> {
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

/// The tenant's schema on an administrative connection to the server's database: `reused`
/// (another schema tenant's, reset) or a new one.
async fn target(
    t: &Tenantry,
    place: &Place,
    tenant: &Tenant,
    reused: Option<sqlx::AnyConnection>,
) -> Result<MigrationTarget> {
    let slug = tenant.slug.to_string();
    let schema = schema_name(tenant)?;
    // A kept connection that went away while idle is replaced by a fresh one.
    let reused = match reused {
        Some(mut conn) => match postgres::set_search_path(&mut conn, &schema).await {
            Ok(()) => Some(conn),
            Err(_) => None,
        },
        None => None,
    };
    let conn = match reused {
        Some(conn) => conn,
        None => {
            let url = engine::url_with(place.url()?, None, None)?;
            let mut conn = connect_as_admin(place, &slug, &url).await?;
            postgres::set_search_path(&mut conn, &schema)
                .await
                .map_err(Error::storage(&slug, "enter its schema"))?;
            conn
        }
    };
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
        lock: LockSpec::for_unit(t, Engine::Postgres, &format!("tenant:{}", tenant.id))?,
        hook,
        reuse: Some(Reuse {
            key: tenant.server.to_string(),
            timeouts: place.timeouts(),
        }),
    })
}

async fn drop(place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let mut admin = place.admin_at(None).await?;
    postgres::drop_schema(&mut admin, &schema_name(tenant)?)
        .await
        .map_err(Error::storage(slug, "drop its schema"))?;
    postgres::drop_role(&mut admin, &tenant.id.role_name())
        .await
        .map_err(Error::storage(slug, "drop its role"))
}

async fn exists(place: &Place, tenant: &Tenant) -> Result<bool> {
    let mut admin = place.admin_at(None).await?;
    postgres::schema_exists(&mut admin, &schema_name(tenant)?)
        .await
        .map_err(Error::storage(tenant.slug.as_str(), "look up its schema"))
}
