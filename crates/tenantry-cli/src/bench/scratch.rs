//! The throwaway catalog both benches run on: a temp directory with a master key, the
//! bundled example migrations, a fresh SQLite catalog, and the server tenants go to (the
//! local SQLite server, or one added from `--server`).

use std::path::{Path, PathBuf};

use tenantry::crypto::MasterKey;
use tenantry::{Engine, Settings, Tenantry};

/// The server name a `--server` URL is registered under.
pub(super) const SERVER: &str = "bench";

/// A fresh directory name under the system's temp directory (not created).
pub(super) fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "tenantry-bench-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    ))
}

pub(super) struct Scratch {
    pub tenantry: Tenantry,
    /// `local`, or [`SERVER`].
    pub server: String,
    pub engine: Engine,
    /// The `--server` URL, if one was given.
    pub server_url: Option<String>,
    pub migrations: PathBuf,
}

/// Opens a catalog in `dir` with `settings` (data directory and migrations filled in) and
/// registers `server_url`, if given.
pub(super) async fn open(
    dir: &Path,
    settings: Settings,
    server_url: Option<String>,
) -> anyhow::Result<Scratch> {
    let migrations = dir.join("migrations");
    tenantry::example::write_tenant_migrations(&migrations)?;
    let config = Settings {
        data_dir: Some(dir.join("data")),
        migrations: Some(migrations.clone()),
        ..settings
    }
    .try_resolve()?;
    MasterKey::generate_if_missing(&config.master_key_file)?;
    let tenantry = Tenantry::open_or_create(config).await?;
    let server = match &server_url {
        Some(url) => {
            tenantry.add_server(SERVER, url).await?;
            SERVER.to_owned()
        }
        None => "local".to_owned(),
    };
    let engine = tenantry.catalog().server(&server).await?.engine;
    Ok(Scratch {
        tenantry,
        server,
        engine,
        server_url,
        migrations,
    })
}
