//! `tenantry bench create`: creation latency with spares and without, on a throwaway catalog.
//!
//! N spares are built (timed), then N tenants are created one after another, each claiming a
//! spare; then N more with no spare left, each building its own storage as without spares.
//! Every tenant and spare is deleted at the end.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tenantry::{Settings, Strategy};

use super::rollout::{clean_up, create_group, prepare_set};
use super::scratch;
use super::stats::{ms, percentile, secs};
use crate::cli::CreateArgs;
use crate::output;

#[derive(Debug, Serialize)]
struct Latency {
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    /// The p50 of the first and of the last tenth of the creates: whether a create costs
    /// more as the fleet grows.
    first_tenth_p50_ms: f64,
    last_tenth_p50_ms: f64,
}

impl Latency {
    /// `in_order`: each create's latency, in the order they ran.
    fn of(in_order: Vec<Duration>) -> Latency {
        let tenth = (in_order.len() / 10).max(1);
        let p50_of = |part: &[Duration]| {
            let mut part = part.to_vec();
            part.sort();
            ms(percentile(&part, 50))
        };
        let first_tenth_p50_ms = p50_of(&in_order[..tenth.min(in_order.len())]);
        let last_tenth_p50_ms = p50_of(&in_order[in_order.len().saturating_sub(tenth)..]);
        let mut all = in_order;
        all.sort();
        Latency {
            p50_ms: ms(percentile(&all, 50)),
            p95_ms: ms(percentile(&all, 95)),
            max_ms: ms(all.last().copied().unwrap_or_default()),
            first_tenth_p50_ms,
            last_tenth_p50_ms,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    engine: String,
    strategy: String,
    tenants: usize,
    migrations: String,
    /// Building the N spares, one after another.
    spares_built_s: f64,
    /// Each create claiming a spare.
    from_spare: Latency,
    /// Each create with no spare left.
    without_spare: Latency,
}

pub async fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let strategy: Strategy = args.strategy.parse()?;
    anyhow::ensure!(args.tenants > 0, "--tenants takes 1 or more");
    let dir = scratch::scratch_dir();
    let result = measure(&dir, &args, strategy).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        output::json(&report)?;
    } else {
        let mut table = comfy_table::Table::new();
        table.set_header(vec![
            "CREATE",
            "P50 (ms)",
            "P95 (ms)",
            "MAX (ms)",
            "P50 FIRST / LAST TENTH (ms)",
        ]);
        for (name, l) in [
            ("from a spare", &report.from_spare),
            ("without a spare", &report.without_spare),
        ] {
            table.add_row(vec![
                name.to_owned(),
                l.p50_ms.to_string(),
                l.p95_ms.to_string(),
                l.max_ms.to_string(),
                format!("{} / {}", l.first_tenth_p50_ms, l.last_tenth_p50_ms),
            ]);
        }
        outln!(
            "{} {}, {} tenants each way, migrations: {}; {} spares built in {} s",
            report.engine,
            report.strategy,
            report.tenants,
            report.migrations,
            report.tenants,
            report.spares_built_s
        )?;
        outln!("{table}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    dir: &std::path::Path,
    args: &CreateArgs,
    strategy: Strategy,
) -> anyhow::Result<Report> {
    let scratch = scratch::open(dir, Settings::default(), args.server.clone()).await?;
    let t = &scratch.tenantry;
    let (described, change_file, change) = prepare_set(
        &scratch.migrations,
        args.migrations.as_deref(),
        scratch.engine,
    )?;
    // Tenants are created at the set's latest version, its last migration included.
    std::fs::write(scratch.migrations.join(change_file), change)?;
    let result = async {
        let started = Instant::now();
        t.add_spares(Some(&scratch.server), Some(strategy), args.tenants)
            .await
            .context("build spares")?;
        let spares_built = started.elapsed();
        let from_spare =
            create_group(t, &scratch.server, strategy, "spared", args.tenants, 1).await?;
        let left = t.spare_counts().await?;
        anyhow::ensure!(
            left.iter().all(|c| c.current == 0),
            "every create should have claimed a spare; left: {left:?}"
        );
        let without = create_group(t, &scratch.server, strategy, "built", args.tenants, 1).await?;
        Ok(Report {
            engine: scratch.engine.to_string(),
            strategy: strategy.to_string(),
            tenants: args.tenants,
            migrations: described,
            spares_built_s: secs(spares_built),
            from_spare: Latency::of(from_spare),
            without_spare: Latency::of(without),
        })
    }
    .await;
    let cleaned = clean_up(t, &scratch, 2).await;
    let report = result?;
    cleaned?;
    Ok(report)
}
