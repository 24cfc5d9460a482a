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
pub mod sessions;
pub mod shared;
mod strategy;

pub use sessions::{Reuse, Sessions};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use crate::Tenantry;
use crate::catalog::{Server, Strategy, Tenant};
use crate::config::Config;
use crate::crypto::Password;
use crate::engine::{self, ConnectError, Engine, HeldLock, LockName, Timeouts, postgres};
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
        /// A transaction-mode pooler application connections go through, if any.
        pooler_url: Option<String>,
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
                pooler_url: server.pooler_url.clone(),
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
        let dialect = self.engine().dialect();
        if dialect.strategies().contains(&strategy) {
            return Ok(());
        }
        Err(Error::StrategyUnsupported {
            strategy: strategy.to_string(),
            engine: self.engine().to_string(),
            server: server.to_owned(),
            supported: dialect.offers(),
        })
    }

    /// The server's administrative URL.
    pub fn url(&self) -> Result<&str> {
        match self {
            Place::Server { url, .. } => Ok(url),
            Place::SqliteDir(dir) => Err(Error::UnsupportedUrl {
                url: dir.display().to_string(),
                reason: "an SQLite directory has no server connection".into(),
            }),
        }
    }

    /// The URL application connections log in through (credentials and database are put in
    /// by the session): the server's transaction-mode pooler (PgBouncer) when one is set
    /// (`tenantry server pooler`), the server itself otherwise. The one function the session
    /// asks.
    pub fn serve_url(&self) -> Result<&str> {
        match self {
            Place::Server {
                pooler_url: Some(pooler),
                ..
            } => Ok(pooler),
            _ => self.url(),
        }
    }

    /// Whether [`Place::serve_url`] leads through a transaction-mode pooler: each unit of
    /// work then drops every prepared statement at its start, so sqlx's named statements
    /// work whichever server connection the pooler lends it, and no login carries session
    /// options (a pooler refuses them; units set what they need transaction-locally).
    pub fn behind_pooler(&self) -> bool {
        matches!(
            self,
            Place::Server {
                pooler_url: Some(_),
                ..
            }
        )
    }

    /// The directory of an SQLite server.
    pub fn dir(&self) -> Result<&std::path::Path> {
        match self {
            Place::SqliteDir(dir) => Ok(dir),
            Place::Server { name, .. } => Err(Error::UnsupportedUrl {
                url: name.clone(),
                reason: "a database server has no directory of tenant files".into(),
            }),
        }
    }
}

/// How a migration run is locked: a lock name, taken the way its engine takes locks.
#[derive(Debug, Clone)]
pub struct LockSpec {
    engine: Engine,
    name: LockName,
}

/// A held lock. Dropping the connection or the process releases it too.
#[derive(Debug)]
pub struct TenantLock {
    engine: Engine,
    held: HeldLock,
}

impl LockSpec {
    pub fn new(engine: Engine, name: LockName) -> LockSpec {
        LockSpec { engine, name }
    }

