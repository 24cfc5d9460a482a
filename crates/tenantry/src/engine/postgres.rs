//! PostgreSQL: one database per tenant on a server, advisory locks per tenant.

use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ident::StorageName;

/// Base tables of the current schema.
pub const LIST_TABLES: &str = "SELECT table_name::text AS name FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'";

/// SQLSTATE `duplicate_database`.
const DUPLICATE_DATABASE: &str = "42P04";

/// The URL of database `db` on the server at `server_url` (same host, user and options).
pub fn database_url(server_url: &str, db: &StorageName) -> Result<String> {
    let mut url = url::Url::parse(server_url).map_err(|e| Error::UnsupportedUrl {
        url: crate::engine::redact_url(server_url),
        reason: e.to_string(),
    })?;
    url.set_path(&format!("/{db}"));
    Ok(url.to_string())
}

/// Creates database `db` unless it exists. An existing database of that name is ours: the
/// name derives from a tenant id the catalog recorded before the database was created.
pub async fn create_database(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<()> {
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(db.as_str())
        .fetch_one(&mut *admin)
        .await?;
    if exists > 0 {
        return Ok(());
    }
    let ddl = format!("CREATE DATABASE {}", Engine::Postgres.quote(db));
    match sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *admin).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Drops database `db`, disconnecting its sessions; absent is fine.
pub async fn drop_database(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<()> {
    let ddl = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        Engine::Postgres.quote(db)
    );
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(admin).await?;
    Ok(())
}

/// Whether database `db` exists on the server.
pub async fn database_exists(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(db.as_str())
        .fetch_one(admin)
        .await?;
    Ok(n > 0)
}

/// Asks the server to notice a vanished client within a second (PostgreSQL 14+), so a
/// killed runner's session, its open transaction and its advisory lock go away promptly
/// instead of when its current statement ends. Older servers ignore the request.
pub async fn watch_client(conn: &mut AnyConnection) {
    if let Err(e) = sqlx::raw_sql("SET client_connection_check_interval = 1000")
        .execute(conn)
        .await
    {
        tracing::debug!(error = %e, "client_connection_check_interval not supported");
    }
}

/// Takes the session-level advisory lock `key` if it is free. It is held until
/// [`unlock`] or until the connection closes, so a killed runner never leaves it behind.
pub async fn try_lock(conn: &mut AnyConnection, key: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await
}

pub async fn unlock(conn: &mut AnyConnection, key: i64) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}
