//! Opening a tenant's pool, per engine, with what every connection must carry:
//!
//! - SQLite: the tenant's file only (no `ATTACH`), and a commit hook that turns a commit
//!   into a rollback once the tenant is revoked (suspended or deleted);
//! - PostgreSQL, own role: settings and temporary tables reset on release;
//! - PostgreSQL, shared pool: the role's stored settings checked on every new connection
//!   (and restored, the connection discarded, if a tenant changed them), and on release a
//!   full `DISCARD ALL` with the client's statement cache cleared, so the next unit of work,
//!   maybe another tenant's, finds no prepared statement, cursor, setting, temporary table,
//!   listener or advisory lock left behind.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection, MySqlPool, PgPool, SqlitePool};

use crate::catalog::SharedPool;
use crate::crypto::Password;
use crate::engine::sqlite;
use crate::error::{Error, Result};
use crate::storage::{Place, shared};

/// A pool's bounds: its size, and how long a unit of work waits for a connection (the
/// configured connect timeout).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub max: u32,
    pub wait: Duration,
}

/// What it takes to put a shared pool's runtime role back as the catalog says.
#[derive(Debug, Clone)]
pub(crate) struct Healer {
    pub place: Place,
    pub pool: SharedPool,
    pub password: Password,
}

impl Healer {
    pub(crate) async fn heal(&self) -> Result<()> {
        shared::restore_role(&self.place, &self.pool, &self.password).await
    }
}

/// The error a connection refuses with after finding its role's settings changed; the pool
/// discards it and opens another, after the settings were restored.
fn tampered() -> sqlx::Error {
    sqlx::Error::Protocol("the runtime role's settings had been changed; restored".into())
}

pub(super) async fn sqlite(
    file: PathBuf,
    revoked: PathBuf,
    bounds: Bounds,
) -> std::result::Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(false);
    let hook = Arc::new((file, revoked));
    SqlitePoolOptions::new()
        .max_connections(bounds.max)
        .acquire_timeout(bounds.wait)
        .after_connect(move |conn, _| {
            let hook = Arc::clone(&hook);
            Box::pin(async move { guard_sqlite(conn, hook).await })
        })
        .connect_with(options)
        .await
}

/// Lets a tenant's SQLite connection attach no other database file (without this, SQL on the
/// connection could `ATTACH` any file the process can read, other tenants' included), and
/// commit only while the tenant is admitted.
async fn guard_sqlite(
    conn: &mut sqlx::SqliteConnection,
    paths: Arc<(PathBuf, PathBuf)>,
) -> std::result::Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    // SAFETY: `db` is the open connection's handle, valid while `handle` holds the lock;
    // `sqlite3_limit` only reads and sets a per-connection limit.
    unsafe {
        libsqlite3_sys::sqlite3_limit(db.as_ptr(), libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
    }
    handle.set_commit_hook(move || sqlite::admitted(&paths.0, &paths.1));
    Ok(())
}

/// A pool logging in as a tenant's own role (database and schema strategies).
pub(super) async fn postgres_own(
    options: PgConnectOptions,
    bounds: Bounds,
) -> std::result::Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(bounds.max)
        .acquire_timeout(bounds.wait)
        .after_release(|conn, _| {
            Box::pin(async move {
                // One tenant's connections only: settings back to the role's defaults and no
                // temporary table left; its prepared statements may stay cached.
                sqlx::raw_sql("RESET ALL; DISCARD TEMP")
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            })
        })
        .connect_with(options)
        .await
}

/// A shared pool's connections, used by every tenant of the pool in turn.
pub(super) async fn postgres_shared(
    options: PgConnectOptions,
    bounds: Bounds,
    healer: Healer,
) -> std::result::Result<PgPool, sqlx::Error> {
    let healer = Arc::new(healer);
    // The search path comes with the login itself, over the role's stored default.
    // A vanished client's session ends within a second instead of running on (and holding
    // its locks) until its statement ends.
    let options = options.options([
        ("search_path", format!("{},pg_temp", shared::SHARED_SCHEMA)),
        ("client_connection_check_interval", "1000".to_owned()),
    ]);
    PgPoolOptions::new()
        .max_connections(bounds.max)
        .acquire_timeout(bounds.wait)
        .after_connect(move |conn, _| {
            let healer = Arc::clone(&healer);
            Box::pin(async move {
                // A setting a tenant planted may make the check itself fail (a tiny statement
                // timeout, say): that counts as changed too.
                if let Ok(true) = shared::check_role_settings(conn).await {
                    return Ok(());
                }
                tracing::warn!(pool = %healer.pool.server, "shared pool role settings changed");
                if let Err(e) = healer.heal().await {
                    tracing::error!(error = %e, "could not restore the shared pool's role");
                }
                Err(tampered())
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                // Nothing of this unit of work may reach the next one: the client forgets its
                // prepared statements and the server drops every kind of session state.
                // DISCARD ALL fails inside a transaction: the connection is then closed.
                conn.clear_cached_statements().await?;
                sqlx::raw_sql("DISCARD ALL").execute(&mut *conn).await?;
                Ok(true)
            })
        })
        .connect_with(options)
        .await
}

pub(super) async fn mysql(
    options: MySqlConnectOptions,
    bounds: Bounds,
) -> std::result::Result<MySqlPool, sqlx::Error> {
    MySqlPoolOptions::new()
        .max_connections(bounds.max)
        .acquire_timeout(bounds.wait)
        .connect_with(options)
        .await
}

pub(super) fn pg_options(url: &str) -> std::result::Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url)
}

pub(super) fn mysql_options(url: &str) -> std::result::Result<MySqlConnectOptions, sqlx::Error> {
    MySqlConnectOptions::from_str(url)
}

/// Whether an error from a pool is the server refusing the login.
pub(super) fn is_login_refused(e: &Error) -> bool {
    match e {
        Error::TenantCredentials { .. } => true,
        Error::Storage { source, .. } => crate::engine::is_auth_failure(source),
        _ => false,
    }
}
