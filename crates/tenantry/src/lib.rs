//! Tenantry: the multi-tenant database layer for Rust SaaS backends.
//!
//! A [`Catalog`] records every tenant, the server it lives on and its state; tenant migration
//! sets (in sqlx-cli's file format) are rolled out over the fleet, one lock per tenant; and a
//! tenant only becomes `active` once its storage is proven complete.
//!
//! ```no_run
//! # async fn demo() -> tenantry::Result<()> {
//! use tenantry::{Config, NewTenant, Tenantry};
//!
//! let tenantry = Tenantry::open_or_create(Config::default()).await?;
//! let acme = tenantry
//!     .create_tenant(NewTenant { slug: "acme".into(), ..NewTenant::default() })
//!     .await?;
//! assert_eq!(acme.status, tenantry::Status::Active);
//! let migrations = tenantry.migrations()?;
//! let report = tenantry.migrate_all(&migrations, &|_| {}).await?;
//! assert!(report.is_success());
//! # Ok(())
//! # }
//! ```

mod admin;
pub mod adopt;
pub mod apikeys;
pub mod archive;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod example;
pub mod ident;
pub mod identity;
mod keyring;
pub mod labels;
pub mod lifecycle;
pub mod migrate;
pub mod moves;
mod operation;
pub mod placement;
mod purge;
pub mod rotation;
pub mod routing;
pub mod secrets;
pub mod session;
pub mod spares;
pub mod storage;

pub use adopt::split::{Split, SplitDatabase, SplitTenant};
pub use adopt::{AdoptTenant, Adopted, BaselineSource};
pub use apikeys::{ApiKey, MintedKey, NewApiKey, Scope};
pub use archive::{ImportTenant, Imported, Manifest};
pub use backup::{Backup, BackupMethod};
pub use catalog::{Catalog, Event, Server, SharedPool, Status, Strategy, Tenant};
pub use catalog::{ItemState, Rollout, RolloutItem, RolloutState};
pub use config::{Config, Settings};
pub use engine::Engine;
pub use error::{BusyLimit, Error, Result};
pub use ident::{KeyName, ServerName, Slug, StorageName, TenantId};
pub use keyring::KeySetup;
pub use lifecycle::{NewTenant, RenameTenant};
pub use migrate::RevertTarget;
pub use migrate::kinds::*;
pub use migrate::{
    Budget, FleetReport, MigrationSet, MigrationSummary, OrderKey, Outcome, RolloutOptions,
    RolloutRun, Selection, StatusRow, StopReason, TenantMigrations, TenantReport, VerifyReport,
    VerifyRequest,
};
pub use moves::drain::{Drain, DrainStep, Drained};
pub use moves::{MoveStep, MoveTenant, Moved};
pub use session::{ServerPoolStats, TenantPool, TenantTx};

use storage::Place;

/// The entry point: a configuration and an open catalog.
#[derive(Debug, Clone)]
pub struct Tenantry {
    config: Config,
    catalog: Catalog,
    /// Every application connection of this `Tenantry` and its clones.
    pools: session::PoolManager,
    /// Shared pools whose setup this process completed.
    ready_pools: storage::shared::ReadyPools,
    /// What the catalog says about the master key, read at open.
    key_record: keyring::SharedRecord,
    /// The secret lock names derive from (see [`Tenantry::load_lock_key`]).
    lock_key: keyring::SharedLockKey,
    /// Versions this process knows the catalog records as applied by the fleet (the first
    /// checksum recorded for a version stays, so this only grows).
    fleet_seen: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<i64>>>,
    /// Administrative connections kept between spare claims (schema strategy: one per
    /// server), so a claim opens none.
    kept: std::sync::Arc<storage::Sessions>,
}

impl Tenantry {
    /// Opens the configured catalog, applying its pending catalog migrations. A missing
    /// SQLite catalog file is an error ([`Error::CatalogMissing`]); see
    /// [`Tenantry::open_or_create`].
    pub async fn open(config: Config) -> Result<Tenantry> {
        let catalog = Catalog::open(&config.catalog_url(), &config.timeouts()).await?;
        Tenantry::with(config, catalog).await
    }

    /// Opens the configured catalog, creating an SQLite catalog file (and the data directory)
    /// that does not exist yet.
    pub async fn open_or_create(config: Config) -> Result<Tenantry> {
        let catalog = Catalog::open_or_create(&config.catalog_url(), &config.timeouts()).await?;
        Tenantry::with(config, catalog).await
    }

