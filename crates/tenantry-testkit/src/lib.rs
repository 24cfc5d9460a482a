//! Fixtures for Tenantry's tests: a fresh catalog and tenant server per test, on real SQLite
//! files or a real PostgreSQL server.
//!
//! A test that needs PostgreSQL gets `None` from [`Fixture::new`] and returns early when the
//! server is unreachable, unless `CI` is set, in which case it panics: CI never passes by
//! skipping.

#![allow(clippy::missing_panics_doc)]

mod cluster;
mod pgbouncer;

pub use cluster::TempCluster;
pub use pgbouncer::PgBouncer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Connection, Row};
use tenantry::migrate::ledger::{self, LedgerRow};
use tenantry::{Config, NewTenant, Settings, Tenant, Tenantry};

/// Where a test's catalog and tenants live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite catalog, tenants as SQLite files on the built-in `local` server.
    Sqlite,
    /// PostgreSQL catalog (a fresh database), tenants as databases on server `pg`.
    Postgres,
    /// MariaDB/MySQL catalog (a fresh database), tenants as databases on server `my`.
    Mysql,
}

impl Backend {
    /// The backend a test module is named after (`sqlite`, `postgres`, `mysql`).
    pub fn from_name(name: &str) -> Backend {
        match name {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            "mysql" => Backend::Mysql,
            other => panic!("no backend {other}"),
        }
    }

    pub fn engine(self) -> tenantry::Engine {
        match self {
            Backend::Sqlite => tenantry::Engine::Sqlite,
            Backend::Postgres => tenantry::Engine::Postgres,
            Backend::Mysql => tenantry::Engine::Mysql,
        }
    }
}

/// The MySQL/MariaDB server tests use: `TENANTRY_TEST_MYSQL_URL`, or the local default.
pub fn mysql_url() -> String {
    std::env::var("TENANTRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".to_owned())
}

/// The MySQL URL if the server answers; `None` (skip) if not, or a panic under CI.
pub async fn require_mysql() -> Option<String> {
    require("MySQL/MariaDB", mysql_url()).await
}

/// The PostgreSQL server tests use: `TENANTRY_TEST_POSTGRES_URL`, or the local default.
pub fn postgres_url() -> String {
    std::env::var("TENANTRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The PostgreSQL URL if the server answers; `None` (skip) if not, or a panic under CI.
pub async fn require_postgres() -> Option<String> {
    require("PostgreSQL", postgres_url()).await
}

/// `url` if its server answers; `None` (skip) if not, or a panic under CI.
async fn require(what: &str, url: String) -> Option<String> {
    sqlx::any::install_default_drivers();
    match sqlx::AnyConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Some(url)
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set and {what} at {url} is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {what} at {url} is unreachable: {e}");
            None
        }
    }
}

/// The same server URL with another database.
pub fn with_database(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("valid PostgreSQL URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// Creates a fresh, uniquely named PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str, prefix: &str) -> (String, String) {
    let name = format!(
        "{prefix}_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );
    let mut admin = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    (with_database(admin_url, &name), name)
}

/// Creates a fresh, uniquely named MySQL database and returns its URL.
pub async fn fresh_mysql_database(admin_url: &str, prefix: &str) -> (String, String) {
    let name = format!(
        "{prefix}_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );
    let mut admin = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to MySQL");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
    )))
    .execute(&mut admin)
    .await
    .expect("create test database");
    (with_database(admin_url, &name), name)
}

