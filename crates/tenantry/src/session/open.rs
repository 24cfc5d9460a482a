//! One application connection, per engine, with what every connection must carry, and what
//! puts it back in order before the next unit of work takes it:
//!
//! - SQLite: the tenant's file only (no `ATTACH`), and a commit hook that turns a commit
//!   into a rollback once the tenant is revoked (suspended or deleted);
//! - PostgreSQL, own role: settings and temporary tables reset after each unit;
//! - PostgreSQL, shared pool: the role's stored settings checked on every new connection
//!   (and restored, the connection discarded, if a tenant changed them), and after each unit
//!   a full `DISCARD ALL` with the client's statement cache cleared, so the next unit of
//!   work, maybe another tenant's, finds no prepared statement, cursor, setting, temporary
//!   table, listener or advisory lock left behind;
//! - every engine: a unit left open is rolled back first ([`Conn::reset`]); behind a
//!   transaction-mode pooler a unit also starts by dropping every prepared statement
//!   ([`Conn::start`]).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::mysql::{MySqlConnectOptions, MySqlTransactionManager};
use sqlx::postgres::{PgConnectOptions, PgTransactionManager};
use sqlx::sqlite::{SqliteConnectOptions, SqliteTransactionManager};
use sqlx::{Connection, MySqlConnection, PgConnection, Row, SqliteConnection};
use sqlx_core::transaction::TransactionManager;

use super::watch::Ends;

use crate::catalog::SharedPool;
use crate::crypto::Password;
use crate::engine::{Engine, sqlite};
use crate::error::{Error, Result};
use crate::storage::{Place, shared};

/// An open application connection.
pub(super) enum Conn {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({})", self.engine())
    }
}

/// An open connection and its server's id for the session (PostgreSQL: the backend's pid;
/// MySQL: the connection id; SQLite: none), by which its end is confirmed ([`Ends`]).
#[derive(Debug)]
pub(super) struct Session {
    pub conn: Conn,
    pub id: Option<i64>,
}

/// How a pool's connections log in, and how they are reset.
#[derive(Debug)]
pub(super) enum Login {
    /// A tenant's own role (database and schema strategies).
    Postgres(PgConnectOptions),
    /// A shared pool's runtime role, used by every tenant of the pool in turn.
    Shared {
        options: PgConnectOptions,
        healer: Arc<Healer>,
    },
    Mysql(MySqlConnectOptions),
    /// The tenant's file, and the paths its commit hook checks (file, revocation marker).
    Sqlite {
        options: SqliteConnectOptions,
        paths: Arc<(PathBuf, PathBuf)>,
    },
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

/// The error a new shared connection fails with after finding its role's settings changed
/// (twice: once before and once after restoring them).
fn tampered() -> sqlx::Error {
    sqlx::Error::Protocol("the runtime role's settings had been changed; restored".into())
}

impl Login {
    /// Opens one connection (a connection that fails after it opened is ended through
    /// `ends`). Not bounded in time here: the caller bounds it.
    pub(super) async fn open(&self, ends: &Ends) -> sqlx::Result<Session> {
        match self {
            Login::Postgres(options) => {
                identify(
                    Conn::Postgres(PgConnection::connect_with(options).await?),
                    ends,
                )
                .await
            }
            Login::Shared { options, healer } => open_shared(options, healer, ends).await,
            Login::Mysql(options) => {
                identify(
                    Conn::Mysql(MySqlConnection::connect_with(options).await?),
                    ends,
                )
                .await
            }
            Login::Sqlite { options, paths } => {
                let mut conn = SqliteConnection::connect_with(options).await?;
                if let Err(e) = guard_sqlite(&mut conn, Arc::clone(paths)).await {
                    let _ = conn.close().await;
                    return Err(e);
                }
                Ok(Session {
                    conn: Conn::Sqlite(conn),
                    id: None,
                })
            }
        }
    }

