//! MySQL and MariaDB: one database per tenant on a server, named locks per tenant, one login
//! user per tenant. DDL is not transactional here, so migrations record their progress.

mod backup;
mod client;
mod data;
mod dialect;
mod introspect;

pub use dialect::Mysql;

use sqlx::{AnyConnection, AssertSqlSafe};

use crate::engine::Engine;
use crate::ident::{RoleName, StorageName};

/// Base tables of the current database.
pub const LIST_TABLES: &str = "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
     WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'";

/// Creates database `db` unless it exists.
pub async fn create_database(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<()> {
    let ddl = format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
        Engine::Mysql.quote(db)
    );
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(admin).await?;
    Ok(())
}

pub async fn drop_database(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<()> {
    let ddl = format!("DROP DATABASE IF EXISTS {}", Engine::Mysql.quote(db));
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(admin).await?;
    Ok(())
}

pub async fn database_exists(admin: &mut AnyConnection, db: &StorageName) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(db.as_str())
    .fetch_one(admin)
    .await?;
    Ok(n > 0)
}

/// `'name'@'%'`: an account name built from a validated role name.
fn account(role: &RoleName) -> String {
    format!("'{}'@'%'", role.as_str())
}

/// Creates the tenant's user (or resets its password) with rights on its database only:
/// no global privileges, so it cannot create databases or users.
pub async fn ensure_user(
    admin: &mut AnyConnection,
    role: &RoleName,
    password: &crate::crypto::Password,
    db: &StorageName,
) -> sqlx::Result<()> {
    let account = account(role);
    let statements = [
        format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{}'",
            password.as_str()
        ),
        format!("ALTER USER {account} IDENTIFIED BY '{}'", password.as_str()),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE \
             ON {}.* TO {account}",
            Engine::Mysql.quote(db)
        ),
    ];
    for sql in statements {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *admin)
            .await?;
    }
    Ok(())
}

pub async fn drop_user(admin: &mut AnyConnection, role: &RoleName) -> sqlx::Result<()> {
    let sql = format!("DROP USER IF EXISTS {}", account(role));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// Lets each statement on the connection run for at most `limit`: `max_statement_time`
/// (seconds, every statement) on MariaDB, else `max_execution_time` (milliseconds, which
/// MySQL applies to `SELECT` only).
pub async fn set_statement_timeout(
    conn: &mut AnyConnection,
    limit: std::time::Duration,
) -> sqlx::Result<()> {
    // Numbers only: nothing of the caller's reaches the text.
    let mariadb = format!(
        "SET SESSION max_statement_time = {:.3}",
        limit.as_secs_f64().max(0.001)
    );
    if sqlx::raw_sql(AssertSqlSafe(mariadb))
        .execute(&mut *conn)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let ms = limit.as_millis().max(1);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET SESSION max_execution_time = {ms}"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the named lock `name` if it is free; held by the session until released or closed.
pub async fn try_lock(conn: &mut AnyConnection, name: &str) -> sqlx::Result<bool> {
    let got: Option<i64> = sqlx::query_scalar("SELECT CAST(GET_LOCK(?, 0) AS SIGNED)")
        .bind(name)
        .fetch_one(conn)
        .await?;
    Ok(got == Some(1))
}

pub async fn unlock(conn: &mut AnyConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks or unlocks the user's account: a locked account cannot log in.
pub async fn set_login(
    admin: &mut AnyConnection,
    role: &RoleName,
    login: bool,
) -> sqlx::Result<()> {
    let verb = if login { "UNLOCK" } else { "LOCK" };
    let sql = format!("ALTER USER {} ACCOUNT {verb}", account(role));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// Ends every session of the user, until none is listed (a session ends at the server's
/// next check of its kill flag, not at once).
pub async fn terminate_role(admin: &mut AnyConnection, role: &RoleName) -> sqlx::Result<()> {
    for _ in 0..250 {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = ?",
        )
        .bind(role.as_str())
        .fetch_all(&mut *admin)
        .await?;
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            // A session may end by itself meanwhile (unknown thread id): that is the goal.
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .execute(&mut *admin)
                .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether the server refused a login because the account is locked (MariaDB 4151, MySQL
/// 3118): its tenant is suspended.
pub fn is_account_locked(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|e| matches!(e.number(), 4151 | 3118))
}
