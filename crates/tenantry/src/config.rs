//! Configuration: defaults, the optional `tenantry.toml`, and overrides from the environment
//! or the command line, merged in that order of increasing precedence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::Strategy;
use crate::engine::Timeouts;
use crate::error::{Error, Result};
use crate::routing::{RoutingConfig, RoutingSettings};

pub const DEFAULT_DATA_DIR: &str = "tenantry-data";
pub const DEFAULT_MIGRATIONS_DIR: &str = "migrations/tenant";
pub const DEFAULT_SERVER: &str = "local";
pub const CONFIG_FILE: &str = "tenantry.toml";
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_STATEMENT_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_POOL_MAX_CONNECTIONS: u32 = 5;
pub const DEFAULT_POOL_MAX_PER_SERVER: u32 = 100;
pub const DEFAULT_POOL_ACQUIRE_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_POOL_IDLE_TIMEOUT_SECS: u64 = 60;

/// Where a tenant created without a server goes ([`crate::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The default server.
    DefaultServer,
    /// The server with the fewest tenants that fits.
    FewestTenants,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded catalog and the `local` server's tenant files live.
    pub data_dir: PathBuf,
    /// The catalog's URL; `None` means the SQLite file `<data_dir>/catalog.db`.
    pub catalog_url: Option<String>,
    /// The tenant migrations directory, in sqlx-cli's file format.
    pub migrations_dir: PathBuf,
    /// The server new tenants go to when none is named.
    pub default_server: String,
    /// How many tenants a fleet migration works on at once.
    pub concurrency: usize,
    /// How long a runner waits for a tenant another runner holds before leaving it to them.
    pub lock_wait: Duration,
    /// The strategy new tenants get when none is named.
    pub default_strategy: Strategy,
    /// Where the master key lives when `TENANTRY_MASTER_KEY` is not set.
    pub master_key_file: PathBuf,
    /// Where a tenant created without a server goes.
    pub placement: Placement,
    /// Where `tenant backup` writes (default `<data_dir>/backups`): one directory per
    /// tenant id, one per backup.
    pub backup_dir: PathBuf,
    /// The column that carries the tenant id in shared tables.
    pub tenant_column: String,
    /// Shared tables without a tenant column, readable by every tenant.
    pub shared_global_tables: Vec<String>,
    /// How many connections (units of work) one tenant holds at once (default 5). A shared
    /// tenant's units run on its server's shared connections; this bounds how many of them
    /// it uses at once.
    pub pool_max_connections: u32,
    /// How many application connections this process keeps open to one server at most, idle
    /// or in use, over all its tenants (default 100; for SQLite, open files of one
    /// directory).
    pub pool_max_per_server: u32,
    /// How long a unit of work waits for a connection when its tenant or its server is at
    /// its maximum before [`crate::Error::Busy`] (default 5 s).
    pub pool_acquire_timeout: Duration,
    /// How long an idle application connection stays open (default 60 s).
    pub pool_idle_timeout: Duration,
    /// How long to wait for a server to accept a connection, log in and answer (default
    /// 10 s): every connection Tenantry opens, catalog and tenant pools included. A server
    /// that accepts TCP connections and never answers is reported after this long.
    pub connect_timeout: Duration,
    /// How long the server lets each of Tenantry's own statements run on the catalog and on
    /// administrative connections (default 60 s; `None`: no limit).
    pub statement_timeout: Option<Duration>,
    /// The same for the connection that applies tenant migrations (and `connect_storage`,
    /// `tenantry sql --admin`): none by default, since a migration that rebuilds a large
    /// table may legitimately run for hours.
    pub migration_statement_timeout: Option<Duration>,
    /// How requests are routed to tenants (`[routing]`).
    pub routing: RoutingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Settings::default().resolve()
    }
}

impl Config {
    /// Timeouts for the catalog and administrative connections.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            statement: self.statement_timeout,
        }
    }

    /// Timeouts for the connections that apply migrations.
    pub fn migration_timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            statement: self.migration_statement_timeout,
        }
    }

    /// The catalog URL in force.
    pub fn catalog_url(&self) -> String {
        match &self.catalog_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("catalog.db").display()),
        }
    }
}

