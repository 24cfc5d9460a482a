//! Database engines. Everything that differs between SQLite, PostgreSQL and MySQL (identifier
//! quoting, placeholders, storage DDL, locks, catalog queries) lives in this module's
//! per-engine files; the rest of the crate asks [`Engine`] and never writes `if postgres`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::{AssertSqlSafe, Connection};

use crate::error::{Error, Result};
use crate::ident::SqlIdent;

pub mod dialect;
pub mod mysql;
pub mod postgres;
pub(crate) mod rows;
pub mod shape;
pub mod sqlite;
pub(crate) mod tool;
pub mod value;

/// A database engine Tenantry can place a catalog or tenants on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Engine {
    /// The engine a connection URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Engine> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::Mysql),
            _ => Err(Error::UnsupportedUrl {
                url: redact_url(url),
                reason: format!(
                    "unknown scheme {scheme:?}; supported: sqlite://<path>, \
                     postgres://<user>@<host>/<db>, mysql://<user>@<host>/<db>"
                ),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    /// Quotes a validated name as an SQL identifier for this engine. This is the one place
    /// identifiers are quoted.
    pub fn quote(self, name: &impl SqlIdent) -> String {
        quote_with(name.ident(), self.dialect().quote_char())
    }

    /// Rewrites a query written with `?` placeholders into this engine's placeholder syntax.
    /// Queries passed here are Tenantry's own constant text, never user input.
    pub fn sql(self, query: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        AssertSqlSafe(self.rewrite(query))
    }

    /// [`Engine::sql`] for a query Tenantry assembled from its own constant pieces (a list
    /// of `?` placeholders of a length it chose); never user text.
    pub fn sql_built(self, query: String) -> AssertSqlSafe<String> {
        AssertSqlSafe(self.rewrite(&query).into_owned())
    }

    fn rewrite(self, query: &str) -> Cow<'_, str> {
        match self.dialect().numbered_placeholders() {
            false => Cow::Borrowed(query),
            true => {
                let mut out = String::with_capacity(query.len() + 8);
                let mut n = 0;
                for c in query.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// A query listing the base tables of the connected tenant storage, one `name` column.
    pub fn list_tables_sql(self) -> &'static str {
        self.dialect().list_tables_sql()
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Engine {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" => Ok(Engine::Postgres),
            "mysql" => Ok(Engine::Mysql),
            other => Err(Error::CorruptCatalog {
                field: "engine",
                value: other.to_owned(),
            }),
        }
    }
}

fn quote_with(ident: &str, quote: char) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push(quote);
    for c in ident.chars() {
        if c == quote {
            out.push(quote);
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// How long Tenantry waits for a server: to open a connection, and for each of its own
/// statements on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection, its login and session setup included.
    pub connect: Duration,
    /// Each statement, enforced by the server; `None`: no limit.
    pub statement: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(crate::config::DEFAULT_CONNECT_TIMEOUT_SECS),
            statement: Some(Duration::from_secs(
                crate::config::DEFAULT_STATEMENT_TIMEOUT_SECS,
            )),
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The server did not answer within the connect timeout (it may accept the TCP
    /// connection and never speak).
    TimedOut(Duration),
    /// The server answered with an error, or could not be reached at all.
    Failed(sqlx::Error),
}

/// Opens one connection through sqlx's `Any` driver, within `timeouts.connect`, and sets
/// its statement timeout. On PostgreSQL the server is also asked to notice a vanished
/// client promptly (see [`postgres::watch_client`]).
pub async fn connect(
    url: &str,
    timeouts: &Timeouts,
) -> std::result::Result<AnyConnection, ConnectError> {
    sqlx::any::install_default_drivers();
    let engine = Engine::from_url(url).ok();
    let open = async {
        let mut conn = AnyConnection::connect(&driver_url(url)).await?;
        if let Some(engine) = engine {
            set_statement_timeout(&mut conn, engine, timeouts.statement).await;
            engine.dialect().prepare_admin(&mut conn).await;
        }
        Ok(conn)
    };
    match tokio::time::timeout(timeouts.connect, open).await {
        Ok(conn) => conn.map_err(ConnectError::Failed),
        Err(_) => Err(ConnectError::TimedOut(timeouts.connect)),
    }
}

/// Readies an administrative connection for reuse by another unit: reset, then set up as
/// [`connect`] sets up a fresh one. `false`: the engine does not reuse connections, or the
/// reset failed; close it.
pub async fn reuse(conn: &mut AnyConnection, engine: Engine, timeouts: &Timeouts) -> bool {
    let dialect = engine.dialect();
    let reset = async {
        if !dialect.reset_admin(conn).await? {
            return Ok::<bool, sqlx::Error>(false);
        }
        set_statement_timeout(conn, engine, timeouts.statement).await;
        dialect.prepare_admin(conn).await;
        Ok(true)
    };
    match tokio::time::timeout(timeouts.connect, reset).await {
        Ok(Ok(reused)) => reused,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "an administrative connection could not be reset");
            false
        }
        Err(_) => false,
    }
}

/// Limits how long the server lets each statement on `conn` run (`None`: no limit beyond
/// the server's own setting). A server that does not support it is logged, not refused.
pub async fn set_statement_timeout(
    conn: &mut AnyConnection,
    engine: Engine,
    limit: Option<Duration>,
) {
    let Some(limit) = limit else {
        return;
    };
    let result = engine.dialect().set_statement_timeout(conn, limit).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "the server does not take a statement timeout");
    }
}