    pub(super) fn engine(&self) -> Engine {
        match self {
            Login::Postgres(_) | Login::Shared { .. } => Engine::Postgres,
            Login::Mysql(_) => Engine::Mysql,
            Login::Sqlite { .. } => Engine::Sqlite,
        }
    }
}

/// The session of a new connection, with the server's id for it.
async fn identify(mut conn: Conn, ends: &Ends) -> sqlx::Result<Session> {
    if !ends.tracks_sessions() {
        return Ok(Session { conn, id: None });
    }
    let id = match &mut conn {
        Conn::Postgres(c) => backend_pid(c).await.map(Some),
        Conn::Mysql(c) => sqlx::raw_sql("SELECT CONNECTION_ID()")
            .fetch_one(&mut *c)
            .await
            .and_then(|row| row.try_get::<u64, _>(0))
            .map(|id| i64::try_from(id).ok()),
        Conn::Sqlite(_) => Ok(None),
    };
    match id {
        Ok(id) => Ok(Session { conn, id }),
        Err(e) => {
            ends.end(Session { conn, id: None }).await;
            Err(e)
        }
    }
}

async fn backend_pid(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::raw_sql("SELECT pg_catalog.pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<i32, _>(0))
        .map(i64::from)
}

/// A shared connection, used only once the runtime role's stored settings are checked to be
/// exactly Tenantry's. A setting a tenant planted may make the check (or reading the
/// session's id) fail — a tiny statement timeout, say: that counts as changed too. Changed
/// settings are restored and the connection, which logged in with them, is closed; the next
/// one must find them right.
async fn open_shared(
    options: &PgConnectOptions,
    healer: &Healer,
    ends: &Ends,
) -> sqlx::Result<Session> {
    for _ in 0..2 {
        let mut conn = PgConnection::connect_with(options).await?;
        let tracked = ends.tracks_sessions();
        let id = match tracked {
            true => backend_pid(&mut conn).await.ok(),
            false => None,
        };
        let checked = matches!(shared::check_role_settings(&mut conn).await, Ok(true));
        let session = Session {
            conn: Conn::Postgres(conn),
            id,
        };
        if checked && (id.is_some() || !tracked) {
            return Ok(session);
        }
        ends.end(session).await;
        tracing::warn!(pool = %healer.pool.server, "shared pool role settings changed");
        if let Err(e) = healer.heal().await {
            tracing::error!(error = %e, "could not restore the shared pool's role");
        }
    }
    Err(tampered())
}

/// Lets a tenant's SQLite connection attach no other database file (without this, SQL on the
/// connection could `ATTACH` any file the process can read, other tenants' included), and
/// commit only while the tenant is admitted.
async fn guard_sqlite(
    conn: &mut SqliteConnection,
    paths: Arc<(PathBuf, PathBuf)>,
) -> sqlx::Result<()> {
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

/// Whether an SQLite connection is inside a transaction, however it was begun.
async fn sqlite_in_transaction(conn: &mut SqliteConnection) -> sqlx::Result<bool> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    // SAFETY: as in `guard_sqlite`; `sqlite3_get_autocommit` only reads the connection's
    // state.
    let autocommit = unsafe { libsqlite3_sys::sqlite3_get_autocommit(db.as_ptr()) };
    Ok(autocommit == 0)
}

impl Conn {
    pub(super) fn engine(&self) -> Engine {
        match self {
            Conn::Postgres(_) => Engine::Postgres,
            Conn::Mysql(_) => Engine::Mysql,
            Conn::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Begins a unit of work. Behind a transaction-mode pooler, the unit then drops every
    /// prepared statement, the client's cache first: the pooler may have lent this
    /// transaction a server connection where other clients' statements, or none of this
    /// client's, are prepared, and whatever the unit prepares is gone at its next start.
    pub(super) async fn start(&mut self, behind_pooler: bool) -> sqlx::Result<()> {
        match self {
            Conn::Postgres(c) => {
                PgTransactionManager::begin(c, None).await?;
                if behind_pooler {
                    c.clear_cached_statements().await?;
                    sqlx::raw_sql("DEALLOCATE ALL").execute(&mut *c).await?;
                }
                Ok(())
            }
            Conn::Mysql(c) => MySqlTransactionManager::begin(c, None).await,
            Conn::Sqlite(c) => SqliteTransactionManager::begin(c, None).await,
        }
    }

    /// Ends the unit of work: commits (savepoints the application left open are released
    /// into it) or rolls back.
    pub(super) async fn finish(&mut self, commit: bool) -> sqlx::Result<()> {
        match self {
            Conn::Postgres(c) => finish::<PgTransactionManager>(c, commit).await,
            Conn::Mysql(c) => finish::<MySqlTransactionManager>(c, commit).await,
            Conn::Sqlite(c) => finish::<SqliteTransactionManager>(c, commit).await,
        }
    }

    /// Puts the connection back in order for the next unit: rolls back what a unit left
    /// open, then the reset of its login. An error means the connection must be closed.
    pub(super) async fn reset(&mut self, login: &Login) -> sqlx::Result<()> {
        self.finish(false).await?;
        match (self, login) {
            (Conn::Postgres(c), Login::Shared { .. }) => {
                // Nothing of this unit may reach the next one: the client forgets its
                // prepared statements and the server drops every kind of session state.
                // DISCARD ALL fails inside a transaction (one the tenant began itself after
                // ending Tenantry's): the connection is then closed.
                c.clear_cached_statements().await?;
                sqlx::raw_sql("DISCARD ALL").execute(&mut *c).await?;
            }
            (Conn::Postgres(c), _) => {
                // One tenant's connections only: settings back to the role's defaults and no
                // temporary table left; its prepared statements may stay cached.
                sqlx::raw_sql("RESET ALL; DISCARD TEMP")
                    .execute(&mut *c)
                    .await?;
            }
            (Conn::Sqlite(c), _) => {
                if sqlite_in_transaction(c).await? {
                    sqlx::raw_sql("ROLLBACK").execute(&mut *c).await?;
                }
            }
            (Conn::Mysql(_), _) => {}
        }
        Ok(())
    }

    /// Closes the connection, telling the server; errors are of no further interest.
    pub(super) async fn close(self) {
        let _ = match self {
            Conn::Postgres(c) => c.close().await,
            Conn::Mysql(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }

    pub(super) fn as_postgres(&mut self) -> Option<&mut PgConnection> {
        match self {
            Conn::Postgres(c) => Some(c),
            _ => None,
        }
    }

    pub(super) fn as_mysql(&mut self) -> Option<&mut MySqlConnection> {
        match self {
            Conn::Mysql(c) => Some(c),
            _ => None,
        }
    }

    pub(super) fn as_sqlite(&mut self) -> Option<&mut SqliteConnection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            _ => None,
        }
    }
}

/// Commits or rolls back every level of the connection's transaction.
async fn finish<M: TransactionManager>(
    conn: &mut <M::Database as sqlx::Database>::Connection,
    commit: bool,
) -> sqlx::Result<()> {
    while M::get_transaction_depth(conn) > 0 {
        if commit {
            M::commit(conn).await?;
        } else {
            M::rollback(conn).await?;
        }
    }
    Ok(())
}

pub(super) fn pg_options(url: &str) -> sqlx::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url)
}

/// A shared pool's options: the search path comes with the login itself, over the role's
/// stored default, and a vanished client's session ends within a second instead of running
/// on (and holding its locks) until its statement ends. Behind a transaction-mode pooler,
/// which refuses startup options and lends server connections per transaction, the login
/// carries none: each unit sets its search path itself ([`shared::enter_sql`]).
pub(super) fn shared_options(options: PgConnectOptions, behind_pooler: bool) -> PgConnectOptions {
    if behind_pooler {
        return options;
    }
    options.options([
        ("search_path", format!("{},pg_temp", shared::SHARED_SCHEMA)),
        ("client_connection_check_interval", "1000".to_owned()),
    ])
}

pub(super) fn mysql_options(url: &str) -> sqlx::Result<MySqlConnectOptions> {
    MySqlConnectOptions::from_str(url)
}

pub(super) fn sqlite_options(file: &std::path::Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
}

/// Whether an error from opening or beginning is the server refusing the login.
pub(super) fn is_login_refused(e: &Error) -> bool {
    match e {
        Error::TenantCredentials { .. } => true,
        Error::Storage { source, .. } => crate::engine::is_auth_failure(source),
        _ => false,
    }
}
