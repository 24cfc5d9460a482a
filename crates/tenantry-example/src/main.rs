//! `docs-service`: the example document service, on the Tenantry catalog and `[routing]`
//! configuration of the current directory's `tenantry.toml` (or `--config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tenantry::{Settings, Tenantry};

/// Serve the example document service.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Tenantry's configuration file [default: ./tenantry.toml if present]
    #[arg(long, env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded catalog [default: tenantry-data]
    #[arg(long, env = "TENANTRY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Catalog URL [default: the SQLite file in the data directory]
    #[arg(long, env = "TENANTRY_CATALOG")]
    catalog: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::from_file_if_present(std::path::Path::new("tenantry.toml"))?
            .unwrap_or_default(),
    };
    let config = Settings {
        data_dir: args.data_dir,
        catalog: args.catalog,
        ..Settings::default()
    }
    .over(file)
    .try_resolve()?;
    let tenantry = Tenantry::open(config).await.context("open the catalog")?;
    let app = tenantry_example::app_for(&tenantry)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(address = %args.listen, "docs-service listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serve")?;
    Ok(())
}
