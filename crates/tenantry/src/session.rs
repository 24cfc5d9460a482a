//! Tenant-scoped connections for application code: [`Tenantry::tenant_pool`] hands out a
//! bounded pool whose connections can reach only one tenant's data, and
//! [`TenantPool::begin`] opens a unit of work (a transaction) scoped to that tenant.
//!
//! - database and schema strategies: the pool logs in as the tenant's own role, which can
//!   reach only its database or schema;
//! - shared: the pool logs in as the server's shared-pool role, and each transaction sets the
//!   tenant context transaction-locally (`set_config(…, true)`), so it ends with the unit of
//!   work; a connection going back to the pool is also `RESET ALL` and `DISCARD TEMP`, so it
//!   carries nothing of its previous tenant (and `pg_temp` comes last in the role's search
//!   path, so a temporary table cannot shadow a shared one);
//! - SQLite files: the pool opens that tenant's file only.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Column, Either, MySqlPool, PgPool, Row, SqlitePool, TypeInfo, ValueRef};

use crate::Tenantry;
use crate::catalog::{SharedPool, Status, Strategy, Tenant};
use crate::crypto::Password;
use crate::engine::{self, Engine, sqlite};
use crate::error::{Error, Result};
use crate::storage::{Place, shared};

/// Pools already opened, by tenant id (or `shared:<server>` for a shared pool).
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolCache(Arc<Mutex<HashMap<String, Pooled>>>);

#[derive(Debug, Clone)]
enum Pooled {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
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

    fn forget(&self, key: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// A bounded pool of connections that reach one tenant's data only.
#[derive(Debug, Clone)]
pub struct TenantPool {
    tenant: Tenant,
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    /// `context`: the shared strategy's tenant context, set in every transaction.
    Postgres {
        pool: PgPool,
        context: Option<String>,
    },
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
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

impl Tenantry {
    /// A pool for an active tenant's application connections. Pools are kept and shared by
    /// later calls for the same tenant (shared tenants of one server share one pool).
    pub async fn tenant_pool(&self, slug: &str) -> Result<TenantPool> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.status != Status::Active {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "serve it",
                hint: "; only active tenants are served",
            });
        }
        let place = self.place(&tenant).await?;
        let shared = match tenant.strategy {
            Strategy::Shared => Some(
                self.catalog
                    .shared_pool(tenant.server.as_str())
                    .await?
                    .ok_or_else(|| Error::VerifyFailed {
                        tenant: slug.to_owned(),
                        detail: "its server has no shared pool; run `tenantry tenant repair`"
                            .into(),
                    })?,
            ),
            _ => None,
        };
        let (key, context) = match &shared {
            Some(pool) => {
                let token = shared::context_token(&shared::context_key(self, pool)?, &tenant);
                (format!("shared:{}", tenant.server), Some(token))
            }
            None => (tenant.id.to_string(), None),
        };
        let pooled = match self.pools.get(&key) {
            Some(pooled) => pooled,
            None => {
                let pooled = self.open_pool(&tenant, &place, shared.as_ref()).await?;
                self.pools.put(key, pooled)
            }
        };
        let inner = match pooled {
            Pooled::Postgres(pool) => Inner::Postgres { pool, context },
            Pooled::Mysql(pool) => Inner::Mysql(pool),
            Pooled::Sqlite(pool) => Inner::Sqlite(pool),
        };
        Ok(TenantPool { tenant, inner })
    }

    /// Forgets (and closes) the cached pool of a tenant, e.g. after its credentials changed.
    pub(crate) async fn forget_pool(&self, tenant: &Tenant) {
        let key = match tenant.strategy {
            Strategy::Shared => format!("shared:{}", tenant.server),
            _ => tenant.id.to_string(),
        };
        if let Some(pooled) = self.pools.get(&key) {
            self.pools.forget(&key);
            match pooled {
                Pooled::Postgres(p) => p.close().await,
                Pooled::Mysql(p) => p.close().await,
                Pooled::Sqlite(p) => p.close().await,
            }
        }
    }

    async fn open_pool(
        &self,
        tenant: &Tenant,
        place: &Place,
        shared: Option<&SharedPool>,
    ) -> Result<Pooled> {
        let slug = tenant.slug.as_str();
        let max = self.config.pool_max_connections;
        let timeout: Duration = self.config.connect_timeout;
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
        let (url, engine) = match place {
            Place::SqliteDir(dir) => {
                let path = sqlite::file_path(dir, &tenant.storage);
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(false);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .after_connect(|conn, _| Box::pin(forbid_attach(conn)))
                    .connect_with(options)
                    .await
                    .map_err(Error::storage(slug, "open its database file"))?;
                return Ok(Pooled::Sqlite(pool));
            }
            Place::Server { engine, url, .. } => (url, *engine),
        };
        let (role, sealed, database) = match shared {
            Some(pool) => (pool.role.clone(), pool.role_secret.clone(), None),
            None => {
                let strategy = tenant.strategy;
                let role = tenant.role.clone().ok_or_else(|| Error::VerifyFailed {
                    tenant: slug.to_owned(),
                    detail: "it has no login role; run `tenantry tenant repair`".into(),
                })?;
                let sealed = tenant.role_secret.clone().unwrap_or_default();
                let db = (strategy == Strategy::Database).then(|| tenant.storage.to_string());
                (role, sealed, db)
            }
        };
        let password = Password::parse(
            self.master_key()?
                .open(&sealed, &format!("tenant {slug:?}"))?,
        )
        .ok_or_else(|| Error::CorruptCatalog {
            field: "role_secret",
            value: "(sealed)".into(),
        })?;
        let url = engine::url_with(
            url,
            database.as_deref(),
            Some((role.as_str(), password.as_str())),
        )?;
        let url = engine::driver_url(&url).into_owned();
        match engine {
            Engine::Postgres => {
                let options = PgConnectOptions::from_str(&url).map_err(login_failed)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            // Settings back to the role's defaults, and no temporary table
                            // left for the next tenant on this connection.
                            sqlx::raw_sql("RESET ALL; DISCARD TEMP")
                                .execute(&mut *conn)
                                .await?;
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(login_failed)?;
                Ok(Pooled::Postgres(pool))
            }
            _ => {
                let options = MySqlConnectOptions::from_str(&url).map_err(login_failed)?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await
                    .map_err(login_failed)?;
                Ok(Pooled::Mysql(pool))
            }
        }
    }
}