/// Drops a database made by [`fresh_postgres_database`].
pub async fn drop_postgres_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::AnyConnection::connect(admin_url).await {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

/// A test's own Tenantry: temp directory, catalog, migrations (the example set), server.
pub struct Fixture {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub tenantry: Tenantry,
    /// Server name to create tenants on.
    pub server: String,
    /// `--catalog` value for CLI runs (None: the default SQLite file in the data dir).
    pub catalog_url: Option<String>,
    /// The server's admin URL and the catalog database to drop at cleanup.
    server_db: Option<(String, String)>,
    /// PostgreSQL: the test's own server database (schema and shared tenants live there).
    pg_server_db: Option<String>,
}

impl Fixture {
    /// A fresh fixture, or `None` when the backend's server is unreachable outside CI.
    pub async fn new(backend: Backend) -> Option<Fixture> {
        let dir = tempfile::tempdir().expect("tempdir");
        let migrations = dir.path().join("migrations");
        tenantry::example::write_tenant_migrations(&migrations).expect("write example set");
        let (catalog_url, server_db) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let admin = require_postgres().await?;
                let (url, name) = fresh_postgres_database(&admin, "tenantry_test_catalog").await;
                (Some(url), Some((admin, name)))
            }
            Backend::Mysql => {
                let admin = require_mysql().await?;
                let (url, name) = fresh_mysql_database(&admin, "tenantry_test_catalog").await;
                (Some(url), Some((admin, name)))
            }
        };
        let config = Settings {
            data_dir: Some(dir.path().join("data")),
            migrations: Some(migrations),
            catalog: catalog_url.clone(),
            lock_wait_secs: Some(30),
            ..Settings::default()
        }
        .resolve();
        tenantry::crypto::MasterKey::generate_if_missing(&config.master_key_file)
            .expect("generate a master key");
        let tenantry = Tenantry::open_or_create(config)
            .await
            .expect("create the catalog");
        let mut pg_server_db = None;
        let server = match (&server_db, backend) {
            (Some((admin, _)), Backend::Postgres) => {
                let (url, name) = fresh_postgres_database(admin, "tenantry_test_server").await;
                pg_server_db = Some(name);
                tenantry.add_server("pg", &url).await.expect("add server");
                "pg".to_owned()
            }
            (Some((admin, _)), Backend::Mysql) => {
                tenantry.add_server("my", admin).await.expect("add server");
                "my".to_owned()
            }
            _ => "local".to_owned(),
        };
        Some(Fixture {
            backend,
            dir,
            tenantry,
            server,
            catalog_url,
            server_db,
            pg_server_db,
        })
    }

    /// A fleet of every engine: a PostgreSQL catalog and server `pg`, a MariaDB server `my`,
    /// and the built-in SQLite server `local`; `None` when a server is unreachable outside CI.
    pub async fn mixed() -> Option<Fixture> {
        require_mysql().await?;
        let fx = Fixture::new(Backend::Postgres).await?;
        fx.tenantry
            .add_server("my", &mysql_url())
            .await
            .expect("add MariaDB");
        Some(fx)
    }

    /// Replaces the fixture's migration set with one file.
    pub fn use_migration(&self, name: &str, sql: &str) {
        for entry in std::fs::read_dir(self.migrations_dir()).expect("migrations") {
            std::fs::remove_file(entry.expect("entry").path()).expect("remove");
        }
        self.write_migration(name, sql);
    }

    /// Another `Tenantry` on this fixture's catalog, data and migrations, with `settings`
    /// layered on top (e.g. a different pool size or global tables).
    pub async fn reopen(&self, settings: Settings) -> Tenantry {
        let settings = settings.over(Settings {
            data_dir: Some(self.data_dir()),
            migrations: Some(self.migrations_dir()),
            catalog: self.catalog_url.clone(),
            ..Settings::default()
        });
        Tenantry::open(settings.resolve()).await.expect("reopen")
    }

    pub fn config(&self) -> &Config {
        self.tenantry.config()
    }

    /// Runs `sql` on the catalog database itself, behind Tenantry's back (tampering tests);
    /// returns the rows it changed.
    pub async fn catalog_sql(&self, sql: &str) -> u64 {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&self.config().catalog_url())
            .await
            .expect("connect to the catalog");
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("run SQL on the catalog");
        let _ = conn.close().await;
        done.rows_affected()
    }

    /// The number `sql` (a `SELECT COUNT(*) …` on the catalog database) returns.
    pub async fn catalog_count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&self.config().catalog_url())
            .await
            .expect("connect to the catalog");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .expect("count on the catalog");
        let _ = conn.close().await;
        n
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.config().migrations_dir.clone()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config().data_dir.clone()
    }

    /// Writes (or overwrites) a migration file.
    pub fn write_migration(&self, name: &str, sql: &str) -> PathBuf {
        let path = self.migrations_dir().join(name);
        std::fs::write(&path, sql).expect("write migration");
        path
    }

    /// Creates a tenant on the fixture's server with a strategy.
    pub async fn create_with(
        &self,
        slug: &str,
        strategy: tenantry::Strategy,
    ) -> tenantry::Result<Tenant> {
        self.tenantry
            .create_tenant(NewTenant {
                slug: slug.to_owned(),
                server: Some(self.server.clone()),
                strategy: Some(strategy),
                ..NewTenant::default()
            })
            .await
    }

    /// Creates a tenant on the fixture's server.
    pub async fn create(&self, slug: &str) -> tenantry::Result<Tenant> {
        self.tenantry
            .create_tenant(NewTenant {
                slug: slug.to_owned(),
                server: Some(self.server.clone()),
                ..NewTenant::default()
            })
            .await
    }

    /// Re-reads a tenant from the catalog.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        self.tenantry.catalog().tenant(slug).await.expect("tenant")
    }

    /// The catalog's version of each of `slugs`, in order.
    pub async fn versions(&self, slugs: &[&str]) -> Vec<i64> {
        let mut out = Vec::with_capacity(slugs.len());
        for slug in slugs {
            out.push(self.tenant(slug).await.version);
        }
        out
    }

    /// The tables present in a tenant's storage.
    pub async fn tables(&self, tenant: &Tenant) -> BTreeSet<String> {
        let mut conn = self
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("connect");
        let rows = sqlx::query(self.backend.engine().list_tables_sql())
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").expect("name"))
            .collect()
    }

    /// A tenant's migration ledger.
    pub async fn ledger(&self, tenant: &Tenant) -> Vec<LedgerRow> {
        let mut conn = self
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("connect");
        ledger::read(&mut conn).await.expect("read ledger")
    }

    /// Runs one query on a tenant's storage and returns the first column of the first row.
    pub async fn scalar(&self, tenant: &Tenant, sql: &str) -> i64 {
        let mut conn = self
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("connect");
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .expect("scalar query")
    }

    /// Runs statements on a tenant's storage behind Tenantry's back (to sabotage it).
    pub async fn execute(&self, tenant: &Tenant, sql: &str) {
        let mut conn = self
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("connect");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("execute");
    }

    /// Whether a tenant's storage still exists.
    pub async fn storage_exists(&self, tenant: &Tenant) -> bool {
        match self.backend {
            Backend::Sqlite => self
                .data_dir()
                .join("tenants")
                .join(format!("{}.db", tenant.storage))
                .exists(),
            Backend::Postgres | Backend::Mysql => {
                let admin = &self.server_db.as_ref().expect("server").0;
                let mut conn = sqlx::AnyConnection::connect(admin).await.expect("connect");
                let sql = match self.backend {
                    Backend::Postgres => "SELECT COUNT(*) FROM pg_database WHERE datname = $1",
                    _ => "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
                };
                let n: i64 = sqlx::query_scalar(sql)
                    .bind(tenant.storage.as_str())
                    .fetch_one(&mut conn)
                    .await
                    .expect("query");
                n > 0
            }
        }
    }

    /// Base CLI arguments that point `tenantry` at this fixture.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            path_arg(&self.data_dir()),
            "--migrations".to_owned(),
            path_arg(&self.migrations_dir()),
        ];
        if let Some(url) = &self.catalog_url {
            args.push("--catalog".to_owned());
            args.push(url.clone());
        }
        args
    }

    /// Drops every tenant's storage and the catalog database.
    pub async fn cleanup(self) {
        if let Ok(tenants) = self.tenantry.catalog().tenants().await {
            for t in tenants {
                let _ = self.tenantry.delete_tenant(t.slug.as_str(), true).await;
            }
        }
        // Servers go with their shared pools (each pool's database and role).
        if let Ok(servers) = self.tenantry.catalog().servers().await {
            for server in servers.iter().filter(|s| s.name.as_str() != "local") {
                let _ = self.tenantry.remove_server(server.name.as_str()).await;
            }
        }
        self.tenantry.catalog().close().await;
        match (&self.server_db, self.backend) {
            (Some((admin, name)), Backend::Postgres) => {
                drop_postgres_database(admin, name).await;
                if let Some(server) = &self.pg_server_db {
                    drop_postgres_database(admin, server).await;
                }
            }
            (Some((admin, name)), Backend::Mysql) => {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await {
                    let _ =
                        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
                            .execute(&mut conn)
                            .await;
                }
            }
            _ => {}
        }
    }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Writes `#[tokio::test]` functions running an `async fn(Backend)` on SQLite, PostgreSQL
/// and MySQL/MariaDB.
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends!([sqlite, postgres, mysql] [$($name),*]);
    };
}

/// The same on the engines with transactional DDL only (SQLite, PostgreSQL), in a module
/// `transactional_ddl`.
#[macro_export]
macro_rules! on_transactional_backends {
    ($($name:ident),* $(,)?) => {
        mod transactional_ddl {
            $crate::backend_module!(nested sqlite [$($name),*]);
            $crate::backend_module!(nested postgres [$($name),*]);
        }
    };
}

/// One test module per listed backend, each with one test per listed function.
#[macro_export]
macro_rules! on_backends {
    ([$($backend:ident),*] $names:tt) => {
        $( $crate::backend_module!(top $backend $names); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! backend_module {
    (top $backend:ident [$($name:ident),*]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::from_name(stringify!($backend))).await;
                }
            )*
        }
    };
    (nested $backend:ident [$($name:ident),*]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::super::$name($crate::Backend::from_name(stringify!($backend))).await;
                }
            )*
        }
    };
}
