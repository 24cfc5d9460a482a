//! `tenantry bench route`: requests served over loopback HTTP through the tenant layer, on a
//! throwaway catalog.
//!
//! - One tenant: the same handler through [`tenantry_axum::TenantLayer`] and on a plain sqlx
//!   pool of the tenant's own database (with and without a transaction), compared; and the
//!   layer's resolution alone, the query on the plain pool.
//! - Many tenants: every request for a random tenant, through the layer, behind
//!   `pool_max_per_server`; the most connections the pool manager and the server saw, and
//!   the process's peak memory.
//!
//! Whatever happens, what the run created is removed: tenants (and the server's record) on
//! a `--server`, the temp directory always.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::HeaderValue;
use tenantry::routing::{Resolver, RoutingSettings};
use tenantry::{Engine, Settings, Strategy, Tenant, Tenantry};

use super::fleet::{self, Stop, timed};
use super::load::{self, Plan};
use super::plain::{Plain, PlainPool, PlainTarget};
use super::report::{Compare, Figures, print_tables};
use super::scratch::{self, Scratch};
use super::serve;
use super::stats::{peak_rss_mib, secs};
use super::watch::{self, Peaks, Probe};
use crate::cli::RouteArgs;
use crate::output;

/// Documents seeded into the one tenant of a comparison.
const ONE_TENANT_ROWS: u32 = 300;
/// Documents seeded into each tenant of a many-tenant run.
const MANY_TENANT_ROWS: u32 = 20;
/// Connections a server should keep free of the bench (administration, the watcher).
const HEADROOM: u32 = 5;