    /// The lock of a unit (`tenant:<id>`, `pool:<id>`) on a server engine: its name derives
    /// from the master key, so a tenant, which can see ids and role names, cannot compute it.
    pub(crate) fn for_unit(t: &Tenantry, engine: Engine, unit: &str) -> Result<LockSpec> {
        let name = engine
            .dialect()
            .lock_name(t, unit, std::path::Path::new(""))?;
        Ok(LockSpec::new(engine, name))
    }

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
        let dialect = self.engine.dialect();
        loop {
            let taken = dialect.try_lock(owner, conn, &self.name).await?;
            if let Some(held) = taken {
                return Ok(Some(TenantLock {
                    engine: self.engine,
                    held,
                }));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl TenantLock {
    /// Releases the lock on the connection that took it.
    pub async fn release(self, owner: &str, conn: &mut AnyConnection) {
        if let Err(e) = self.engine.dialect().unlock(conn, self.held).await {
            // The lock goes with the connection, which the caller closes.
            tracing::warn!(owner, error = %e, "unlock failed");
        }
    }
}

/// What runs inside each migration's transaction: before its SQL, and after it, before it
/// commits.
#[derive(Debug, Clone)]
pub enum Hook {
    None,
    /// PostgreSQL: give the tenant's role row access to the tables the migration creates
    /// (default privileges, set before), never to the ledger (revoked after).
    Grant {
        schema: SqlName,
        role: RoleName,
    },
    /// PostgreSQL shared pool: protect every tenant table with row-level security.
    SharedRls(shared::RlsPolicy),
}

impl Hook {
    /// Before the migration's SQL.
    pub async fn before(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        match self {
            Hook::Grant { schema, role } => postgres::grant_by_default(conn, schema, role)
                .await
                .map_err(HookError::Sql),
            Hook::None | Hook::SharedRls(_) => Ok(()),
        }
    }

    /// Once, when existing storage is adopted: what each migration's grants give the
    /// tenant's role, given for the objects that were there before.
    pub async fn adopted(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        if let Hook::Grant { schema, role } = self {
            self.before(conn).await?;
            postgres::grant_existing(conn, schema, role)
                .await
                .map_err(HookError::Sql)?;
            self.after(conn).await?;
        }
        Ok(())
    }

    /// After the migration's SQL, before its ledger row.
    pub async fn after(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        match self {
            Hook::None => Ok(()),
            Hook::Grant { schema, role } => {
                let ledger = SqlName::new("table", crate::migrate::ledger::TABLE)
                    .map_err(HookError::Refused)?;
                postgres::revoke_ledger(conn, schema, role, &ledger)
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
    /// How its connection may be handed to the next unit of a rollout (`None`: closed).
    pub reuse: Option<Reuse>,
}

impl Tenantry {
    /// Creates (or completes) a tenant's storage and login role. Idempotent. `repair`: set
    /// up again what the tenant shares with others too.
    pub(crate) async fn provision_storage(&self, tenant: &Tenant, repair: bool) -> Result<()> {
        let place = self.place(tenant).await?;
        tenant
            .strategy
            .ops()
            .provision(self, &place, tenant, repair)
            .await?;
        if tenant.storage.is_adopted() {
            self.grant_existing(tenant).await?;
        }
        Ok(())
    }

    /// An adopted storage's objects from before opened to the tenant's role (recorded by
    /// provisioning: read back).
    async fn grant_existing(&self, tenant: &Tenant) -> Result<()> {
        let tenant = self.catalog.tenant_by_id(tenant.id).await?;
        let mut target = self.migration_target(&tenant).await?;
        let result = target.hook.adopted(&mut target.conn).await;
        let _ = sqlx::Connection::close(target.conn).await;
        result.map_err(|e| match e {
            HookError::Sql(e) => {
                Error::storage(tenant.slug.as_str(), "grant its role the adopted tables")(e)
            }
            HookError::Refused(e) => e,
        })
    }

    /// The migration target of a tenant: its own storage, or its server's shared pool.
    /// Its connection has the migration statement timeout (none by default): migrations
    /// may legitimately run long.
    pub(crate) async fn migration_target(&self, tenant: &Tenant) -> Result<MigrationTarget> {
        self.migration_target_in(tenant, None).await
    }

    /// [`Tenantry::migration_target`], on a connection `sessions` keeps for the tenant's
    /// strategy and server if there is one.
    pub(crate) async fn migration_target_in(
        &self,
        tenant: &Tenant,
        sessions: Option<&Sessions>,
    ) -> Result<MigrationTarget> {
        let server = tenant.server.as_str();
        let place = match sessions.and_then(|s| s.place(server)) {
            Some(place) => place,
            None => {
                let place = self.place(tenant).await?;
                if let Some(sessions) = sessions {
                    sessions.keep_place(server, &place);
                }
                place
            }
        };
        let migrating = place.with_statement_timeout(self.config.migration_statement_timeout);
        let ops = tenant.strategy.ops();
        let reused = sessions.and_then(|s| ops.session_key(tenant).and_then(|key| s.take(&key)));
        ops.target(self, &migrating, tenant, reused).await
    }

    /// Removes a tenant's storage and role (shared: its rows). Idempotent.
    pub(crate) async fn drop_storage(&self, tenant: &Tenant) -> Result<()> {
        let place = self.place(tenant).await?;
        tenant.strategy.ops().drop(self, &place, tenant).await
    }

    /// Lets the tenant's application connections in (`allow`), or shuts them out in every
    /// process at once, ending those already open: its login role may log in or not
    /// (database, schema), its context verifies or not (shared), a revocation marker beside
    /// its file is absent or present (SQLite).
    pub(crate) async fn set_access(&self, tenant: &Tenant, allow: bool) -> Result<()> {
        let place = self.place(tenant).await?;
        tenant
            .strategy
            .ops()
            .set_access(self, &place, tenant, allow)
            .await
    }

    /// Whether anything of the tenant's storage is left (shared: any of its rows).
    pub(crate) async fn storage_exists(&self, tenant: &Tenant) -> Result<bool> {
        let place = self.place(tenant).await?;
        tenant.strategy.ops().exists(self, &place, tenant).await
    }

    /// The tenant role's password: the one sealed in the catalog, or for a tenant without
    /// one, a fresh password sealed into the catalog first. Provisioning sets the role to
    /// this password, so it also restores a password changed behind Tenantry's back.
    pub(crate) async fn issue_credentials(&self, tenant: &Tenant) -> Result<(RoleName, Password)> {
        let role = tenant.id.role_name();
        let what = format!("tenant {:?}", tenant.slug.as_str());
        let sealed = match &tenant.role_secret {
            Some(sealed) => sealed.clone(),
            None => {
                let fresh = self
                    .sealing_key()
                    .await?
                    .seal(Password::generate().as_str());
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
        let password = Password::parse(self.open_sealed(&sealed, &what)?).ok_or_else(|| {
            Error::CorruptCatalog {
                field: "tenants.role_secret",
                value: what.clone(),
            }
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
