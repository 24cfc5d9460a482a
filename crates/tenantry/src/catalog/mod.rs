//! The catalog: the control-plane database and the single source of truth for every tenant's
//! state. It runs on SQLite (embedded default) or PostgreSQL through sqlx's `Any` driver, with
//! its own built-in migrations applied on open.
//!
//! Invariant: only this module writes the catalog's tables, and a tenant's status changes only
//! through [`Catalog::transition`], a compare-and-set on the current status.

use std::path::Path;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::engine::{self, Engine, Timeouts};
use crate::error::{Error, Result};

mod events;
mod fleet;
mod pools;
mod schema;
mod servers;
mod settings;
mod tenants;

pub use events::{Event, NewEvent};
pub use fleet::{FleetMigration, RunRecord};
pub use pools::SharedPool;
pub use servers::Server;
pub use settings::MASTER_KEY_FINGERPRINT;
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
        Self::connect(url, timeouts, Missing::Refuse).await
    }

    /// Like [`Catalog::open`], but creates an SQLite catalog file (and its directory) that
    /// does not exist yet. For `tenantry init` and programs that set up their own catalog.
    pub async fn open_or_create(url: &str, timeouts: &Timeouts) -> Result<Catalog> {
        Self::connect(url, timeouts, Missing::Create).await
    }

    async fn connect(url: &str, timeouts: &Timeouts, missing: Missing) -> Result<Catalog> {
        let engine = Engine::from_url(url)?;
        let url = match engine {
            Engine::Sqlite => prepare_sqlite_url(url, missing)?,
            Engine::Postgres | Engine::Mysql => engine::driver_url(url).into_owned(),
        };
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
        if engine == Engine::Sqlite {
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&catalog.pool)
                .await
                .map_err(Error::catalog("enable write-ahead logging"))?;
        }
        schema::migrate(&catalog).await?;
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

/// What to do about an SQLite catalog file that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Refuse,
    Create,
}

fn prepare_sqlite_url(url: &str, missing: Missing) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(Error::UnsupportedUrl {
            url: url.to_owned(),
            reason: "the catalog needs a file path".into(),
        });
    }
    let mode = match missing {
        Missing::Refuse => {
            if !Path::new(path).exists() {
                return Err(Error::CatalogMissing { path: path.into() });
            }
            // The file exists: open it read-write, never create it (it may vanish meanwhile).
            "mode=rw"
        }
        Missing::Create => {
            if let Some(parent) = Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            "mode=rwc"
        }
    };
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        mode.to_owned()
    } else {
        format!("{query}&{mode}")
    };
    Ok(format!("sqlite://{path}?{query}"))
}
