//! Tenant-scoped connections for application code: [`Tenantry::tenant_pool`] (or
//! [`Tenantry::tenant_pool_for`], for a tenant already at hand) gives a [`TenantPool`] whose
//! connections can reach only one tenant's data, and [`TenantPool::begin`] opens a unit of
//! work ([`TenantTx`], a transaction) scoped to that tenant.
//!
//! - database and schema strategies: connections log in as the tenant's own role, which can
//!   reach only its database or schema, and which suspend and delete stop logging in;
//! - shared: connections log in as the pool's runtime role in the pool's own database; each
//!   unit of work sets the tenant context transaction-locally in a simple-protocol query (no
//!   prepared statement a previous unit planted can intercept it) and is refused unless the
//!   context verifies (the tenant is admitted); a connection going back to the pool is wiped
//!   whole ([`open`]);
//! - SQLite files: connections open that tenant's file only, and nothing begins or commits
//!   once the tenant is revoked.
//!
//! Every connection, whatever the tenant, comes from one [`manager`] that bounds the
//! connections per tenant and per server, reuses idle ones, and closes those idle too long.

mod lease;
mod manager;
mod open;
#[cfg(test)]
mod pooler_tests;
mod rows;
mod spec;
mod state;
mod unit;
mod watch;

use std::sync::Arc;

use sqlx::{AssertSqlSafe, Row};
use tokio::sync::Semaphore;

use crate::Tenantry;
use crate::catalog::{Catalog, Status, Tenant};
use crate::engine::sqlite;
use crate::error::{Error, Result};
use crate::storage::shared;
use lease::Lease;
use open::Login;
use spec::PoolSpec;

pub(crate) use manager::PoolManager;
pub use state::ServerPoolStats;
pub use unit::{JsonRows, TenantTx};

/// A tenant's access to its connections: cheap to clone, and to get again.
#[derive(Debug, Clone)]
pub struct TenantPool {
    tenant: Tenant,
    catalog: Catalog,
    manager: PoolManager,
    spec: Arc<PoolSpec>,
    /// Bounds the tenant's units in flight (shared by every handle of the tenant).
    units: Arc<Semaphore>,
    /// A shared tenant's context: `<id>:<hmac>`.
    token: Option<String>,
}

/// How many connections found stale (their session ended while idle) one `begin` sets aside
/// before giving up, beyond one per permit of the server.
const STALE_EXTRA: usize = 2;

impl Tenantry {
    /// An active tenant's connections, by slug (one catalog read).
    pub async fn tenant_pool(&self, slug: &str) -> Result<TenantPool> {
        let tenant = self.catalog.tenant(slug).await?;
        self.tenant_pool_for(&tenant).await
    }

    /// An active tenant's connections, for a tenant the caller already read (from a cache,
    /// say). Reads nothing about the tenant from the catalog: a hash lookup once the
    /// tenant's pool was used in this process (the first use of a server reads its record,
    /// and its shared pool's, once). A tenant that is not active is refused; one revoked
    /// since it was read is refused by `begin`.
    pub async fn tenant_pool_for(&self, tenant: &Tenant) -> Result<TenantPool> {
        if tenant.status != Status::Active {
            return Err(not_served(tenant));
        }
        let spec = self.pool_spec(tenant).await?;
        let token = spec
            .context_key
            .as_ref()
            .map(|key| shared::context_token(key, tenant));
        Ok(TenantPool {
            units: self.pools.tenant_permits(tenant.id),
            tenant: tenant.clone(),
            catalog: self.catalog.clone(),
            manager: self.pools.clone(),
            spec,
            token,
        })
    }

    /// The application connections of each server this process has used.
    pub fn pool_stats(&self) -> Vec<ServerPoolStats> {
        self.pools.stats()
    }

    /// Closes a tenant's idle connections and forgets its login, e.g. after its credentials
    /// changed or it was revoked. A shared pool serves other tenants and stays: its
    /// admission check shuts one tenant out.
    /// Whether this process keeps a pool of the tenant's own (a shared tenant has none).
    pub(crate) fn holds_pool(&self, tenant: &Tenant) -> bool {
        !tenant.strategy.ops().pooled() && self.pools.holds(&spec::pool_key(tenant))
    }

    pub(crate) async fn forget_pool(&self, tenant: &Tenant) {
        if tenant.strategy.ops().pooled() {
            return;
        }
        self.pools.forget_pool(&spec::pool_key(tenant)).await;
    }
}

/// The refusal of a tenant that is not active.
fn not_served(tenant: &Tenant) -> Error {
    Error::InvalidTransition {
        slug: tenant.slug.to_string(),
        status: tenant.status,
        action: "serve it",
        hint: "; only active tenants are served",
    }
}

