//! A tenant's physical storage under the database-per-tenant strategy: creating and dropping
//! it on its server, connecting to it, and the per-tenant lock that serialises migration
//! runners across processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use crate::catalog::{Server, Tenant};
use crate::engine::{self, Engine, postgres, sqlite};
use crate::error::{Error, Result};

/// Where a server keeps its tenants.
#[derive(Debug, Clone)]
pub enum Place {
    /// A directory of SQLite files.
    SqliteDir(PathBuf),
    /// A PostgreSQL server; the URL is its administrative connection.
    Postgres { name: String, url: String },
}

/// A held per-tenant lock. Dropping the connection or the process releases it too.
#[derive(Debug)]
pub enum TenantLock {
    /// A PostgreSQL session advisory lock held by the migration connection.
    Advisory(i64),
    /// An OS lock on the tenant's lock file.
    File(std::fs::File),
}

impl Place {
    /// Resolves a server record; SQLite directories are relative to `data_dir`.
    pub fn of(server: &Server, data_dir: &Path) -> Place {
        match server.engine {
            Engine::Sqlite => Place::SqliteDir(engine::sqlite_dir(&server.url, data_dir)),
            Engine::Postgres => Place::Postgres {
                name: server.name.to_string(),
                url: server.url.clone(),
            },
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Place::SqliteDir(_) => Engine::Sqlite,
            Place::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Checks the server answers (and, for SQLite, that its directory can be created).
    pub async fn check_reachable(&self, name: &str) -> Result<()> {
        match self {
            Place::SqliteDir(dir) => std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            }),
            Place::Postgres { url, .. } => {
                let connect = tokio::time::timeout(Duration::from_secs(10), engine::connect(url));
                let result = match connect.await {
                    Ok(result) => result,
                    Err(_) => Err(sqlx::Error::PoolTimedOut),
                };
                match result {
                    Ok(mut conn) => {
                        use sqlx::Connection;
                        conn.ping()
                            .await
                            .map_err(|source| unreachable(name, url, source))
                    }
                    Err(source) => Err(unreachable(name, url, source)),
                }
            }
        }
    }

    /// Creates the tenant's storage; storage that already exists under its name is kept.
    pub async fn create(&self, tenant: &Tenant) -> Result<()> {
        match self {
            Place::SqliteDir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| Error::StorageFile {
                    tenant: tenant.slug.to_string(),
                    action: "create the directory",
                    path: dir.clone(),
                    source,
                })?;
                // Opening with mode=rwc creates the file.
                self.connect(tenant).await.map(drop)
            }
            Place::Postgres { name, url } => {
                let mut admin = engine::connect(url)
                    .await
                    .map_err(|source| unreachable(name, url, source))?;
                postgres::create_database(&mut admin, &tenant.storage)
                    .await
                    .map_err(Error::storage(tenant.slug.as_str(), "create its database"))
            }
        }
    }

    /// Whether the tenant's storage exists.
    pub async fn exists(&self, tenant: &Tenant) -> Result<bool> {
        match self {
            Place::SqliteDir(dir) => Ok(sqlite::file_path(dir, &tenant.storage).exists()),
            Place::Postgres { name, url } => {
                let mut admin = engine::connect(url)
                    .await
                    .map_err(|source| unreachable(name, url, source))?;
                postgres::database_exists(&mut admin, &tenant.storage)
                    .await
                    .map_err(Error::storage(tenant.slug.as_str(), "look up its database"))
            }
        }
    }

    /// Drops the tenant's storage; storage already gone is fine.
    pub async fn drop_storage(&self, tenant: &Tenant) -> Result<()> {
        match self {
            Place::SqliteDir(dir) => {
                for path in sqlite::all_files(dir, &tenant.storage) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(Error::StorageFile {
                                tenant: tenant.slug.to_string(),
                                action: "remove",
                                path,
                                source,
                            });
                        }
                    }
                }
                Ok(())
            }
            Place::Postgres { name, url } => {
                let mut admin = engine::connect(url)
                    .await
                    .map_err(|source| unreachable(name, url, source))?;
                postgres::drop_database(&mut admin, &tenant.storage)
                    .await
                    .map_err(Error::storage(tenant.slug.as_str(), "drop its database"))
            }
        }
    }

    /// Opens an administrative connection to the tenant's storage.
    pub async fn connect(&self, tenant: &Tenant) -> Result<AnyConnection> {
        let url = match self {
            Place::SqliteDir(dir) => sqlite::url(&sqlite::file_path(dir, &tenant.storage)),
            Place::Postgres { url, .. } => postgres::database_url(url, &tenant.storage)?,
        };
        let mut conn = engine::connect(&url).await.map_err(Error::storage(
            tenant.slug.as_str(),
            "connect to its storage",
        ))?;
        if let Place::Postgres { .. } = self {
            postgres::watch_client(&mut conn).await;
        }
        Ok(conn)
    }

    /// Takes the tenant's lock, polling for up to `wait` while another runner holds it.
    /// `Ok(None)` means the other runner still held it when the wait ran out.
    pub async fn lock(
        &self,
        tenant: &Tenant,
        conn: &mut AnyConnection,
        wait: Duration,
    ) -> Result<Option<TenantLock>> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(20);
        loop {
            let taken = match self {
                Place::SqliteDir(dir) => {
                    let path = sqlite::lock_path(dir, &tenant.storage);
                    sqlite::try_lock(&path)
                        .map_err(|source| Error::StorageFile {
                            tenant: tenant.slug.to_string(),
                            action: "lock",
                            path,
                            source,
                        })?
                        .map(TenantLock::File)
                }
                Place::Postgres { .. } => {
                    let key = tenant.id.lock_key();
                    postgres::try_lock(conn, key)
                        .await
                        .map_err(Error::storage(tenant.slug.as_str(), "take its lock"))?
                        .then_some(TenantLock::Advisory(key))
                }
            };
            if taken.is_some() || Instant::now() >= deadline {
                return Ok(taken);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl TenantLock {
    /// Releases the lock on the connection that took it.
    pub async fn release(self, conn: &mut AnyConnection) {
        match self {
            TenantLock::Advisory(key) => {
                if let Err(e) = postgres::unlock(conn, key).await {
                    // The lock goes with the connection, which the caller closes.
                    tracing::warn!(error = %e, "advisory unlock failed");
                }
            }
            TenantLock::File(file) => drop(file),
        }
    }
}

fn unreachable(name: &str, url: &str, source: sqlx::Error) -> Error {
    Error::ServerUnreachable {
        name: name.to_owned(),
        url: engine::redact_url(url),
        source,
    }
}
