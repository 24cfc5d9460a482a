//! [`StrategyOps`]: everything that differs per isolation strategy, behind one interface.
//! Each strategy's module implements it ([`super::database`], [`super::schema`],
//! [`super::shared`]); [`Strategy::ops`] is the one place a strategy is mapped to its
//! behaviour. Adding a strategy is adding a module that implements this trait.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::{MigrationTarget, Place};
use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::error::Result;

/// What differs per isolation strategy.
pub(crate) trait StrategyOps: Send + Sync {
    /// Creates (or completes) the tenant's storage and its login. Idempotent. `repair`: also
    /// set up again what the tenant shares with others (a pool's role and objects), even if
    /// this process did so already.
    fn provision<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        repair: bool,
    ) -> BoxFuture<'a, Result<()>>;

    /// The tenant's migration target: a correctly scoped administrative connection to its
    /// existing storage (never creating it), its lock and hook.
    /// `reused`: an administrative connection another unit with the same
    /// [`StrategyOps::session_key`] handed on, if any.
    fn target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        reused: Option<AnyConnection>,
    ) -> BoxFuture<'a, Result<MigrationTarget>>;

    /// The key under which the tenant's migration connection can be handed to another
    /// tenant's (`None`: each tenant needs its own).
    fn session_key(&self, _tenant: &Tenant) -> Option<String> {
        None
    }

    /// Removes the tenant's storage and login (shared: its rows). Idempotent.
    fn drop<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>>;

    /// Whether anything of the tenant's storage is left.
    fn exists<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Lets the tenant's application connections in, or shuts them out in every process at
    /// once, ending those already open.
    fn set_access<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>>;

    /// Lets the tenant's role log in, on `conn`: an administrative connection of its
    /// strategy's session key (see [`StrategyOps::session_key`]). `None` where the strategy
    /// keeps no such connection.
    fn allow_on<'a>(
        &'a self,
        _conn: &'a mut sqlx::AnyConnection,
        _tenant: &'a Tenant,
    ) -> Option<BoxFuture<'a, sqlx::Result<()>>> {
        None
    }

    /// The database a tenant's own login connects to (`None`: the server's own).
    fn login_database(&self, tenant: &Tenant) -> Option<String>;

    /// Whether the strategy's tenants on one server share one unit of storage (a pool):
    /// migrated once for all, one set of runtime connections, rows deleted rather than
    /// storage dropped.
    fn pooled(&self) -> bool;
}

impl Strategy {
    /// The strategy's behaviour.
    pub(crate) fn ops(self) -> &'static dyn StrategyOps {
        match self {
            Strategy::Database => &super::database::Database,
            Strategy::Schema => &super::schema::Schema,
            Strategy::Shared => &super::shared::Shared,
        }
    }
}