pub async fn run(args: RouteArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.tenants >= 1, "--tenants must be at least 1");
    anyhow::ensure!(args.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(args.duration >= 1, "--duration must be at least 1 second");
    anyhow::ensure!(args.cap >= 1, "--cap must be at least 1");
    let strategy: Strategy = args.strategy.parse()?;
    anyhow::ensure!(
        args.tenants > 1 || strategy == Strategy::Database,
        "one tenant is compared with a plain pool on its own database: use --strategy database, \
         or --tenants above 1"
    );
    let stop = Stop::default();
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                errln!(
                    "interrupted: stopping and removing what the bench created \
                     (interrupt again to leave it)"
                );
                stop.set();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                errln!("interrupted again: what the bench created is left in place");
                std::process::exit(130);
            }
        })
    };
    let dir = scratch::scratch_dir();
    let settings = Settings {
        pool_max_per_server: Some(args.cap),
        routing: Some(RoutingSettings {
            identifiers: Some(vec!["header".to_owned()]),
            ..RoutingSettings::default()
        }),
        ..Settings::default()
    };
    let result = match scratch::open(&dir, settings, args.server.clone()).await {
        Ok(scratch) => {
            let measured = measure(&scratch, &args, strategy, &stop).await;
            let cleanup = timed(clean_up(&scratch)).await;
            scratch.tenantry.catalog().close().await;
            match (measured, cleanup) {
                (Ok(mut figures), Ok(((), took))) => {
                    figures.cleanup_s = secs(took);
                    Ok(figures)
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    interrupt.abort();
    let figures = result?;
    if args.json {
        output::json(&figures)?;
    } else {
        print_tables(&figures)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    scratch: &Scratch,
    args: &RouteArgs,
    strategy: Strategy,
    stop: &Stop,
) -> anyhow::Result<Figures> {
    let t = &scratch.tenantry;
    let config = t.config();
    let one = args.tenants == 1;
    let mut probe = Probe::connect(
        scratch.engine,
        scratch.server_url.as_deref(),
        config.connect_timeout,
    )
    .await?;
    let server_max_connections = probe.server_limit().await?;
    if let Some(limit) = server_max_connections
        && args.cap + HEADROOM > limit
    {
        errln!(
            "warning: --cap {} leaves fewer than {HEADROOM} of the server's {limit} client \
             connections free; it may refuse logins (pick a lower --cap)",
            args.cap
        );
    }

    let (tenants, create_time) = timed(fleet::create(
        t,
        args.tenants,
        &scratch.server,
        strategy,
        stop,
    ))
    .await?;
    let rows = if one {
        ONE_TENANT_ROWS
    } else {
        MANY_TENANT_ROWS
    };
    let ((), seed_time) = timed(fleet::seed(t, &tenants, rows, stop)).await?;
    probe.count_roles(roles(t, &scratch.server, &tenants).await?);

    let resolver = Resolver::new(t)?;
    // A warm cache: every tenant looked up once, as a running service would have.
    for tenant in &tenants {
        resolver
            .directory()
            .tenant_by_name(tenant.slug.as_str())
            .await?;
    }
    let plain = match one {
        true => {
            let tenant = &tenants[0];
            let target = plain_target(t, scratch, tenant).await?;
            let pool =
                PlainPool::connect(&target, config.pool_max_connections, config.connect_timeout)
                    .await?;
            Some(Arc::new(Plain {
                pool,
                tenant_id: tenant.id.to_string(),
            }))
        }
        false => None,
    };
    let served = serve::serve(serve::app(resolver, plain.clone())).await?;
    let base = format!("http://{}", served.addr);
    let headers: Arc<[HeaderValue]> = tenants
        .iter()
        .map(|tenant| HeaderValue::from_str(tenant.slug.as_str()))
        .collect::<Result<_, _>>()
        .context("a slug as a header value")?;
    let plan = |path: &str| -> anyhow::Result<Plan> {
        Ok(Plan {
            urls: Plan::urls(&base, path, rows)?,
            tenants: Arc::clone(&headers),
            clients: args.clients,
            warmup: Duration::from_secs(args.warmup),
            duration: Duration::from_secs(args.duration),
        })
    };

    let source = probe.source();
    let watching = watch::start(t.clone(), probe);
    let layer = load::run(&plan("/layer/documents/")?, stop).await;
    let peaks: Peaks = watching.finish().await?;
    let layer = layer?;
    let (layer_plain_run, plain_run, plain_tx_run) = match &plain {
        Some(plain) => {
            let layer_plain = load::run(&plan("/layer-plain/documents/")?, stop).await?;
            let plain_run = load::run(&plan("/plain/documents/")?, stop).await?;
            let tx_run = load::run(&plan("/plain-tx/documents/")?, stop).await?;
            plain.pool.close().await;
            (Some(layer_plain), Some(plain_run), Some(tx_run))
        }
        None => (None, None, None),
    };
    served.stop().await;
    let peak_rss = peak_rss_mib();

    Ok(Figures {
        mode: if one { "one_tenant" } else { "many_tenants" },
        engine: scratch.engine.to_string(),
        strategy: strategy.to_string(),
        tenants: args.tenants,
        clients: args.clients,
        warmup_s: args.warmup,
        duration_s: args.duration,
        cap: config.pool_max_per_server,
        tenant_pool_max: config.pool_max_connections,
        rows_per_tenant: rows,
        create_s: secs(create_time),
        seed_s: secs(seed_time),
        layer_vs_plain: plain_run.as_ref().map(|p| Compare::of(&layer, p)),
        layer_vs_plain_tx: plain_tx_run.as_ref().map(|p| Compare::of(&layer, p)),
        layer_plain_vs_plain: match (&layer_plain_run, &plain_run) {
            (Some(l), Some(p)) => Some(Compare::of(l, p)),
            _ => None,
        },
        unexpected_errors: layer.unexpected_errors(),
        layer,
        layer_plain: layer_plain_run,
        plain: plain_run,
        plain_tx: plain_tx_run,
        connections_source: source,
        server_sessions_max: match scratch.engine {
            Engine::Sqlite => Some(peaks.pool_open_max),
            _ => peaks.server_sessions_max,
        },
        pool_open_max: peaks.pool_open_max,
        connection_polls: peaks.polls,
        server_max_connections,
        peak_rss_mib: peak_rss,
        cleanup_s: 0.0,
    })
}

/// The login roles the tenants' connections use: each tenant's own, and the server's shared
/// pool's.
async fn roles(t: &Tenantry, server: &str, tenants: &[Tenant]) -> anyhow::Result<HashSet<String>> {
    let mut roles: HashSet<String> = tenants
        .iter()
        .filter_map(|tenant| tenant.role.as_ref().map(|r| r.to_string()))
        .collect();
    if let Some(pool) = t.catalog().shared_pool(server).await? {
        roles.insert(pool.role.to_string());
    }
    Ok(roles)
}

/// Where a plain pool reaches the tenant's own database: its SQLite file, or its database on
/// the server with the server's (administrative) login.
async fn plain_target(
    t: &Tenantry,
    scratch: &Scratch,
    tenant: &Tenant,
) -> anyhow::Result<PlainTarget> {
    let server = t.catalog().server(&scratch.server).await?;
    Ok(match server.engine {
        Engine::Sqlite => {
            let dir: PathBuf = tenantry::engine::sqlite_dir(&server.url, &t.config().data_dir);
            PlainTarget::SqliteFile(tenantry::engine::sqlite::file_path(&dir, &tenant.storage))
        }
        _ => PlainTarget::Url(tenantry::engine::url_with(
            &server.url,
            Some(tenant.storage.as_str()),
            None,
        )?),
    })
}

/// Deletes and purges the tenants on a `--server`, then its record; an SQLite run's files go
/// with the temp directory.
async fn clean_up(scratch: &Scratch) -> anyhow::Result<()> {
    if scratch.server_url.is_none() {
        return Ok(());
    }
    let t = &scratch.tenantry;
    let failed = fleet::delete_all(t).await?;
    anyhow::ensure!(
        failed == 0,
        "{failed} tenants could not be deleted from the server; see the messages above"
    );
    t.remove_server(&scratch.server)
        .await
        .context("remove the bench server's record")
}
