//! The plain side of the comparison: a sqlx pool on one tenant's own database, as an
//! application without Tenantry would have, and the query on it with and without a
//! transaction.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{MySqlPool, PgPool, SqlitePool};
use tenantry::Engine;

/// The query, with each engine's placeholders.
pub(super) const SQL: &str =
    "SELECT id, storage_path FROM documents WHERE tenant_id = ? AND id = ?";
pub(super) const SQL_PG: &str =
    "SELECT id, storage_path FROM documents WHERE tenant_id = $1 AND id = $2";

/// A document's id and storage path.
pub(super) type Row = (String, String);

/// How long the plain pool waits for a connection, as the tenant pools do by default.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing the plain pool may take (it waits for its connections to come back).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where a plain pool connects: a server database's URL (administrative login), or the
/// tenant's SQLite file.
#[derive(Debug, Clone)]
pub(super) enum PlainTarget {
    Url(String),
    SqliteFile(PathBuf),
}

/// A plain sqlx pool on one tenant's database.
#[derive(Debug, Clone)]
pub(super) enum PlainPool {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

impl PlainPool {
    /// A pool of at most `max` connections, the first one opened within `wait`.
    pub(super) async fn connect(
        target: &PlainTarget,
        max: u32,
        wait: Duration,
    ) -> anyhow::Result<PlainPool> {
        let opened = async {
            Ok::<_, anyhow::Error>(match target {
                PlainTarget::SqliteFile(file) => {
                    let options = SqliteConnectOptions::new()
                        .filename(file)
                        .create_if_missing(false);
                    PlainPool::Sqlite(
                        SqlitePoolOptions::new()
                            .max_connections(max)
                            .acquire_timeout(ACQUIRE_TIMEOUT)
                            .connect_with(options)
                            .await?,
                    )
                }
                PlainTarget::Url(url) => match Engine::from_url(url)? {
                    Engine::Postgres => PlainPool::Postgres(
                        PgPoolOptions::new()
                            .max_connections(max)
                            .acquire_timeout(ACQUIRE_TIMEOUT)
                            .connect_with(PgConnectOptions::from_str(url)?)
                            .await?,
                    ),
                    Engine::Mysql => PlainPool::Mysql(
                        MySqlPoolOptions::new()
                            .max_connections(max)
                            .acquire_timeout(ACQUIRE_TIMEOUT)
                            .connect_with(MySqlConnectOptions::from_str(
                                &tenantry::engine::driver_url(url),
                            )?)
                            .await?,
                    ),
                    Engine::Sqlite => anyhow::bail!("an SQLite tenant is a file, not a URL"),
                },
            })
        };
        tokio::time::timeout(wait, opened)
            .await
            .context("the plain pool's first connection timed out")?
            .context("open the plain pool")
    }

    /// Closes the pool, within [`CLOSE_WAIT`].
    pub(super) async fn close(&self) {
        let closing = async {
            match self {
                PlainPool::Postgres(p) => p.close().await,
                PlainPool::Mysql(p) => p.close().await,
                PlainPool::Sqlite(p) => p.close().await,
            }
        };
        if tokio::time::timeout(CLOSE_WAIT, closing).await.is_err() {
            tracing::debug!("the plain pool did not close in time");
        }
    }

    pub(super) async fn find(&self, tenant_id: &str, id: &str) -> sqlx::Result<Option<Row>> {
        match self {
            PlainPool::Postgres(p) => {
                sqlx::query_as(SQL_PG)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            PlainPool::Mysql(p) => {
                sqlx::query_as(SQL)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            PlainPool::Sqlite(p) => {
                sqlx::query_as(SQL)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
        }
    }

    pub(super) async fn find_in_tx(&self, tenant_id: &str, id: &str) -> sqlx::Result<Option<Row>> {
        macro_rules! in_tx {
            ($pool:expr, $sql:expr) => {{
                let mut tx = $pool.begin().await?;
                let row = sqlx::query_as($sql)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row)
            }};
        }
        match self {
            PlainPool::Postgres(p) => in_tx!(p, SQL_PG),
            PlainPool::Mysql(p) => in_tx!(p, SQL),
            PlainPool::Sqlite(p) => in_tx!(p, SQL),
        }
    }
}

/// What the plain handlers serve from: the pool and the one tenant's id.
#[derive(Debug)]
pub(super) struct Plain {
    pub pool: PlainPool,
    pub tenant_id: String,
}
