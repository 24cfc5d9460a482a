//! `tenantry bench move`: one tenant of N rows moved to another server or strategy while a
//! writer commits a unit after another through the pool manager (retrying a unit that was
//! paused, cut off or sent to the new place); on a throwaway catalog. Reports the copy time,
//! the write pause as the move measured it, the longest wait the writer saw between two
//! commits, and the process's peak memory.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tenantry::{MoveTenant, NewTenant, Settings, Strategy, Tenantry};

use super::scratch;
use super::stats::{peak_rss_mib, round, secs};
use crate::cli::MoveBenchArgs;
use crate::output;

/// The server name the destination is registered under.
const TARGET: &str = "target";

#[derive(Debug, Serialize)]
struct Report {
    from: String,
    to: String,
    rows: u64,
    /// Rows the writer changed while the first copy ran, copied again during the pause.
    changed: u64,
    copy_s: f64,
    /// From shutting the old place out to the switch in the catalog.
    pause_ms: u64,
    move_s: f64,
    /// Units the writer committed during the move.
    writer_units: u64,
    /// The longest time between two of its commits.
    writer_longest_wait_ms: f64,
    peak_rss_mib: Option<f64>,
}

pub async fn run(args: MoveBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.rows > 0, "--rows takes 1 or more");
    let dir = scratch::scratch_dir();
    let result = measure(&dir, &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        output::json(&report)?;
    } else {
        outln!(
            "{} → {}: {} rows ({} changed while copying); copy {} s, writes paused {} ms, move {} s; the writer committed {} units, its longest wait {} ms; peak memory {} MiB",
            report.from,
            report.to,
            report.rows,
            report.changed,
            report.copy_s,
            report.pause_ms,
            report.move_s,
            report.writer_units,
            report.writer_longest_wait_ms,
            report
                .peak_rss_mib
                .map_or_else(|| "?".to_owned(), |m| m.to_string())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(dir: &std::path::Path, args: &MoveBenchArgs) -> anyhow::Result<Report> {
    let strategy: Strategy = args.strategy.parse()?;
    let to_strategy: Strategy = match &args.to_strategy {
        Some(s) => s.parse()?,
        None => strategy,
    };
    let scratch = scratch::open(dir, Settings::default(), args.server.clone()).await?;
    let t = &scratch.tenantry;
    let target = match &args.to {
        Some(url) => {
            t.add_server(TARGET, url).await?;
            TARGET.to_owned()
        }
        None if scratch.engine == tenantry::Engine::Sqlite && to_strategy == strategy => {
            let files = dir.join("target");
            t.add_server(TARGET, &format!("sqlite:{}", files.display()))
                .await?;
            TARGET.to_owned()
        }
        None => scratch.server.clone(),
    };
    let source = t
        .create_tenant(NewTenant {
            slug: "mover".into(),
            server: Some(scratch.server.clone()),
            strategy: Some(strategy),
            ..NewTenant::default()
        })
        .await?;
    super::archive::seed(t, &source, args.rows).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(t.clone(), source.id.to_string(), stop.clone()));
    let started = Instant::now();
    let moved = t
        .move_tenant(
            "mover",
            MoveTenant {
                to_server: target.clone(),
                strategy: Some(to_strategy),
            },
        )
        .await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (units, longest) = writing.await?;
    let moved = moved?;
    t.delete_tenant("mover", true).await?;
    let engine = |name: &str| {
        let t = t.clone();
        let name = name.to_owned();
        async move { t.catalog().server(&name).await.map(|s| s.engine) }
    };
    Ok(Report {
        from: format!("{} {strategy}", engine(&scratch.server).await?),
        to: format!("{} {to_strategy}", engine(&target).await?),
        rows: moved.rows,
        changed: moved.changed,
        copy_s: round(moved.copy_ms as f64 / 1000.0),
        pause_ms: moved.pause_ms,
        move_s: secs(took),
        writer_units: units,
        writer_longest_wait_ms: round(longest.as_secs_f64() * 1000.0),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Commits one usage event per unit until stopped; returns the units committed and the
/// longest time between two commits.
async fn writer(t: Tenantry, id: String, stop: Arc<AtomicBool>) -> (u64, Duration) {
    let mut n = 0u64;
    let mut committed = 0u64;
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        let sql = format!(
            "INSERT INTO usage_events (id, tenant_id, event_type, quantity, occurred_at) \
             VALUES ('w{n:025}', '{id}', 'api.call', 1, '2025-06-01 10:00:00')"
        );
        let unit = async {
            let pool = t.tenant_pool("mover").await.ok()?;
            let mut tx = pool.begin().await.ok()?;
            tx.run_script(&sql).await.ok()?;
            tx.commit().await.ok()
        };
        match unit.await {
            Some(()) => {
                longest = longest.max(last.elapsed());
                last = Instant::now();
                n += 1;
                committed += 1;
            }
            // A unit whose commit was cut off may have committed: the next takes a new id.
            None => {
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    (committed, longest)
}