    async fn with(config: Config, catalog: Catalog) -> Result<Tenantry> {
        let record = keyring::read_record(&catalog, &config).await?;
        let pools = session::PoolManager::new(&config);
        let tenantry = Tenantry {
            config,
            catalog,
            pools,
            ready_pools: storage::shared::ReadyPools::default(),
            fleet_seen: Default::default(),
            kept: std::sync::Arc::new(storage::Sessions::lasting()),
            key_record: std::sync::Arc::new(std::sync::Mutex::new(record)),
            lock_key: Default::default(),
        };
        // Without a master key at hand nothing is locked or decrypted; what needs one says so.
        if crate::crypto::MasterKey::find(&tenantry.config.master_key_file)
            .is_ok_and(|k| k.is_some())
            && let Err(e) = tenantry.load_lock_key().await
        {
            tracing::debug!(error = %e, "the lock key is not available");
        }
        Ok(tenantry)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Loads the configured tenant migration directory.
    pub fn migrations(&self) -> Result<MigrationSet> {
        MigrationSet::load(&self.config.migrations_dir)
    }

    /// Records a new server after checking that it answers.
    pub async fn add_server(&self, name: &str, url: &str) -> Result<Server> {
        let name = ServerName::new(name)?;
        engine::Engine::from_url(url)?;
        let probe = Server {
            name: name.clone(),
            engine: engine::Engine::from_url(url)?,
            url: url.to_owned(),
            pooler_url: None,
            capacity: None,
            region: None,
            labels: Vec::new(),
            created_at: String::new(),
        };
        Place::of(&probe, &self.config).check_reachable().await?;
        let server = self.catalog.insert_server(&name, url).await?;
        let detail = Some(engine::redact_url(url));
        self.audited(None, "server.add", Some(format!("server:{name}")), detail)
            .await;
        Ok(server)
    }

    /// Checks that server `name` answers within the connect timeout.
    pub async fn check_server(&self, name: &str) -> Result<()> {
        let server = self.catalog.server(name).await?;
        Place::of(&server, &self.config).check_reachable().await
    }

    /// Sets (or clears) the transaction-mode pooler (PgBouncer) a PostgreSQL server's
    /// application connections go through, after checking it accepts connections within the
    /// connect timeout. Only the pooler's host and port are used: tenants log in through it
    /// with their own roles and databases. Administrative work keeps going to the server.
    pub async fn set_server_pooler(&self, name: &str, pooler_url: Option<&str>) -> Result<Server> {
        let server = self.catalog.server(name).await?;
        if let Some(pooler) = pooler_url {
            let refuse = |reason: String| Error::UnsupportedUrl {
                url: engine::redact_url(pooler),
                reason,
            };
            if server.engine != engine::Engine::Postgres
                || engine::Engine::from_url(pooler)? != engine::Engine::Postgres
            {
                return Err(refuse(
                    "a pooler goes in front of a PostgreSQL server, with a postgres:// URL".into(),
                ));
            }
            let parsed = url::Url::parse(pooler).map_err(|e| refuse(e.to_string()))?;
            let host = parsed
                .host_str()
                .ok_or_else(|| refuse("it names no host".into()))?
                .to_owned();
            let port = parsed.port().unwrap_or(5432);
            let wait = self.config.connect_timeout;
            match tokio::time::timeout(wait, tokio::net::TcpStream::connect((host.as_str(), port)))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(refuse(format!("{host}:{port} refused: {e}"))),
                Err(_) => {
                    return Err(refuse(format!(
                        "{host}:{port} did not accept a connection within {wait:?}"
                    )));
                }
            }
        }
        let server = self.catalog.set_pooler_url(name, pooler_url).await?;
        let detail = pooler_url.map(engine::redact_url);
        self.audited(
            None,
            "server.pooler",
            Some(format!("server:{name}")),
            detail,
        )
        .await;
        Ok(server)
    }

    /// Opens an administrative connection to a tenant's storage, as the migration runner
    /// uses it: for inspection, tests and tooling.
    ///
    /// # Warning
    /// This connection has the server's administrative rights, not the tenant's. Serve
    /// application requests through a tenant-scoped connection instead.
    pub async fn connect_storage(&self, tenant: &Tenant) -> Result<sqlx::AnyConnection> {
        Ok(self.migration_target(tenant).await?.conn)
    }

    /// Removes a server no live tenant is placed on, with its shared pool if it has one
    /// (its database and role), and the records of its deleted tenants. From the moment the
    /// removal starts, the server takes no new tenant.
    pub async fn remove_server(&self, name: &str) -> Result<()> {
        let server = self.catalog.server(name).await?;
        self.catalog.begin_server_removal(name).await?;
        self.pools.forget_server(name).await;
        if let Some(pool) = self.catalog.shared_pool(name).await? {
            let place = Place::of(&server, &self.config);
            storage::shared::drop_pool(&place, &pool).await?;
            self.ready_pools.remove(pool.id);
            self.catalog.delete_shared_pool(pool.id).await?;
        }
        self.catalog.remove_server(name).await?;
        self.audited(None, "server.remove", Some(format!("server:{name}")), None)
            .await;
        Ok(())
    }

    /// Where a tenant's storage lives.
    pub(crate) async fn place(&self, tenant: &Tenant) -> Result<Place> {
        let server = self.catalog.server(tenant.server.as_str()).await?;
        Ok(Place::of(&server, &self.config))
    }
}

impl Tenantry {
    /// The secret a unit's lock name derives from (`tenant:<id>`, `pool:<id>`, …): 64 hex
    /// digits from the catalog's sealed lock key, so a tenant, which can see ids and role
    /// names, cannot compute another's lock, and a key rotation does not move any lock.
    pub(crate) fn lock_secret(&self, unit: &str) -> Result<String> {
        let key = self.lock_key()?;
        Ok(crypto::hmac_hex(
            key.as_bytes(),
            &format!("tenantry lock: {unit}"),
        ))
    }
}
