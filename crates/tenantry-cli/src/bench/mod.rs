//! `tenantry bench`: measures tenant creation, a fleet rollout, a no-op rollout and deletion
//! on a throwaway catalog, against the local SQLite server or a PostgreSQL server.
//! `tenantry bench route` ([`route`]): requests served through the tenant layer.
//! `tenantry bench rollout` ([`rollout`]): a migration over N tenants beside plain SQL.
//! `tenantry bench create` ([`create`]): creation latency from spares and without.
//! `tenantry bench archive` ([`archive`]): a tenant exported and imported.

pub mod archive;
pub mod create;
mod fleet;
mod load;
pub mod moving;
mod plain;
mod report;
pub mod rollout;
pub mod route;
mod scratch;
mod serve;
mod stats;
mod watch;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tenantry::{NewTenant, Settings, Strategy};

use crate::output;
use stats::{ms, peak_rss_mib, percentile, round, secs};

#[derive(Debug, Serialize)]
struct Figures {
    engine: String,
    strategy: String,
    tenants: usize,
    concurrency: usize,
    create_total_s: f64,
    create_p50_ms: f64,
    create_p95_ms: f64,
    create_max_ms: f64,
    rollout_one_migration_s: f64,
    rollout_tenants_per_s: f64,
    rollout_noop_s: f64,
    delete_total_s: f64,
    peak_rss_mib: Option<f64>,
}

pub async fn run(
    tenants: usize,
    server: Option<String>,
    strategy: Strategy,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = scratch::scratch_dir();
    let result = measure(&dir, tenants, server, strategy, concurrency).await;
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    if json {
        output::json(&figures)?;
    } else {
        let value = serde_json::to_value(&figures)?;
        let mut table = comfy_table::Table::new();
        table.set_header(vec!["FIGURE", "VALUE"]);
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                table.add_row(vec![k.clone(), v.to_string()]);
            }
        }
        outln!("{table}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    dir: &std::path::Path,
    tenants: usize,
    server: Option<String>,
    strategy: Strategy,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let settings = Settings {
        concurrency: Some(concurrency),
        ..Settings::default()
    };
    let scratch = scratch::open(dir, settings, server).await?;
    let t = &scratch.tenantry;
    let server_name = scratch.server.clone();
    let engine = scratch.engine.to_string();

    let mut latencies = Vec::with_capacity(tenants);
    let started = Instant::now();
    for i in 0..tenants {
        let one = Instant::now();
        t.create_tenant(NewTenant {
            slug: format!("bench{i:05}"),
            server: Some(server_name.clone()),
            strategy: Some(strategy),
            ..NewTenant::default()
        })
        .await
        .with_context(|| format!("create tenant bench{i:05}"))?;
        latencies.push(one.elapsed());
    }
    let create_total = started.elapsed();
    latencies.sort();

    std::fs::write(
        scratch
            .migrations
            .join("20250101000009_add_campaign_budget.sql"),
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    )?;
    let set = t.migrations()?;
    let started = Instant::now();
    let report = t.migrate_all(&set, &|_| {}).await?;
    let rollout = started.elapsed();
    anyhow::ensure!(
        report.migrated() == tenants,
        "rollout migrated {} of {tenants}",
        report.migrated()
    );
    let started = Instant::now();
    let report = t.migrate_all(&set, &|_| {}).await?;
    let noop = started.elapsed();
    anyhow::ensure!(report.current() == tenants, "no-op rollout was not a no-op");

    let started = Instant::now();
    for i in 0..tenants {
        t.delete_tenant(&format!("bench{i:05}"), true).await?;
    }
    let delete_total = started.elapsed();
    if scratch.server_url.is_some() {
        t.remove_server(&server_name).await?;
    }
    t.catalog().close().await;

    Ok(Figures {
        engine,
        strategy: strategy.to_string(),
        tenants,
        concurrency,
        create_total_s: secs(create_total),
        create_p50_ms: ms(percentile(&latencies, 50)),
        create_p95_ms: ms(percentile(&latencies, 95)),
        create_max_ms: ms(latencies.last().copied().unwrap_or_default()),
        rollout_one_migration_s: secs(rollout),
        rollout_tenants_per_s: round(tenants as f64 / rollout.as_secs_f64().max(1e-9)),
        rollout_noop_s: secs(noop),
        delete_total_s: secs(delete_total),
        peak_rss_mib: peak_rss_mib(),
    })
}