/// The URL as sqlx expects it (`mariadb://` is spelled `mysql://`).
pub fn driver_url(url: &str) -> Cow<'_, str> {
    match url.strip_prefix("mariadb:") {
        Some(rest) => Cow::Owned(format!("mysql:{rest}")),
        None => Cow::Borrowed(url),
    }
}

/// The database a server URL names (its path, or a `dbname`/`database` parameter), if any.
pub fn url_database(server_url: &str) -> Option<String> {
    let url = url::Url::parse(server_url).ok()?;
    let param = url
        .query_pairs()
        .find(|(k, _)| k == "dbname" || k == "database")
        .map(|(_, v)| v.into_owned());
    let path = url.path().trim_start_matches('/');
    let path = (!path.is_empty()).then(|| {
        url::form_urlencoded::parse(format!("p={path}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| path.to_owned())
    });
    param.or(path)
}

/// The URL of `database` on the server at `server_url`, logging in as `user` with
/// `password` when given (same host, port and options).
pub fn url_with(
    server_url: &str,
    database: Option<&str>,
    login: Option<(&str, &str)>,
) -> Result<String> {
    let mut url = url::Url::parse(server_url).map_err(|e| Error::UnsupportedUrl {
        url: redact_url(server_url),
        reason: e.to_string(),
    })?;
    // Query parameters win over the URL's own parts in the drivers: drop those that would
    // override the database or the login chosen here.
    let overriding: &[&str] = match (database.is_some(), login.is_some()) {
        (_, true) => &["user", "password", "dbname", "database", "options"],
        (true, false) => &["dbname", "database"],
        (false, false) => &[],
    };
    if !overriding.is_empty() && url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !overriding.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    if let Some(db) = database {
        url.set_path(&format!("/{db}"));
    }
    if let Some((user, password)) = login {
        let bad = |_| Error::UnsupportedUrl {
            url: redact_url(server_url),
            reason: "this URL cannot carry a user name".into(),
        };
        url.set_username(user).map_err(bad)?;
        url.set_password(Some(password)).map_err(bad)?;
    }
    Ok(url.to_string())
}

pub use dialect::{Dialect, HeldLock, LockName};

/// Whether an error is the server refusing a login (bad password, unknown role).
pub fn is_auth_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("28P01") | Some("28000") | Some("42704")
            ) || mysql::is_account_locked(db.as_ref())
        }
        _ => false,
    }
}

/// A URL with its password replaced by `***`, for messages and listings.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Resolves an SQLite server URL (`sqlite:<dir>` or `sqlite://<dir>`) to a directory;
/// relative directories are relative to `data_dir`.
pub fn sqlite_dir(url: &str, data_dir: &Path) -> PathBuf {
    let raw = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = Path::new(raw);
    if path.is_absolute() {
        path.to_owned()
    } else {
        data_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_engine() {
        assert_eq!(
            Engine::Postgres.sql("a = ? AND b = ?").0,
            "a = $1 AND b = $2"
        );
        assert_eq!(Engine::Sqlite.sql("a = ?").0, "a = ?");
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_with("a\"b", '"'), "\"a\"\"b\"");
        assert_eq!(quote_with("a`b", '`'), "`a``b`");
    }

    #[test]
    fn unknown_scheme_is_refused() {
        assert!(Engine::from_url("oracle://x").is_err());
        assert!(Engine::from_url("nonsense").is_err());
        assert_eq!(
            Engine::from_url("postgresql://h/db").ok(),
            Some(Engine::Postgres)
        );
    }

    #[test]
    fn query_parameters_cannot_override_the_tenant_login_or_database() {
        let url = url_with(
            "postgres://admin:pw@h/app?user=admin&password=pw&dbname=app&sslmode=require",
            Some("tenant_x"),
            Some(("t_x", "secret")),
        )
        .expect("url");
        assert_eq!(url, "postgres://t_x:secret@h/tenant_x?sslmode=require");
        let admin = url_with("postgres://h/app?dbname=app", Some("tenant_x"), None).expect("url");
        assert_eq!(admin, "postgres://h/tenant_x");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
