//! The plain-SQL floor: the change applied to each tenant's storage the way a person with the
//! database's own client would, with none of Tenantry's bookkeeping — PostgreSQL schemas: one
//! session per worker, `SET search_path` and the change in a transaction; PostgreSQL
//! databases and SQLite files: a connection per tenant, the change in a transaction; MySQL:
//! one session per worker, `USE` and the change statement by statement.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tenantry::engine::{self, Timeouts};
use tenantry::{Engine, StorageName, Strategy};

/// Where the tenants the floor runs over live.
#[derive(Debug, Clone)]
pub(super) enum Where {
    /// A PostgreSQL or MySQL server's administrative URL.
    Server(String),
    /// The directory of an SQLite server.
    Dir(PathBuf),
}

/// Applies `change` to every storage in `storages` with `workers` sessions at once; the wall
/// time.
pub(super) async fn run(
    place: &Where,
    engine: Engine,
    strategy: Strategy,
    storages: &[StorageName],
    change: &str,
    workers: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks = (0..workers.max(1)).map(|_| {
        let next = next.clone();
        async move {
            let mut session: Option<AnyConnection> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(storage) = storages.get(i) else {
                    break;
                };
                apply(place, engine, strategy, storage, change, &mut session)
                    .await
                    .with_context(|| format!("plain SQL on {storage}"))?;
            }
            if let Some(conn) = session {
                let _ = conn.close().await;
            }
            anyhow::Ok(())
        }
    });
    for result in futures::future::join_all(tasks).await {
        result?;
    }
    Ok(started.elapsed())
}

async fn connect(url: &str) -> anyhow::Result<AnyConnection> {
    engine::connect(url, &Timeouts::default())
        .await
        .map_err(|e| anyhow::anyhow!("connect: {e:?}"))
}

async fn apply(
    place: &Where,
    engine: Engine,
    strategy: Strategy,
    storage: &StorageName,
    change: &str,
    session: &mut Option<AnyConnection>,
) -> anyhow::Result<()> {
    let quoted = engine.quote(storage);
    match (place, engine, strategy) {
        (Where::Server(url), Engine::Postgres, Strategy::Schema) => {
            if session.is_none() {
                *session = Some(connect(url).await?);
            }
            let conn = session.as_mut().context("session")?;
            let sql = format!("SET search_path TO {quoted}; BEGIN; {change} COMMIT;");
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
        }
        (Where::Server(url), Engine::Mysql, _) => {
            if session.is_none() {
                *session = Some(connect(url).await?);
            }
            let conn = session.as_mut().context("session")?;
            sqlx::raw_sql(AssertSqlSafe(format!("USE {quoted}")))
                .execute(&mut *conn)
                .await?;
            for statement in tenantry::migrate::split::statements_at(change, true) {
                sqlx::raw_sql(AssertSqlSafe(statement.text))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        (Where::Server(url), _, _) => {
            let url = engine::url_with(url, Some(storage.as_str()), None)?;
            let mut conn = connect(&url).await?;
            let sql = format!("BEGIN; {change} COMMIT;");
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
            conn.close().await?;
        }
        (Where::Dir(dir), _, _) => {
            let file = engine::sqlite::file_path(dir, storage);
            let mut conn = connect(&engine::sqlite::url_existing(&file)).await?;
            let sql = format!("BEGIN; {change} COMMIT;");
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
            conn.close().await?;
        }
    }
    Ok(())
}
