//! Watching connections during a load run: every 50 ms, the open connections the pool
//! manager reports, and the server's own count of sessions of the bench's login roles
//! (PostgreSQL `pg_stat_activity`, MySQL `information_schema.processlist`) read on an
//! administrative connection of its own.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, MySqlConnection, PgConnection};
use tenantry::{Engine, Tenantry};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const EVERY: Duration = Duration::from_millis(50);
/// How long one poll may take before it counts as failed.
const POLL_WAIT: Duration = Duration::from_secs(2);

/// Sessions of login roles named `t_…` (tenants) or `p_…` (shared pools).
const PG_SESSIONS: &str = r"SELECT usename::text FROM pg_stat_activity
    WHERE usename LIKE 't\_%' OR usename LIKE 'p\_%'";
const MYSQL_SESSIONS: &str = r"SELECT CAST(user AS CHAR) FROM information_schema.processlist
    WHERE user LIKE 't\\_%'";
const PG_LIMIT: &str = "SELECT current_setting('max_connections'), \
    current_setting('superuser_reserved_connections')";
const MYSQL_LIMIT: &str = "SELECT CAST(@@max_connections AS SIGNED)";

/// The server's side of the count: an administrative connection, and the login roles of the
/// bench's tenants (other roles' sessions on the same server are not counted).
pub(super) struct Probe {
    conn: Option<Admin>,
    roles: HashSet<String>,
}

enum Admin {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

impl Probe {
    /// Connects to `url` (the server's administrative URL) within `wait`; for SQLite (no
    /// URL), a probe that counts nothing.
    pub(super) async fn connect(
        engine: Engine,
        url: Option<&str>,
        wait: Duration,
    ) -> anyhow::Result<Probe> {
        let conn = match (url, engine) {
            (None, _) | (_, Engine::Sqlite) => None,
            (Some(url), engine) => {
                let connect = async {
                    Ok::<_, anyhow::Error>(match engine {
                        Engine::Postgres => Admin::Postgres(
                            PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?,
                        ),
                        _ => Admin::Mysql(
                            MySqlConnection::connect_with(&MySqlConnectOptions::from_str(
                                &tenantry::engine::driver_url(url),
                            )?)
                            .await?,
                        ),
                    })
                };
                Some(
                    tokio::time::timeout(wait, connect)
                        .await
                        .context("connecting to the server to count its sessions timed out")?
                        .context("connect to the server to count its sessions")?,
                )
            }
        };
        Ok(Probe {
            conn,
            roles: HashSet::new(),
        })
    }

    /// Counts the sessions of these login roles.
    pub(super) fn count_roles(&mut self, roles: HashSet<String>) {
        self.roles = roles;
    }

    /// Where the server-side count comes from.
    pub(super) fn source(&self) -> &'static str {
        match &self.conn {
            None => "pool_stats",
            Some(Admin::Postgres(_)) => "pg_stat_activity",
            Some(Admin::Mysql(_)) => "information_schema.processlist",
        }
    }

    /// How many client connections the server takes, less those it keeps for superusers.
    pub(super) async fn server_limit(&mut self) -> anyhow::Result<Option<u32>> {
        let limit = match &mut self.conn {
            None => return Ok(None),
            Some(Admin::Postgres(conn)) => {
                let (max, reserved): (String, String) =
                    tokio::time::timeout(POLL_WAIT, sqlx::query_as(PG_LIMIT).fetch_one(&mut *conn))
                        .await??;
                max.parse::<u32>()?
                    .saturating_sub(reserved.parse::<u32>().unwrap_or(0))
            }
            Some(Admin::Mysql(conn)) => {
                let max: i64 = tokio::time::timeout(
                    POLL_WAIT,
                    sqlx::query_scalar(MYSQL_LIMIT).fetch_one(&mut *conn),
                )
                .await??;
                u32::try_from(max).unwrap_or(u32::MAX)
            }
        };
        Ok(Some(limit))
    }

    /// The bench's sessions the server reports now.
    async fn count(&mut self) -> anyhow::Result<Option<u32>> {
        let users: Vec<String> = match &mut self.conn {
            None => return Ok(None),
            Some(Admin::Postgres(conn)) => {
                tokio::time::timeout(POLL_WAIT, sqlx::query_scalar(PG_SESSIONS).fetch_all(conn))
                    .await??
            }
            Some(Admin::Mysql(conn)) => {
                tokio::time::timeout(
                    POLL_WAIT,
                    sqlx::query_scalar(MYSQL_SESSIONS).fetch_all(conn),
                )
                .await??
            }
        };
        let mine = users.iter().filter(|u| self.roles.contains(u.as_str()));
        Ok(Some(u32::try_from(mine.count()).unwrap_or(u32::MAX)))
    }

    /// Closes the administrative connection, within [`POLL_WAIT`].
    async fn close(self) {
        let closing = async {
            match self.conn {
                None => Ok(()),
                Some(Admin::Postgres(conn)) => conn.close().await,
                Some(Admin::Mysql(conn)) => conn.close().await,
            }
        };
        let _ = tokio::time::timeout(POLL_WAIT, closing).await;
    }
}

/// The highest counts seen.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Peaks {
    /// The most sessions of the bench's roles the server reported at once (`None` on SQLite).
    pub server_sessions_max: Option<u32>,
    /// The most connections the pool manager had open at once, over all servers.
    pub pool_open_max: u32,
    pub polls: u64,
    /// Polls of the server that failed or timed out.
    pub poll_errors: u64,
}

pub(super) struct Watch {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Peaks>,
}

/// Starts watching.
pub(super) fn start(tenantry: Tenantry, mut probe: Probe) -> Watch {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut peaks = Peaks::default();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            peaks.polls += 1;
            let open: u32 = tenantry.pool_stats().iter().map(|s| s.open).sum();
            peaks.pool_open_max = peaks.pool_open_max.max(open);
            match probe.count().await {
                Ok(Some(n)) => {
                    peaks.server_sessions_max = Some(peaks.server_sessions_max.unwrap_or(0).max(n));
                }
                Ok(None) => {}
                Err(e) => {
                    peaks.poll_errors += 1;
                    tracing::debug!(error = %e, "counting the server's sessions failed");
                }
            }
        }
        probe.close().await;
        peaks
    });
    Watch { stop, task }
}

impl Watch {
    pub(super) async fn finish(self) -> anyhow::Result<Peaks> {
        let _ = self.stop.send(());
        self.task.await.context("the connection watcher failed")
    }
}
