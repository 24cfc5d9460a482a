//! Tenant-scoped connections for application code: [`Tenantry::tenant_pool`] hands out a
//! bounded pool whose connections can reach only one tenant's data, and
//! [`TenantPool::begin`] opens a unit of work (a transaction) scoped to that tenant.
//!
//! - database and schema strategies: the pool logs in as the tenant's own role, which can
//!   reach only its database or schema, and which suspend and delete stop logging in;
//! - shared: the pool logs in as the pool's runtime role in the pool's own database; each
//!   unit of work sets the tenant context transaction-locally in a simple-protocol query (no
//!   prepared statement a previous unit planted can intercept it) and is refused unless the
//!   context verifies (the tenant is admitted); a connection going back to the pool is wiped
//!   whole ([`open`]);
//! - SQLite files: the pool opens that tenant's file only, and nothing begins or commits once
//!   the tenant is revoked.

mod open;
mod rows;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool, Row, SqlitePool};

use crate::Tenantry;
use crate::catalog::{Catalog, Status, Tenant};
use crate::crypto::Password;
use crate::engine::{self, Engine, sqlite};
use crate::error::{Error, Result};
use crate::storage::shared;
use open::Healer;

/// Pools already opened, by tenant id (or `shared:<server>` for a shared pool).
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolCache(Arc<Mutex<HashMap<String, Pooled>>>);

#[derive(Debug, Clone)]
enum Pooled {
    Postgres(PgPool),
    Shared(PgPool, Arc<Healer>),
    Mysql(MySqlPool),
    Sqlite {
        pool: SqlitePool,
        file: PathBuf,
        revoked: PathBuf,
    },
}

impl Pooled {
    async fn close(self) {
        match self {
            Pooled::Postgres(p) | Pooled::Shared(p, _) => p.close().await,
            Pooled::Mysql(p) => p.close().await,
            Pooled::Sqlite { pool, .. } => pool.close().await,
        }
    }
}

impl PoolCache {
    fn get(&self, key: &str) -> Option<Pooled> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned()
    }

    fn put(&self, key: String, pool: Pooled) -> Pooled {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_insert(pool).clone()
    }

    fn forget(&self, key: &str) -> Option<Pooled> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key)
    }
}

/// A bounded pool of connections that reach one tenant's data only.
#[derive(Debug, Clone)]
pub struct TenantPool {
    tenant: Tenant,
    catalog: Catalog,
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Postgres(PgPool),
    /// A shared pool's connections, with the tenant's context: `<id>:<hmac>`.
    Shared {
        pool: PgPool,
        healer: Arc<Healer>,
        token: String,
    },
    Mysql(MySqlPool),
    Sqlite {
        pool: SqlitePool,
        file: PathBuf,
        revoked: PathBuf,
    },
}