impl TenantPool {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Opens a unit of work scoped to the tenant. Refused, with the tenant's status, once it
    /// is suspended or deleted — in this process or any other. Fails with [`Error::Busy`]
    /// when no connection could be had within the acquire timeout.
    pub async fn begin(&self) -> Result<TenantTx> {
        match self.try_begin().await {
            Err(e) if open::is_login_refused(&e) => {
                // Refused at login: suspended or deleted meanwhile, or (shared) the runtime
                // role's password was changed by a tenant's SQL, or (own role) its password
                // was reset by a repair in another process.
                let now = self.catalog.tenant_by_id(self.tenant.id).await?;
                if let Some(moved) = self.moved(&now) {
                    self.manager.forget_pool(&self.spec.key).await;
                    return Err(moved);
                }
                if now.status != Status::Active {
                    return Err(not_served(&now));
                }
                if let Some(paused) = self.paused().await {
                    return Err(paused);
                }
                if let Some(healer) = self.spec.healer() {
                    healer.heal().await?;
                    return self.try_begin().await;
                }
                // The next pool built for the tenant reads its credentials again.
                self.manager.forget_pool(&self.spec.key).await;
                Err(e)
            }
            other => other,
        }
    }

    async fn try_begin(&self) -> Result<TenantTx> {
        let slug = self.tenant.slug.as_str();
        if let Login::Sqlite { paths, .. } = &self.spec.login
            && !sqlite::admitted(&paths.0, &paths.1)
        {
            return Err(self.refused().await);
        }
        let mut lease = self.started().await?;
        if let Some(token) = &self.token {
            let sql = shared::enter_sql(token, &self.tenant)?;
            let Some(conn) = lease.conn().and_then(open::Conn::as_postgres) else {
                return Err(Error::storage(slug, "set its context")(
                    sqlx::Error::PoolClosed,
                ));
            };
            let entered = tokio::time::timeout(
                self.spec.wait,
                sqlx::raw_sql(AssertSqlSafe(sql)).fetch_one(&mut *conn),
            )
            .await
            .map_err(|_| self.spec.place.timed_out(self.spec.wait))?
            .and_then(|row| row.try_get::<bool, _>("admitted"))
            .map_err(Error::storage(slug, "set its context"))?;
            if !entered {
                // Dropping the lease rolls the unit back.
                drop(lease);
                return Err(self.refused().await);
            }
        }
        Ok(TenantTx::new(lease, slug, self.spec.login.engine()))
    }

    /// A lent connection with a transaction begun on it. A reused connection that fails to
    /// begin (its session ended while it was idle: a server restart, a revocation) is closed
    /// and another tried; a new one that fails is the error.
    async fn started(&self) -> Result<Lease> {
        let slug = self.tenant.slug.as_str();
        let attempts = self.manager.per_server() + STALE_EXTRA;
        for _ in 0..attempts {
            let mut lease = self.manager.acquire(&self.spec, slug, &self.units).await?;
            let begun = match lease.conn() {
                Some(conn) => {
                    tokio::time::timeout(self.spec.wait, conn.start(self.spec.behind_pooler)).await
                }
                None => Ok(Err(sqlx::Error::PoolClosed)),
            };
            let failure = match begun {
                Ok(Ok(())) => return Ok(lease),
                Ok(Err(source)) if crate::engine::is_auth_failure(&source) => {
                    Error::TenantCredentials {
                        tenant: slug.to_owned(),
                        source,
                    }
                }
                Ok(Err(source)) => Error::storage(slug, "begin a transaction")(source),
                Err(_) => self.spec.place.timed_out(self.spec.wait),
            };
            let fresh = lease.fresh();
            lease.discard().await;
            if fresh {
                return Err(failure);
            }
            tracing::debug!(tenant = slug, error = %failure, "closed a stale idle connection");
        }
        Err(Error::storage(slug, "begin a transaction")(
            sqlx::Error::PoolTimedOut,
        ))
    }

    /// [`Error::TenantPaused`] if a move has the tenant shut out for its final sync.
    async fn paused(&self) -> Option<Error> {
        let op = self.catalog.operation(self.tenant.id).await.ok()??;
        (op.kind == crate::moves::MOVE).then(|| Error::TenantPaused {
            slug: self.tenant.slug.to_string(),
        })
    }

    /// [`Error::TenantMoved`] if the catalog now places the tenant elsewhere than this pool.
    fn moved(&self, now: &Tenant) -> Option<Error> {
        (now.server != self.tenant.server || now.strategy != self.tenant.strategy).then(|| {
            Error::TenantMoved {
                slug: now.slug.to_string(),
                server: now.server.to_string(),
                strategy: now.strategy.to_string(),
            }
        })
    }

    /// Why storage refused the tenant: it moved, or its status, as the catalog now says.
    async fn refused(&self) -> Error {
        let now = match self.catalog.tenant_by_id(self.tenant.id).await {
            Ok(now) => now,
            Err(e) => return e,
        };
        if let Some(moved) = self.moved(&now) {
            self.manager.forget_pool(&self.spec.key).await;
            return moved;
        }
        if now.status != Status::Active {
            return not_served(&now);
        }
        if let Some(paused) = self.paused().await {
            return paused;
        }
        Error::VerifyFailed {
            tenant: self.tenant.slug.to_string(),
            detail: "its storage refuses it although it is active; run `tenantry tenant repair`"
                .into(),
        }
    }
}
