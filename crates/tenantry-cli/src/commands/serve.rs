//! `tenantry serve`: the admin API on the catalog this configuration opens.

use std::process::ExitCode;

use anyhow::Context;
use tenantry::Tenantry;

pub async fn run(tenantry: &Tenantry, listen: &str) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let local = listener
        .local_addr()
        .context("read the listening address")?;
    errln!("tenantry serve: listening on http://{local} (Ctrl-C to stop)");
    tenantry_server::serve(
        tenantry.clone(),
        listener,
        tenantry_server::Options::default(),
        shutdown(),
    )
    .await
    .context("serve the admin API")?;
    errln!("tenantry serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