/// A unit of work scoped to one tenant; commit or roll back, or it rolls back on drop.
#[derive(Debug)]
pub enum TenantTx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Mysql(sqlx::Transaction<'static, sqlx::MySql>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// Rows as JSON objects, columns in order.
pub type JsonRows = Vec<Map<String, Value>>;

/// Tenants of a pool share its connections: their pools are cached by server.
fn cache_key(tenant: &Tenant) -> String {
    if tenant.strategy.ops().pooled() {
        format!("shared:{}", tenant.server)
    } else {
        tenant.id.to_string()
    }
}

impl Tenantry {
    /// A pool for an active tenant's application connections. Pools are kept and shared by
    /// later calls for the same tenant (shared tenants of one server share one pool).
    pub async fn tenant_pool(&self, slug: &str) -> Result<TenantPool> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.status != Status::Active {
            return Err(not_served(&tenant));
        }
        let key = cache_key(&tenant);
        let pooled = match self.pools.get(&key) {
            Some(pooled) => pooled,
            None => {
                let pooled = self.open_pool(&tenant).await?;
                self.pools.put(key, pooled)
            }
        };
        let inner = match pooled {
            Pooled::Postgres(pool) => Inner::Postgres(pool),
            Pooled::Shared(pool, healer) => {
                let key = shared::context_key(self, &healer.pool)?;
                Inner::Shared {
                    pool,
                    token: shared::context_token(&key, &tenant),
                    healer,
                }
            }
            Pooled::Mysql(pool) => Inner::Mysql(pool),
            Pooled::Sqlite {
                pool,
                file,
                revoked,
            } => Inner::Sqlite {
                pool,
                file,
                revoked,
            },
        };
        Ok(TenantPool {
            tenant,
            catalog: self.catalog.clone(),
            inner,
        })
    }

    /// Forgets (and closes) the cached pool of a tenant, e.g. after its credentials changed.
    /// A shared pool serves other tenants and stays: its admission check shuts one tenant out.
    pub(crate) async fn forget_pool(&self, tenant: &Tenant) {
        if tenant.strategy.ops().pooled() {
            return;
        }
        if let Some(pooled) = self.pools.forget(&cache_key(tenant)) {
            pooled.close().await;
        }
    }

    async fn open_pool(&self, tenant: &Tenant) -> Result<Pooled> {
        let slug = tenant.slug.as_str();
        let place = self.place(tenant).await?;
        let max = open::Bounds {
            max: self.config.pool_max_connections,
            wait: self.config.connect_timeout,
        };
        let login_failed = |source: sqlx::Error| {
            if engine::is_auth_failure(&source) {
                Error::TenantCredentials {
                    tenant: slug.to_owned(),
                    source,
                }
            } else {
                place.unreachable(source)
            }
        };
        // Each engine has its own pool type (and `TenantTx` variant), so applications keep
        // sqlx's typed queries.
        if place.engine() == Engine::Sqlite {
            let dir = place.dir()?;
            {
                let file = sqlite::file_path(dir, &tenant.storage);
                let revoked = sqlite::revoked_path(dir, &tenant.storage);
                let pool = open::sqlite(file.clone(), revoked.clone(), max)
                    .await
                    .map_err(Error::storage(slug, "open its database file"))?;
                return Ok(Pooled::Sqlite {
                    pool,
                    file,
                    revoked,
                });
            }
        }
        let url = place.url()?.to_owned();
        if tenant.strategy.ops().pooled() {
            let pool = self
                .catalog
                .shared_pool(tenant.server.as_str())
                .await?
                .ok_or_else(|| Error::VerifyFailed {
                    tenant: slug.to_owned(),
                    detail: "its server has no shared pool; run `tenantry tenant repair`".into(),
                })?;
            let password = shared::role_password(self, &pool)?;
            let database = shared::pool_database(&pool);
            let url = engine::url_with(
                &url,
                Some(database.as_str()),
                Some((pool.role.as_str(), password.as_str())),
            )?;
            let options = open::pg_options(&engine::driver_url(&url)).map_err(login_failed)?;
            let healer = Healer {
                place: place.clone(),
                pool,
                password,
            };
            let pg = match open::postgres_shared(options.clone(), max, healer.clone()).await {
                // Any tenant's SQL can change the runtime role's password: put it back as
                // the catalog says, once, and log in again.
                Err(e) if engine::is_auth_failure(&e) => {
                    healer.heal().await?;
                    open::postgres_shared(options, max, healer.clone()).await
                }
                other => other,
            }
            .map_err(login_failed)?;
            return Ok(Pooled::Shared(pg, Arc::new(healer)));
        }
        let role = tenant.role.clone().ok_or_else(|| Error::VerifyFailed {
            tenant: slug.to_owned(),
            detail: "it has no login role; run `tenantry tenant repair`".into(),
        })?;
        let sealed = tenant.role_secret.clone().unwrap_or_default();
        let password = Password::parse(
            self.master_key()?
                .open(&sealed, &format!("tenant {slug:?}"))?,
        )
        .ok_or_else(|| Error::CorruptCatalog {
            field: "role_secret",
            value: "(sealed)".into(),
        })?;
        let database = tenant.strategy.ops().login_database(tenant);
        let url = engine::url_with(
            &url,
            database.as_deref(),
            Some((role.as_str(), password.as_str())),
        )?;
        let url = engine::driver_url(&url).into_owned();
        match place.engine() {
            Engine::Postgres => {
                let options = open::pg_options(&url).map_err(login_failed)?;
                let pool = open::postgres_own(options, max)
                    .await
                    .map_err(login_failed)?;
                Ok(Pooled::Postgres(pool))
            }
            Engine::Mysql => {
                let options = open::mysql_options(&url).map_err(login_failed)?;
                let pool = open::mysql(options, max).await.map_err(login_failed)?;
                Ok(Pooled::Mysql(pool))
            }
            Engine::Sqlite => Err(Error::UnsupportedUrl {
                url: place.name(),
                reason: "an SQLite tenant has no login".into(),
            }),
        }
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
    /// is suspended or deleted — in this process or any other.
    pub async fn begin(&self) -> Result<TenantTx> {
        match self.try_begin().await {
            Err(e) if open::is_login_refused(&e) => {
                // Refused at login: suspended or deleted meanwhile, or (shared) the runtime
                // role's password was changed by a tenant's SQL.
                let now = self.catalog.tenant_by_id(self.tenant.id).await?;
                if now.status != Status::Active {
                    return Err(not_served(&now));
                }
                if let Inner::Shared { healer, .. } = &self.inner {
                    healer.heal().await?;
                    return self.try_begin().await;
                }
                Err(e)
            }
            other => other,
        }
    }

    async fn try_begin(&self) -> Result<TenantTx> {
        let slug = self.tenant.slug.as_str();
        let begin = |source: sqlx::Error| {
            if engine::is_auth_failure(&source) {
                Error::TenantCredentials {
                    tenant: slug.to_owned(),
                    source,
                }
            } else {
                Error::storage(slug, "begin a transaction")(source)
            }
        };
        Ok(match &self.inner {
            Inner::Postgres(pool) => TenantTx::Postgres(pool.begin().await.map_err(begin)?),
            Inner::Shared { pool, token, .. } => {
                let mut tx = pool.begin().await.map_err(begin)?;
                let sql = shared::enter_sql(token, &self.tenant)?;
                let row = sqlx::raw_sql(AssertSqlSafe(sql))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(Error::storage(slug, "set its context"))?;
                let admitted: bool = row
                    .try_get("admitted")
                    .map_err(Error::storage(slug, "set its context"))?;
                if !admitted {
                    return Err(self.refused().await);
                }
                TenantTx::Postgres(tx)
            }
            Inner::Mysql(pool) => TenantTx::Mysql(pool.begin().await.map_err(begin)?),
            Inner::Sqlite {
                pool,
                file,
                revoked,
            } => {
                if !sqlite::admitted(file, revoked) {
                    return Err(self.refused().await);
                }
                TenantTx::Sqlite(pool.begin().await.map_err(begin)?)
            }
        })
    }

    /// Why storage refused the tenant: its status, as the catalog now says.
    async fn refused(&self) -> Error {
        match self.catalog.tenant_by_id(self.tenant.id).await {
            Ok(now) if now.status != Status::Active => not_served(&now),
            Ok(_) => Error::VerifyFailed {
                tenant: self.tenant.slug.to_string(),
                detail:
                    "its storage refuses it although it is active; run `tenantry tenant repair`"
                        .into(),
            },
            Err(e) => e,
        }
    }

    /// The underlying PostgreSQL pool, if the tenant is on PostgreSQL.
    ///
    /// # Warning
    /// A connection taken from it directly carries no tenant context: under the shared
    /// strategy it sees no rows.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.inner {
            Inner::Postgres(pool) | Inner::Shared { pool, .. } => Some(pool),
            _ => None,
        }
    }

    /// The underlying MySQL pool, if the tenant is on MySQL.
    pub fn mysql(&self) -> Option<&MySqlPool> {
        match &self.inner {
            Inner::Mysql(pool) => Some(pool),
            _ => None,
        }
    }
}

impl TenantTx {
    /// Runs one or more statements and returns the rows of the last one as JSON objects.
    pub async fn run_script(&mut self, sql: &str) -> std::result::Result<JsonRows, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            TenantTx::Postgres(tx) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(rows::text_row).collect())
            }
            TenantTx::Mysql(tx) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(rows::text_row).collect())
            }
            TenantTx::Sqlite(tx) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(rows::sqlite_row).collect())
            }
        }
    }

    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        match self {
            TenantTx::Postgres(tx) => tx.commit().await,
            TenantTx::Mysql(tx) => tx.commit().await,
            TenantTx::Sqlite(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        match self {
            TenantTx::Postgres(tx) => tx.rollback().await,
            TenantTx::Mysql(tx) => tx.rollback().await,
            TenantTx::Sqlite(tx) => tx.rollback().await,
        }
    }
}
