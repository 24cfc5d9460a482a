//! Tenants' physical storage, per strategy: provisioning it (with its login role), dropping
//! it, and handing the migration runner a locked, correctly scoped administrative connection.
//!
//! - [`database`]: a database of its own (SQLite file, PostgreSQL or MySQL database).
//! - [`schema`]: a PostgreSQL schema of its own.
//! - [`shared`]: rows in a server's shared pool, protected by row-level security.
//!
//! Invariant: a role's password is sealed into the catalog before the role is created or its
//! password changed, so the catalog always holds the credential in force.

pub mod database;
pub mod schema;
pub mod shared;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use crate::Tenantry;
use crate::catalog::{Server, Strategy, Tenant};
use crate::config::Config;
use crate::crypto::Password;
use crate::engine::{self, ConnectError, Engine, Timeouts, mysql, postgres, sqlite};
use crate::error::{Error, Result};
use crate::ident::{RoleName, SqlName};

/// Where a server keeps its tenants.
#[derive(Debug, Clone)]
pub enum Place {
    /// A directory of SQLite files.
    SqliteDir(PathBuf),
    /// A PostgreSQL or MySQL server; the URL is its administrative connection.
    Server {
        engine: Engine,
        name: String,
        url: String,
        /// How long to wait for it, as configured.
        timeouts: Timeouts,
    },
}

impl Place {
    /// The server's name, for messages.
    pub fn name(&self) -> String {
        match self {
            Place::SqliteDir(dir) => dir.display().to_string(),
            Place::Server { name, .. } => name.clone(),
        }
    }

    /// Resolves a server record; SQLite directories are relative to the data directory.
    pub fn of(server: &Server, config: &Config) -> Place {
        match server.engine {
            Engine::Sqlite => Place::SqliteDir(engine::sqlite_dir(&server.url, &config.data_dir)),
            engine => Place::Server {
                engine,
                name: server.name.to_string(),
                url: server.url.clone(),
                timeouts: config.timeouts(),
            },
        }
    }

    /// The same place, its connections with another statement timeout.
    pub fn with_statement_timeout(mut self, limit: Option<Duration>) -> Place {
        if let Place::Server { timeouts, .. } = &mut self {
            timeouts.statement = limit;
        }
        self
    }

    /// How long to wait for the place (SQLite directories: the defaults).
    pub fn timeouts(&self) -> Timeouts {
        match self {
            Place::SqliteDir(_) => Timeouts::default(),
            Place::Server { timeouts, .. } => *timeouts,
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Place::SqliteDir(_) => Engine::Sqlite,
            Place::Server { engine, .. } => *engine,
        }
    }

    /// Checks the server answers (and, for SQLite, that its directory can be created).
    pub async fn check_reachable(&self) -> Result<()> {
        match self {
            Place::SqliteDir(dir) => std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            }),
            Place::Server { .. } => self.admin_at(None).await.map(drop),
        }
    }

    /// An administrative connection to the server, on its own database or on `database`.
    pub async fn admin_at(&self, database: Option<&str>) -> Result<AnyConnection> {
        let Place::Server { url, .. } = self else {
            return Err(Error::UnsupportedUrl {
                url: "sqlite".into(),
                reason: "an SQLite directory has no server connection".into(),
            });
        };
        let url = engine::url_with(url, database, None)?;
        engine::connect(&url, &self.timeouts())
            .await
            .map_err(|e| match e {
                ConnectError::TimedOut(after) => self.timed_out(after),
                ConnectError::Failed(source) => self.unreachable(source),
            })
    }

    pub(crate) fn timed_out(&self, after: Duration) -> Error {
        let (name, url) = self.describe();
        Error::ServerTimedOut { name, url, after }
    }

    pub(crate) fn unreachable(&self, source: sqlx::Error) -> Error {
        let (name, url) = self.describe();
        Error::ServerUnreachable { name, url, source }
    }

    /// The server's name and its URL without a password, for messages.
    fn describe(&self) -> (String, String) {
        match self {
            Place::SqliteDir(dir) => ("local".to_owned(), dir.display().to_string()),
            Place::Server { name, url, .. } => (name.clone(), engine::redact_url(url)),
        }
    }

    /// Refuses a strategy the server's engine cannot provide, saying what is supported.
    pub fn check_strategy(&self, strategy: Strategy, server: &str) -> Result<()> {
        let supported = match self.engine() {
            Engine::Postgres => return Ok(()),
            Engine::Sqlite => {
                "SQLite servers support: database (one file per tenant); schema and shared need a PostgreSQL server"
            }
            Engine::Mysql => {
                "MySQL/MariaDB servers support: database; schema and shared need a PostgreSQL server"
            }
        };
        if strategy == Strategy::Database {
            return Ok(());
        }
        Err(Error::StrategyUnsupported {
            strategy: strategy.to_string(),
            engine: self.engine().to_string(),
            server: server.to_owned(),
            supported,
        })
    }
}

