//! The catalog: the control-plane database and the single source of truth for every tenant's
//! state. It runs on SQLite (embedded default) or PostgreSQL through sqlx's `Any` driver, with
//! its own built-in migrations applied on open.
//!
//! Invariant: only this module writes the catalog's tables, and a tenant's status changes only
//! through [`Catalog::transition`], a compare-and-set on the current status.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::engine::{self, Engine, Timeouts};
use crate::error::{Error, Result};

mod apikeys;
mod events;
mod fleet;
mod identity;
mod labels;
mod operations;
mod placement;
mod pools;
mod purge;
mod rollouts;
mod schema;
mod sealed;
mod secrets;
mod servers;
mod settings;
mod spares;
mod tenants;

pub(crate) use apikeys::ApiKeyRow;
pub use events::{AuditFilter, Event, GENESIS, NewEvent};
pub use fleet::{FleetMigration, LedgerState, RunRecord};
pub use identity::{Domain, Membership, User, UserStatus};
pub use operations::Operation;
pub use pools::SharedPool;
pub use rollouts::{
    Claimed, ItemResult, ItemState, PlannedItem, Progress, Rollout, RolloutItem, RolloutState,
    WaveCount,
};
pub use secrets::SecretInfo;
pub use servers::Server;
pub use settings::{LOCK_KEY, MASTER_KEY_FINGERPRINT, MASTER_KEY_ROTATING_TO};
pub use tenants::{Status, Strategy, Tenant};

/// A handle on the catalog database.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: AnyPool,
    engine: Engine,
}

impl Catalog {
    /// Connects to an existing catalog at `url` and applies any pending catalog migrations.
    /// An SQLite catalog file that does not exist is an error ([`Error::CatalogMissing`]):
    /// nothing is created, so a mistyped path cannot silently start an empty catalog.
    pub async fn open(url: &str, timeouts: &Timeouts) -> Result<Catalog> {
        Self::connect(url, timeouts, false).await
    }

    /// Like [`Catalog::open`], but creates an SQLite catalog file (and its directory) that
    /// does not exist yet. For `tenantry init` and programs that set up their own catalog.
    pub async fn open_or_create(url: &str, timeouts: &Timeouts) -> Result<Catalog> {
        Self::connect(url, timeouts, true).await
    }

    async fn connect(url: &str, timeouts: &Timeouts, create: bool) -> Result<Catalog> {
        let engine = Engine::from_url(url)?;
        let url = engine.dialect().catalog_url(url, create)?;
        sqlx::any::install_default_drivers();
        let statement = timeouts.statement;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeouts.connect)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    engine::set_statement_timeout(conn, engine, statement).await;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| match source {
                sqlx::Error::PoolTimedOut => Error::ServerTimedOut {
                    name: "catalog".into(),
                    url: engine::redact_url(&url),
                    after: timeouts.connect,
                },
                source => Error::ServerUnreachable {
                    name: "catalog".into(),
                    url: engine::redact_url(&url),
                    source,
                },
            })?;
        let catalog = Catalog { pool, engine };
        if let Some(setup) = engine.dialect().catalog_setup() {
            sqlx::raw_sql(setup)
                .execute(&catalog.pool)
                .await
                .map_err(Error::catalog("set the catalog up"))?;
        }
        // Another process's catalog migrations are waited for as long as one statement may run.
        let lock_wait = timeouts.statement.unwrap_or(Duration::from_secs(120));
        schema::migrate(&catalog, lock_wait).await?;
        Ok(catalog)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current time as the catalog stores it: RFC 3339, UTC, millisecond precision.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
