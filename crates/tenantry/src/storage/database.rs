//! The database strategy: a tenant's own SQLite file, PostgreSQL database or MySQL database,
//! reached at run time through its own login (PostgreSQL, MySQL). Written once, over the
//! engine's [`Dialect`](crate::engine::Dialect).

use futures::FutureExt;
use futures::future::BoxFuture;

use super::strategy::StrategyOps;
use super::{MigrationTarget, Place};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::error::Result;

/// A database (or file) of its own per tenant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Database;

impl StrategyOps for Database {
    fn provision<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        _repair: bool,
    ) -> BoxFuture<'a, Result<()>> {
        place
            .engine()
            .dialect()
            .provision_database(t, place, tenant)
    }

    fn target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        _reused: Option<sqlx::AnyConnection>,
    ) -> BoxFuture<'a, Result<MigrationTarget>> {
        place.engine().dialect().database_target(t, place, tenant)
    }

    fn drop<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        place.engine().dialect().drop_database(place, tenant)
    }

    fn exists<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>> {
        place.engine().dialect().database_exists(place, tenant)
    }

    fn set_access<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>> {
        place
            .engine()
            .dialect()
            .set_database_access(place, tenant, allow)
            .boxed()
    }

    fn login_database(&self, tenant: &Tenant) -> Option<String> {
        Some(tenant.storage.to_string())
    }

    fn pooled(&self) -> bool {
        false
    }
}