/// How a migration run is locked.
#[derive(Debug, Clone)]
pub enum LockSpec {
    /// An OS lock on this file.
    File(PathBuf),
    /// A PostgreSQL session advisory lock with this key.
    Advisory(i64),
    /// A MySQL named lock.
    Named(String),
}

/// A held lock. Dropping the connection or the process releases it too.
#[derive(Debug)]
pub enum TenantLock {
    File(std::fs::File),
    Advisory(i64),
    Named(String),
}

impl LockSpec {
    /// Takes the lock, polling for up to `wait`. `Ok(None)`: another runner still holds it.
    pub async fn acquire(
        &self,
        owner: &str,
        conn: &mut AnyConnection,
        wait: Duration,
    ) -> Result<Option<TenantLock>> {
        // A wait too long to represent means "as long as it takes" (a day).
        let deadline = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let mut pause = Duration::from_millis(20);
        loop {
            let taken = match self {
                LockSpec::File(path) => sqlite::try_lock(path)
                    .map_err(|source| Error::StorageFile {
                        tenant: owner.to_owned(),
                        action: "lock",
                        path: path.clone(),
                        source,
                    })?
                    .map(TenantLock::File),
                LockSpec::Advisory(key) => postgres::try_lock(conn, *key)
                    .await
                    .map_err(Error::storage(owner, "take its lock"))?
                    .then_some(TenantLock::Advisory(*key)),
                LockSpec::Named(name) => mysql::try_lock(conn, name)
                    .await
                    .map_err(Error::storage(owner, "take its lock"))?
                    .then(|| TenantLock::Named(name.clone())),
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
    pub async fn release(self, owner: &str, conn: &mut AnyConnection) {
        let result = match self {
            TenantLock::Advisory(key) => postgres::unlock(conn, key).await,
            TenantLock::Named(name) => mysql::unlock(conn, &name).await,
            TenantLock::File(file) => {
                drop(file);
                Ok(())
            }
        };
        if let Err(e) = result {
            // The lock goes with the connection, which the caller closes.
            tracing::warn!(owner, error = %e, "unlock failed");
        }
    }
}

/// What runs inside each migration's transaction, after its SQL and before it commits.
#[derive(Debug, Clone)]
pub enum Hook {
    None,
    /// PostgreSQL: give the tenant's role row access to the schema's tables.
    Grant {
        schema: SqlName,
        role: RoleName,
    },
    /// PostgreSQL shared pool: protect every tenant table with row-level security.
    SharedRls(shared::RlsPolicy),
}

impl Hook {
    pub async fn run(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        match self {
            Hook::None => Ok(()),
            Hook::Grant { schema, role } => {
                let ledger = SqlName::new("table", crate::migrate::ledger::TABLE)
                    .map_err(HookError::Refused)?;
                postgres::grant_tables(conn, schema, role, &ledger)
                    .await
                    .map_err(HookError::Sql)
            }
            Hook::SharedRls(policy) => policy.enforce(conn).await,
        }
    }
}

/// A hook failure: the database refused, or Tenantry refused what the migration left.
#[derive(Debug)]
pub enum HookError {
    Sql(sqlx::Error),
    Refused(Error),
}

/// A locked-to-be, correctly scoped administrative connection for migrating one unit (a
/// tenant, or a shared pool).
pub struct MigrationTarget {
    /// Who is migrated, for messages: the tenant slug or `shared pool on <server>`.
    pub owner: String,
    pub engine: Engine,
    pub conn: AnyConnection,
    pub lock: LockSpec,
    pub hook: Hook,
}

impl Tenantry {
    /// Creates (or completes) a tenant's storage and login role. Idempotent.
    pub(crate) async fn provision_storage(&self, tenant: &Tenant) -> Result<()> {
        let place = self.place(tenant).await?;
        match tenant.strategy {
            Strategy::Database => database::provision(self, &place, tenant).await,
            Strategy::Schema => schema::provision(self, &place, tenant).await,
            Strategy::Shared => shared::ensure_pool(self, &place, true).await.map(drop),
        }
    }

    /// The migration target of a tenant: its own storage, or its server's shared pool.
    /// Its connection has the migration statement timeout (none by default): migrations
    /// may legitimately run long.
    pub(crate) async fn migration_target(&self, tenant: &Tenant) -> Result<MigrationTarget> {
        let place = self.place(tenant).await?;
        let migrating = place
            .clone()
            .with_statement_timeout(self.config.migration_statement_timeout);
        match tenant.strategy {
            Strategy::Database => database::target(self, &migrating, tenant).await,
            Strategy::Schema => schema::target(self, &migrating, tenant).await,
            Strategy::Shared => {
                let pool = shared::ensure_pool(self, &place, false).await?;
                shared::target(self, &migrating, &pool).await
            }
        }
    }

    /// Removes a tenant's storage and role (shared: its rows). Idempotent.
    pub(crate) async fn drop_storage(&self, tenant: &Tenant) -> Result<()> {
        let place = self.place(tenant).await?;
        match tenant.strategy {
            Strategy::Database => database::drop(&place, tenant).await,
            Strategy::Schema => schema::drop(&place, tenant).await,
            Strategy::Shared => shared::delete_rows(self, &place, tenant).await,
        }
    }

    /// Lets the tenant's application connections in (`allow`), or shuts them out in every
    /// process at once, ending those already open: its login role may log in or not
    /// (database, schema), its context verifies or not (shared), a revocation marker beside
    /// its file is absent or present (SQLite).
    pub(crate) async fn set_access(&self, tenant: &Tenant, allow: bool) -> Result<()> {
        let place = self.place(tenant).await?;
        match tenant.strategy {
            Strategy::Database => database::set_access(&place, tenant, allow).await,
            Strategy::Schema => schema::set_access(&place, tenant, allow).await,
            Strategy::Shared => {
                let Some(pool) = self.catalog.shared_pool(tenant.server.as_str()).await? else {
                    return Ok(());
                };
                if allow {
                    shared::admit(&place, &pool, tenant).await
                } else {
                    shared::revoke(&place, &pool, tenant).await
                }
            }
        }
    }

    /// Whether anything of the tenant's storage is left (shared: any of its rows).
    pub(crate) async fn storage_exists(&self, tenant: &Tenant) -> Result<bool> {
        let place = self.place(tenant).await?;
        match tenant.strategy {
            Strategy::Database => database::exists(&place, tenant).await,
            Strategy::Schema => schema::exists(&place, tenant).await,
            Strategy::Shared => shared::has_rows(self, &place, tenant).await,
        }
    }

    /// The tenant role's password: the one sealed in the catalog, or for a tenant without
    /// one, a fresh password sealed into the catalog first. Provisioning sets the role to
    /// this password, so it also restores a password changed behind Tenantry's back.
    pub(crate) async fn issue_credentials(&self, tenant: &Tenant) -> Result<(RoleName, Password)> {
        let key = self.master_key()?;
        let role = tenant.id.role_name();
        let what = format!("tenant {:?}", tenant.slug.as_str());
        let sealed = match &tenant.role_secret {
            Some(sealed) => sealed.clone(),
            None => {
                let fresh = key.seal(Password::generate().as_str());
                self.catalog
                    .set_credentials(tenant.id, &role, &fresh)
                    .await?;
                // Another runner may have stored its own first: the catalog's is the one.
                self.catalog
                    .tenant_by_id(tenant.id)
                    .await?
                    .role_secret
                    .unwrap_or(fresh)
            }
        };
        let password =
            Password::parse(key.open(&sealed, &what)?).ok_or_else(|| Error::CorruptCatalog {
                field: "tenants.role_secret",
                value: what.clone(),
            })?;
        Ok((role, password))
    }
}

/// Opens a connection at `url` (a storage of `place`) for `owner`: a server that does not
/// answer in time is named; other failures are storage errors.
pub(crate) async fn connect_as_admin(
    place: &Place,
    owner: &str,
    url: &str,
) -> Result<AnyConnection> {
    engine::connect(url, &place.timeouts())
        .await
        .map_err(|e| match e {
            ConnectError::TimedOut(after) => place.timed_out(after),
            ConnectError::Failed(source) => Error::storage(owner, "connect to its storage")(source),
        })
}
