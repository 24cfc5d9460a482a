//! [`TenantTx`]: one unit of work, a transaction on a connection the pool manager lent it.

use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, MySqlConnection, PgConnection, SqliteConnection};

use super::lease::Lease;
use super::open::Conn;
use super::rows;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Rows as JSON objects, columns in order.
pub type JsonRows = Vec<Map<String, Value>>;

/// A unit of work scoped to one tenant: a transaction, begun by [`super::TenantPool::begin`].
///
/// End it with [`TenantTx::commit`] or [`TenantTx::rollback`]; dropped without either, it is
/// rolled back (in the background) before its connection serves another unit. Run queries
/// with sqlx on the typed connection:
///
/// ```no_run
/// # async fn demo(pool: tenantry::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = pool.begin().await?;
/// let names: Vec<String> = sqlx::query_scalar("SELECT name FROM campaigns WHERE id = $1")
///     .bind("c1")
///     .fetch_all(tx.as_postgres()?)
///     .await?;
/// tx.commit().await?;
/// # let _ = names;
/// # Ok(())
/// # }
/// ```
///
/// Everything a unit sets should be transaction-local (`SET LOCAL`, `set_config(…, true)`):
/// behind a transaction-mode pooler, nothing else is certain to stay with it.
#[derive(Debug)]
pub struct TenantTx {
    lease: Lease,
    tenant: String,
    engine: Engine,
}

impl TenantTx {
    pub(super) fn new(lease: Lease, tenant: &str, engine: Engine) -> TenantTx {
        TenantTx {
            lease,
            tenant: tenant.to_owned(),
            engine,
        }
    }

    /// The tenant's slug.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The engine the tenant's storage is on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection, if the tenant is on PostgreSQL.
    pub fn postgres(&mut self) -> Option<&mut PgConnection> {
        self.lease.conn().and_then(Conn::as_postgres)
    }

    /// The connection, if the tenant is on MySQL or MariaDB.
    pub fn mysql(&mut self) -> Option<&mut MySqlConnection> {
        self.lease.conn().and_then(Conn::as_mysql)
    }

    /// The connection, if the tenant is an SQLite file.
    pub fn sqlite(&mut self) -> Option<&mut SqliteConnection> {
        self.lease.conn().and_then(Conn::as_sqlite)
    }

    /// The PostgreSQL connection, or [`Error::WrongEngine`].
    pub fn as_postgres(&mut self) -> Result<&mut PgConnection> {
        let refusal = self.wrong(Engine::Postgres);
        self.postgres().ok_or(refusal)
    }

    /// The MySQL connection, or [`Error::WrongEngine`].
    pub fn as_mysql(&mut self) -> Result<&mut MySqlConnection> {
        let refusal = self.wrong(Engine::Mysql);
        self.mysql().ok_or(refusal)
    }

    /// The SQLite connection, or [`Error::WrongEngine`].
    pub fn as_sqlite(&mut self) -> Result<&mut SqliteConnection> {
        let refusal = self.wrong(Engine::Sqlite);
        self.sqlite().ok_or(refusal)
    }

    fn wrong(&self, wanted: Engine) -> Error {
        Error::WrongEngine {
            tenant: self.tenant.clone(),
            engine: self.engine,
            wanted,
        }
    }

    /// Runs one or more statements (simple protocol: nothing is prepared) and returns the
    /// rows of the last one as JSON objects.
    pub async fn run_script(&mut self, sql: &str) -> std::result::Result<JsonRows, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self.lease.conn() {
            Some(Conn::Postgres(c)) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut *c)).await?;
                Ok(rows.iter().map(rows::text_row).collect())
            }
            Some(Conn::Mysql(c)) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut *c)).await?;
                Ok(rows.iter().map(rows::text_row).collect())
            }
            Some(Conn::Sqlite(c)) => {
                let rows = rows::last_rows(sqlx::raw_sql(sql).fetch_many(&mut *c)).await?;
                Ok(rows.iter().map(rows::sqlite_row).collect())
            }
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Commits the unit; its connection is reset and goes back to its pool (or is closed).
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.end(true).await
    }

    /// Rolls the unit back; its connection is reset and goes back to its pool.
    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.end(false).await
    }

    async fn end(self, commit: bool) -> std::result::Result<(), sqlx::Error> {
        let TenantTx { mut lease, .. } = self;
        let ended = match lease.conn() {
            Some(conn) => conn.finish(commit).await,
            None => Err(sqlx::Error::PoolClosed),
        };
        lease.release().await;
        ended
    }
}