/// One layer of settings, every field optional: the shape of `tenantry.toml`, and of the
/// command line's and environment's overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub catalog: Option<String>,
    pub migrations: Option<PathBuf>,
    pub default_server: Option<String>,
    pub concurrency: Option<usize>,
    pub lock_wait_secs: Option<u64>,
    pub default_strategy: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub backup_dir: Option<PathBuf>,
    /// `default_server` (the default) or `fewest_tenants`.
    pub placement: Option<String>,
    pub tenant_column: Option<String>,
    pub shared_global_tables: Option<Vec<String>>,
    pub pool_max_connections: Option<u32>,
    pub pool_max_per_server: Option<u32>,
    pub pool_acquire_timeout_ms: Option<u64>,
    pub pool_idle_timeout_secs: Option<u64>,
    pub connect_timeout_secs: Option<u64>,
    /// 0: no limit.
    pub statement_timeout_secs: Option<u64>,
    /// 0: no limit.
    pub migration_statement_timeout_secs: Option<u64>,
    /// The `[routing]` table.
    pub routing: Option<RoutingSettings>,
}

impl Settings {
    /// Reads a settings file that must exist: one named explicitly (`--config`,
    /// `TENANTRY_CONFIG`), where a missing file is a mistake, not an empty layer.
    pub fn from_file(path: &Path) -> Result<Settings> {
        Self::from_file_if_present(path)?.ok_or_else(|| Error::Config {
            path: path.to_owned(),
            reason: "no such file".into(),
        })
    }

    /// Reads a settings file if it exists (`None` if not): the implicit `./tenantry.toml`.
    pub fn from_file_if_present(path: &Path) -> Result<Option<Settings>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Config {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        toml::from_str(&text).map(Some).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// This layer, with gaps filled from `lower`.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            data_dir: self.data_dir.or(lower.data_dir),
            catalog: self.catalog.or(lower.catalog),
            migrations: self.migrations.or(lower.migrations),
            default_server: self.default_server.or(lower.default_server),
            concurrency: self.concurrency.or(lower.concurrency),
            lock_wait_secs: self.lock_wait_secs.or(lower.lock_wait_secs),
            default_strategy: self.default_strategy.or(lower.default_strategy),
            master_key_file: self.master_key_file.or(lower.master_key_file),
            backup_dir: self.backup_dir.or(lower.backup_dir),
            placement: self.placement.or(lower.placement),
            tenant_column: self.tenant_column.or(lower.tenant_column),
            shared_global_tables: self.shared_global_tables.or(lower.shared_global_tables),
            pool_max_connections: self.pool_max_connections.or(lower.pool_max_connections),
            pool_max_per_server: self.pool_max_per_server.or(lower.pool_max_per_server),
            pool_acquire_timeout_ms: self
                .pool_acquire_timeout_ms
                .or(lower.pool_acquire_timeout_ms),
            pool_idle_timeout_secs: self.pool_idle_timeout_secs.or(lower.pool_idle_timeout_secs),
            connect_timeout_secs: self.connect_timeout_secs.or(lower.connect_timeout_secs),
            statement_timeout_secs: self.statement_timeout_secs.or(lower.statement_timeout_secs),
            migration_statement_timeout_secs: self
                .migration_statement_timeout_secs
                .or(lower.migration_statement_timeout_secs),
            routing: self.routing.or(lower.routing),
        }
    }

    /// Fills what is still missing with the defaults; an unknown strategy is an error.
    pub fn try_resolve(self) -> Result<Config> {
        let default_strategy = match &self.default_strategy {
            Some(s) => s.parse()?,
            None => Strategy::Database,
        };
        let routing = match self.routing.clone() {
            Some(routing) => Some(routing.resolve().map_err(|reason| Error::Config {
                path: CONFIG_FILE.into(),
                reason: format!("[routing]: {reason}"),
            })?),
            None => None,
        };
        if let Some(placement) = self.placement.as_deref()
            && !matches!(placement, "default_server" | "fewest_tenants")
        {
            return Err(Error::Config {
                path: CONFIG_FILE.into(),
                reason: format!(
                    "placement = {placement:?}: use \"default_server\" or \"fewest_tenants\""
                ),
            });
        }
        let mut config = self.resolve();
        config.default_strategy = default_strategy;
        if let Some(routing) = routing {
            config.routing = routing;
        }
        Ok(config)
    }

    /// Fills what is still missing with the defaults (an unknown strategy falls back to
    /// `database`; use [`Settings::try_resolve`] to refuse it).
    pub fn resolve(self) -> Config {
        let data_dir: PathBuf = self.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        Config {
            master_key_file: self
                .master_key_file
                .unwrap_or_else(|| data_dir.join("master.key")),
            backup_dir: self.backup_dir.unwrap_or_else(|| data_dir.join("backups")),
            placement: match self.placement.as_deref() {
                Some("fewest_tenants") => Placement::FewestTenants,
                _ => Placement::DefaultServer,
            },
            default_strategy: self
                .default_strategy
                .and_then(|s| s.parse().ok())
                .unwrap_or(Strategy::Database),
            tenant_column: self.tenant_column.unwrap_or_else(|| "tenant_id".to_owned()),
            shared_global_tables: self.shared_global_tables.unwrap_or_default(),
            pool_max_connections: self
                .pool_max_connections
                .unwrap_or(DEFAULT_POOL_MAX_CONNECTIONS)
                .max(1),
            pool_max_per_server: self
                .pool_max_per_server
                .unwrap_or(DEFAULT_POOL_MAX_PER_SERVER)
                .max(1),
            pool_acquire_timeout: Duration::from_millis(
                self.pool_acquire_timeout_ms
                    .unwrap_or(DEFAULT_POOL_ACQUIRE_TIMEOUT_MS),
            ),
            pool_idle_timeout: Duration::from_secs(
                self.pool_idle_timeout_secs
                    .unwrap_or(DEFAULT_POOL_IDLE_TIMEOUT_SECS)
                    .max(1),
            ),
            data_dir,
            catalog_url: self.catalog.filter(|s| !s.is_empty()),
            migrations_dir: self
                .migrations
                .unwrap_or_else(|| DEFAULT_MIGRATIONS_DIR.into()),
            default_server: self
                .default_server
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
            concurrency: self.concurrency.unwrap_or(4).max(1),
            lock_wait: Duration::from_secs(self.lock_wait_secs.unwrap_or(60)),
            connect_timeout: Duration::from_secs(
                self.connect_timeout_secs
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS)
                    .max(1),
            ),
            statement_timeout: limit(
                self.statement_timeout_secs
                    .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_SECS),
            ),
            migration_statement_timeout: limit(self.migration_statement_timeout_secs.unwrap_or(0)),
            routing: self
                .routing
                .and_then(|r| r.resolve().ok())
                .unwrap_or_default(),
        }
    }
}

