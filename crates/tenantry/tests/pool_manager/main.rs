//! The pool manager against real servers: the per-server cap as the server itself counts
//! sessions, eviction of idle pools, the idle timeout, `Error::Busy` at the cap and at a
//! tenant's maximum, and the reset of a unit dropped without commit.

mod cap;
mod idle;
mod limits;
mod reset;

use std::future::Future;
use std::time::Duration;

use sqlx::Connection;
use tenantry::{Settings, Strategy, Tenant, Tenantry};
use tenantry_testkit::{Backend, Fixture};

/// A fixture with `n` tenants of one strategy, and the login roles their connections use.
pub struct Scene {
    pub fx: Fixture,
    pub tenants: Vec<Tenant>,
    /// The roles (users) whose sessions are this scene's application connections.
    pub roles: Vec<String>,
}

impl Scene {
    pub async fn new(backend: Backend, strategy: Strategy, n: usize) -> Option<Scene> {
        let fx = Fixture::new(backend).await?;
        let mut tenants = Vec::new();
        for i in 0..n {
            let slug = format!("tenant-{i}");
            tenants.push(fx.create_with(&slug, strategy).await.expect("create"));
        }
        let roles = match strategy {
            Strategy::Shared => {
                let pool = fx
                    .tenantry
                    .catalog()
                    .shared_pool(&fx.server)
                    .await
                    .expect("lookup")
                    .expect("a shared pool");
                vec![pool.role.to_string()]
            }
            _ => tenants
                .iter()
                .filter_map(|t| t.role.as_ref().map(|r| r.to_string()))
                .collect(),
        };
        Some(Scene { fx, tenants, roles })
    }

    /// Another `Tenantry` (a process of its own) on the scene's catalog, with these limits.
    pub async fn process(&self, limits: Settings) -> Tenantry {
        self.fx.reopen(limits).await
    }

    /// How many sessions of `roles` the server itself counts (`None` for SQLite, which has
    /// no server: the process's open file handles are counted instead, see
    /// `open_tenant_files`).
    pub async fn sessions_of(&self, roles: &[String]) -> Option<i64> {
        let mut counter = Counter::connect(self.fx.backend).await;
        let n = counter.sessions(roles).await;
        counter.close().await;
        n
    }

    /// Sessions of every role of the scene.
    pub async fn sessions(&self) -> Option<i64> {
        self.sessions_of(&self.roles).await
    }

    pub fn role_of(&self, tenant: &Tenant) -> Vec<String> {
        vec![tenant.role.as_ref().expect("a login role").to_string()]
    }

    pub async fn cleanup(self, processes: Vec<Tenantry>) {
        for process in processes {
            process.catalog().close().await;
            drop(process);
        }
        self.fx.cleanup().await;
    }
}

/// An administrative connection that counts the server's sessions by role.
pub enum Counter {
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
    Sqlite,
}

impl Counter {
    pub async fn connect(backend: Backend) -> Counter {
        match backend {
            Backend::Postgres => Counter::Postgres(
                sqlx::PgConnection::connect(&tenantry_testkit::postgres_url())
                    .await
                    .expect("admin connection"),
            ),
            Backend::Mysql => Counter::Mysql(
                sqlx::MySqlConnection::connect(&tenantry_testkit::mysql_url())
                    .await
                    .expect("admin connection"),
            ),
            Backend::Sqlite => Counter::Sqlite,
        }
    }

    /// Sessions of `roles` (PostgreSQL: `pg_stat_activity`; MySQL: the process list).
    pub async fn sessions(&mut self, roles: &[String]) -> Option<i64> {
        match self {
            Counter::Postgres(admin) => Some(
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE usename = ANY($1)")
                    .bind(roles)
                    .fetch_one(admin)
                    .await
                    .expect("count sessions"),
            ),
            Counter::Mysql(admin) => {
                let marks = vec!["?"; roles.len()].join(", ");
                let sql = format!(
                    "SELECT COUNT(*) FROM information_schema.processlist WHERE user IN ({marks})"
                );
                let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                for role in roles {
                    query = query.bind(role);
                }
                Some(query.fetch_one(admin).await.expect("count sessions"))
            }
            Counter::Sqlite => None,
        }
    }

    pub async fn close(self) {
        let _ = match self {
            Counter::Postgres(c) => c.close().await,
            Counter::Mysql(c) => c.close().await,
            Counter::Sqlite => Ok(()),
        };
    }
}

/// The process's open file handles on SQLite tenant files (`tenant_*.db`), from
/// `/proc/self/fd`.
pub fn open_tenant_files(fx: &Fixture) -> usize {
    let dir = fx.data_dir();
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            target.starts_with(&dir)
                && target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tenant_") && n.ends_with(".db"))
        })
        .count()
}

/// A unit's work: a short wait on the server, then a read.
pub fn work(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "SELECT pg_sleep(0.005); SELECT COUNT(*) AS n FROM campaigns",
        Backend::Mysql => "SELECT SLEEP(0.005); SELECT COUNT(*) AS n FROM campaigns",
        Backend::Sqlite => "SELECT COUNT(*) AS n FROM campaigns",
    }
}

/// Waits until `check` holds, polling; panics with `what` after an overall deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still not so after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settings with the pool limits a test needs.
pub fn limits(per_server: u32, per_tenant: u32, acquire_ms: u64, idle_secs: u64) -> Settings {
    Settings {
        pool_max_per_server: Some(per_server),
        pool_max_connections: Some(per_tenant),
        pool_acquire_timeout_ms: Some(acquire_ms),
        pool_idle_timeout_secs: Some(idle_secs),
        ..Settings::default()
    }
}