impl TenantPool {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Opens a unit of work scoped to the tenant.
    pub async fn begin(&self) -> Result<TenantTx> {
        let slug = self.tenant.slug.as_str();
        let begin = Error::storage(slug, "begin a transaction");
        Ok(match &self.inner {
            Inner::Postgres { pool, context } => {
                let mut tx = pool.begin().await.map_err(begin)?;
                if let Some(token) = context {
                    sqlx::query("SELECT set_config($1, $2, true)")
                        .bind(shared::CONTEXT_SETTING)
                        .bind(token)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::storage(slug, "set its context"))?;
                }
                TenantTx::Postgres(tx)
            }
            Inner::Mysql(pool) => TenantTx::Mysql(pool.begin().await.map_err(begin)?),
            Inner::Sqlite(pool) => TenantTx::Sqlite(pool.begin().await.map_err(begin)?),
        })
    }

    /// The underlying PostgreSQL pool, if the tenant is on PostgreSQL. A connection taken
    /// from it directly carries no tenant context: under the shared strategy it sees no rows.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.inner {
            Inner::Postgres { pool, .. } => Some(pool),
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
                let rows = last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(text_row).collect())
            }
            TenantTx::Mysql(tx) => {
                let rows = last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(text_row).collect())
            }
            TenantTx::Sqlite(tx) => {
                let rows = last_rows(sqlx::raw_sql(sql).fetch_many(&mut **tx)).await?;
                Ok(rows.iter().map(sqlite_row).collect())
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

/// Lets a tenant's SQLite connection attach no other database file: without this, SQL on the
/// connection could `ATTACH` any file the process can read, other tenants' included.
async fn forbid_attach(conn: &mut sqlx::SqliteConnection) -> std::result::Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    // SAFETY: `db` is the open connection's handle, valid while `handle` holds the lock;
    // `sqlite3_limit` only reads and sets a per-connection limit.
    unsafe {
        libsqlite3_sys::sqlite3_limit(db.as_ptr(), libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
    }
    Ok(())
}

/// Collects the rows of the last statement of a multi-statement stream.
async fn last_rows<R, Q>(
    stream: impl futures::Stream<Item = std::result::Result<Either<Q, R>, sqlx::Error>>,
) -> std::result::Result<Vec<R>, sqlx::Error> {
    let mut stream = std::pin::pin!(stream);
    let mut current = Vec::new();
    let mut last = Vec::new();
    let mut open = false;
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(_) => {
                last = std::mem::take(&mut current);
                open = false;
            }
            Either::Right(row) => {
                if !open {
                    current.clear();
                    open = true;
                }
                current.push(row);
            }
        }
    }
    if open {
        last = current;
    }
    Ok(last)
}

/// A row from a text-protocol result (PostgreSQL simple query, MySQL text protocol): every
/// value arrives as text, typed back to JSON numbers and booleans by its column type.
fn text_row<R: Row>(row: &R) -> Map<String, Value>
where
    for<'r> String: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let value = if null {
            Value::Null
        } else {
            match row.try_get_unchecked::<String, _>(i) {
                Ok(text) => typed(&column.type_info().name().to_ascii_uppercase(), text),
                Err(_) => Value::String("(binary)".into()),
            }
        };
        out.insert(column.name().to_owned(), value);
    }
    out
}

fn typed(type_name: &str, text: String) -> Value {
    let numeric = [
        "INT", "SERIAL", "FLOAT", "DOUBLE", "REAL", "NUMERIC", "DECIMAL", "OID",
    ];
    if type_name == "BOOL" || type_name == "BOOLEAN" {
        return match text.as_str() {
            "t" | "1" | "true" => Value::Bool(true),
            "f" | "0" | "false" => Value::Bool(false),
            _ => Value::String(text),
        };
    }
    if numeric.iter().any(|n| type_name.contains(n)) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Map<String, Value> {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map_or(Value::Null, Value::String)
        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
            v.map_or(Value::Null, |b| Value::String(hex::encode(b)))
        } else {
            Value::Null
        };
        out.insert(column.name().to_owned(), value);
    }
    out
}
