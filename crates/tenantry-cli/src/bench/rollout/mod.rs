//! `tenantry bench rollout`: one migration rolled out over N tenants by Tenantry, side by
//! side with the plain-SQL floor ([`floor`]) on identical tenants of the same server, then
//! the rollout with nothing pending, at each size asked for.
//!
//! Each size runs on a fresh throwaway catalog: groups of N tenants are created at the set's
//! next-to-last version (one group per floor run, one for Tenantry), the last migration is
//! applied to each floor group as plain SQL and to Tenantry's group by a rollout, the path
//! `migrate --all` takes (planned into the catalog, claimed, recorded); every tenant is
//! deleted at the end.

mod floor;
pub(super) mod schema;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use std::sync::atomic::AtomicBool;

use tenantry::{
    Engine, MigrationSet, NewTenant, RolloutOptions, RolloutRun, Selection, Settings, Strategy,
    Tenantry,
};

use super::scratch;
use super::stats::{ms, peak_rss_mib, percentile, round, rss_mib, secs};
use crate::cli::RolloutArgs;
use crate::output;

/// One size's figures.
#[derive(Debug, Serialize)]
struct Figures {
    tenants: usize,
    /// The floor with one session, seconds (absent with `--no-floor`).
    floor_1_s: Option<f64>,
    /// The floor with as many sessions as Tenantry's concurrency.
    floor_c_s: Option<f64>,
    tenantry_s: f64,
    /// Tenantry's time over the one-session floor's.
    ratio_floor_1: Option<f64>,
    /// Tenantry's time over the floor at the same concurrency.
    ratio_floor_c: Option<f64>,
    tenantry_ms_per_tenant: f64,
    floor_1_ms_per_tenant: Option<f64>,
    /// Every tenant current: the rollout with nothing pending.
    noop_s: f64,
    /// Peak resident memory during the two rollouts (reset before them).
    rollout_peak_rss_mib: Option<f64>,
    /// Resident memory when the rollouts began (what creating the groups left allocated):
    /// the rollouts' own need is the peak above it.
    rss_before_rollouts_mib: Option<f64>,
    create_p50_ms: f64,
    create_p95_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    engine: String,
    strategy: String,
    concurrency: usize,
    migrations: String,
    change: String,
    sizes: Vec<Figures>,
}