/// A statement timeout in seconds; 0 means none.
fn limit(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_win_and_defaults_fill_gaps() {
        let file = Settings {
            catalog: Some("postgres://file".into()),
            concurrency: Some(8),
            ..Settings::default()
        };
        let cli = Settings {
            catalog: Some("postgres://cli".into()),
            ..Settings::default()
        };
        let config = cli.over(file).resolve();
        assert_eq!(config.catalog_url(), "postgres://cli");
        assert_eq!(config.concurrency, 8);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.statement_timeout, Some(Duration::from_secs(60)));
        assert_eq!(config.migration_statement_timeout, None);
        assert_eq!(config.pool_max_connections, 5);
        assert_eq!(config.pool_max_per_server, 100);
        assert_eq!(config.pool_acquire_timeout, Duration::from_secs(5));
        assert_eq!(config.pool_idle_timeout, Duration::from_secs(60));
        let unlimited = Settings {
            statement_timeout_secs: Some(0),
            ..Settings::default()
        }
        .resolve();
        assert_eq!(unlimited.statement_timeout, None);
    }

    #[test]
    fn pool_settings_are_read_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &path,
            "pool_max_per_server = 7\npool_acquire_timeout_ms = 250\npool_idle_timeout_secs = 3\n",
        )
        .expect("write");
        let config = Settings::from_file(&path).expect("read").resolve();
        assert_eq!(config.pool_max_per_server, 7);
        assert_eq!(config.pool_acquire_timeout, Duration::from_millis(250));
        assert_eq!(config.pool_idle_timeout, Duration::from_secs(3));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, "catalogue = 'x'\n").expect("write");
        let err = Settings::from_file(&path).expect_err("must refuse");
        assert!(err.to_string().contains("catalogue"), "{err}");
    }

    #[test]
    fn a_named_file_must_exist_and_the_implicit_one_may_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nosuch.toml");
        let err = Settings::from_file(&path).expect_err("must refuse");
        assert!(
            err.to_string().contains("nosuch.toml: no such file"),
            "{err}"
        );
        assert!(matches!(Settings::from_file_if_present(&path), Ok(None)));
    }
}