pub async fn run(args: RolloutArgs, concurrency: usize) -> anyhow::Result<ExitCode> {
    let strategy: Strategy = args.strategy.parse()?;
    let mut sizes = Vec::new();
    let mut described = None;
    for &n in &args.tenants {
        anyhow::ensure!(n > 0, "--tenants takes sizes of 1 or more");
        let dir = scratch::scratch_dir();
        let result = measure(&dir, &args, strategy, concurrency, n).await;
        let _ = std::fs::remove_dir_all(&dir);
        let (figures, engine, set) = result?;
        if !args.json {
            errln!(
                "{n} tenants: Tenantry {:.2} s, floor {} s, no-op {:.2} s",
                figures.tenantry_s,
                figures
                    .floor_1_s
                    .map_or("-".to_owned(), |s| format!("{s:.2}")),
                figures.noop_s
            );
        }
        described.get_or_insert((engine, set));
        sizes.push(figures);
    }
    let (engine, (migrations, change)) = described.context("no size to measure")?;
    let report = Report {
        engine: engine.to_string(),
        strategy: strategy.to_string(),
        concurrency,
        migrations,
        change,
        sizes,
    };
    if args.json {
        output::json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(report: &Report) -> anyhow::Result<()> {
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| v.to_string());
    let mut table = comfy_table::Table::new();
    table.set_header(vec![
        "N",
        "FLOOR 1 (s)",
        "FLOOR C (s)",
        "TENANTRY (s)",
        "÷ FLOOR 1",
        "÷ FLOOR C",
        "MS/TENANT",
        "FLOOR MS/TENANT",
        "NO-OP (s)",
        "PEAK RSS (MiB, AT START)",
        "CREATE P50/P95 (ms)",
    ]);
    for f in &report.sizes {
        table.add_row(vec![
            f.tenants.to_string(),
            opt(f.floor_1_s),
            opt(f.floor_c_s),
            f.tenantry_s.to_string(),
            opt(f.ratio_floor_1),
            opt(f.ratio_floor_c),
            f.tenantry_ms_per_tenant.to_string(),
            opt(f.floor_1_ms_per_tenant),
            f.noop_s.to_string(),
            format!(
                "{} ({})",
                opt(f.rollout_peak_rss_mib),
                opt(f.rss_before_rollouts_mib)
            ),
            format!("{} / {}", f.create_p50_ms, f.create_p95_ms),
        ]);
    }
    outln!(
        "{} {} tenants, concurrency {} (C), migrations: {}, change: {}",
        report.engine,
        report.strategy,
        report.concurrency,
        report.migrations,
        report.change
    )?;
    outln!("{table}")?;
    Ok(())
}

/// The migration files tenants are created with, and the change rolled out (file name, SQL).
pub(super) fn prepare_set(
    dir: &Path,
    own: Option<&Path>,
    engine: Engine,
) -> anyhow::Result<(String, String, String)> {
    let _ = std::fs::remove_dir_all(dir);
    let Some(own) = own else {
        schema::write_base(dir, engine)?;
        let described = format!(
            "built-in: 8 tables, {} indexes, identity keys, foreign keys",
            schema::index_count()
        );
        return Ok((
            described,
            schema::CHANGE_FILE.to_owned(),
            schema::CHANGE.to_owned(),
        ));
    };
    let set = MigrationSet::load(own).with_context(|| format!("load {}", own.display()))?;
    let last = set
        .iter()
        .last()
        .with_context(|| format!("{} holds no migration", own.display()))?;
    anyhow::ensure!(
        set.len() >= 2,
        "{} needs two migrations or more: tenants are created without the last one, which is then rolled out",
        own.display()
    );
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(own)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".sql") && !name.starts_with(&format!("{}_", last.version)) {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    let file = last
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("change.sql")
        .to_owned();
    Ok((own.display().to_string(), file, last.sql.clone()))
}

async fn measure(
    dir: &Path,
    args: &RolloutArgs,
    strategy: Strategy,
    concurrency: usize,
    n: usize,
) -> anyhow::Result<(Figures, Engine, (String, String))> {
    let settings = Settings {
        concurrency: Some(concurrency),
        ..Settings::default()
    };
    let scratch = scratch::open(dir, settings, args.server.clone()).await?;
    let t = &scratch.tenantry;
    let (described, change_file, change) = prepare_set(
        &scratch.migrations,
        args.migrations.as_deref(),
        scratch.engine,
    )?;
    let result = async {
        let groups: &[&str] = if args.no_floor {
            &["fleet"]
        } else {
            &["floor1", "floorc", "fleet"]
        };
        let mut latencies = Vec::new();
        for group in groups {
            latencies
                .extend(create_group(t, &scratch.server, strategy, group, n, concurrency).await?);
        }
        latencies.sort();
        std::fs::write(scratch.migrations.join(&change_file), &change)?;
        let set = t.migrations()?;
        let place = floor_place(&scratch, t).await?;
        let tenants = t.catalog().tenants().await?;
        let storages = |group: &str| -> Vec<tenantry::StorageName> {
            tenants
                .iter()
                .filter(|x| x.slug.as_str().starts_with(group))
                .map(|x| x.storage.clone())
                .collect()
        };
        for tenant in tenants
            .iter()
            .filter(|x| x.slug.as_str().starts_with("fleet"))
        {
            t.label_tenant(tenant.slug.as_str(), &[FLEET.to_owned()])
                .await?;
        }
        reset_peak_rss();
        let rss_before = rss_mib();
        let (floor_1, floor_c) = if args.no_floor {
            (None, None)
        } else {
            let one = floor::run(
                &place,
                scratch.engine,
                strategy,
                &storages("floor1"),
                &change,
                1,
            )
            .await?;
            let many = floor::run(
                &place,
                scratch.engine,
                strategy,
                &storages("floorc"),
                &change,
                concurrency,
            )
            .await?;
            (Some(one), Some(many))
        };
        let started = Instant::now();
        let run = rollout_of_fleet(t, &set).await?;
        let rollout = started.elapsed();
        let migrated = run.counts.get("migrated").copied().unwrap_or(0);
        anyhow::ensure!(
            migrated == n as i64,
            "the rollout migrated {migrated} of {n} tenants; first failure: {:?}",
            run.report.failed().next()
        );
        let started = Instant::now();
        let run = rollout_of_fleet(t, &set).await?;
        let noop = started.elapsed();
        anyhow::ensure!(
            run.counts.get("current").copied() == Some(n as i64),
            "the rollout with nothing pending was not a no-op: {:?}",
            run.counts
        );
        let peak = peak_rss_mib();
        let ratio = |floor: Option<Duration>| {
            floor.map(|f| round(rollout.as_secs_f64() / f.as_secs_f64().max(1e-9)))
        };
        let per_tenant = |d: Duration| round(d.as_secs_f64() * 1000.0 / n as f64);
        Ok(Figures {
            tenants: n,
            floor_1_s: floor_1.map(secs),
            floor_c_s: floor_c.map(secs),
            tenantry_s: secs(rollout),
            ratio_floor_1: ratio(floor_1),
            ratio_floor_c: ratio(floor_c),
            tenantry_ms_per_tenant: per_tenant(rollout),
            floor_1_ms_per_tenant: floor_1.map(per_tenant),
            noop_s: secs(noop),
            rollout_peak_rss_mib: peak,
            rss_before_rollouts_mib: rss_before,
            create_p50_ms: ms(percentile(&latencies, 50)),
            create_p95_ms: ms(percentile(&latencies, 95)),
        })
    }
    .await;
    let cleaned = clean_up(t, &scratch, concurrency).await;
    let figures = result?;
    cleaned?;
    Ok((figures, scratch.engine, (described, change_file)))
}

/// The label of Tenantry's group.
const FLEET: &str = "bench-fleet";

/// A rollout of Tenantry's group, as `tenantry migrate --all --label bench-fleet` runs it:
/// planned into the catalog, then run by this process.
async fn rollout_of_fleet(t: &Tenantry, set: &MigrationSet) -> anyhow::Result<RolloutRun> {
    let options = RolloutOptions {
        labels: vec![FLEET.to_owned()],
        ..RolloutOptions::default()
    };
    let (id, _) = t
        .start_rollout(set, &Selection::All, &options, "bench")
        .await?;
    let never = AtomicBool::new(false);
    Ok(t.run_rollout(&id, set, &never, &|_| {}).await?)
}

/// Creates `n` tenants named `<group><i>`, `concurrency` at a time (one: in order); each
/// creation's latency, in the order they finished.
pub(super) async fn create_group(
    t: &Tenantry,
    server: &str,
    strategy: Strategy,
    group: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let slug = format!("{group}{i:05}");
            let one = Instant::now();
            t.create_tenant(NewTenant {
                slug: slug.clone(),
                server: Some(server.to_owned()),
                strategy: Some(strategy),
                ..NewTenant::default()
            })
            .await
            .with_context(|| format!("create tenant {slug}"))?;
            anyhow::Ok(one.elapsed())
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn floor_place(scratch: &scratch::Scratch, t: &Tenantry) -> anyhow::Result<floor::Where> {
    Ok(match &scratch.server_url {
        Some(url) => floor::Where::Server(url.clone()),
        None => {
            let server = t.catalog().server(&scratch.server).await?;
            floor::Where::Dir(tenantry::engine::sqlite_dir(
                &server.url,
                &t.config().data_dir,
            ))
        }
    })
}

/// Deletes every tenant the bench created and the server it registered.
pub(super) async fn clean_up(
    t: &Tenantry,
    scratch: &scratch::Scratch,
    concurrency: usize,
) -> anyhow::Result<()> {
    let tenants = t.catalog().tenants().await?;
    let results: Vec<_> = futures::stream::iter(tenants)
        .map(|x| async move { t.delete_tenant(x.slug.as_str(), true).await })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for result in results {
        result?;
    }
    if scratch.server_url.is_some() {
        t.remove_server(&scratch.server).await?;
    }
    t.catalog().close().await;
    Ok(())
}

/// Resets the process's peak resident set (Linux), so the peak read afterwards is the
/// rollouts' own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
