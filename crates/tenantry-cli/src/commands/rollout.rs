//! `tenantry migrate --all | --tenant … | --resume ID`, `tenantry migrate down …`,
//! `tenantry migrate undo …` and `tenantry run "<SQL>" …`: a rollout, planned into the catalog (or joined, or resumed) and run by this process; a
//! progress bar with rate, ETA and failures on a terminal, one JSON line per tenant with
//! `--json`; Ctrl-C finishes the tenants in flight, records them, prints the summary and
//! exits 130.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tenantry::{
    Budget, OrderKey, Outcome, RevertTarget, RolloutOptions, RolloutRun, Selection, StopReason,
    Strategy, TenantReport, Tenantry,
};

use crate::cli::{Controls, MigrateArgs, MigrateDownArgs, MigrateUndoArgs, RunArgs};
use crate::output;

/// What the rollout does, for its messages.
#[derive(Clone, Copy, PartialEq)]
enum Verb {
    Migrate,
    Run,
    Down,
    Undo,
}

impl Verb {
    fn of(kind: &str) -> Verb {
        match kind {
            tenantry::SQL_KIND | tenantry::SQL_DRY_RUN_KIND => Verb::Run,
            tenantry::DOWN_KIND | tenantry::DOWN_DRY_RUN_KIND => Verb::Down,
            tenantry::UNDO_KIND | tenantry::UNDO_DRY_RUN_KIND => Verb::Undo,
            _ => Verb::Migrate,
        }
    }

    /// The command that resumes a rollout of this verb.
    fn command(self) -> &'static str {
        match self {
            Verb::Migrate => "migrate",
            Verb::Run => "run",
            Verb::Down => "migrate down",
            Verb::Undo => "migrate undo",
        }
    }
}

pub async fn migrate(tenantry: &Tenantry, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    // Load the migrations before anything runs, so a bad directory changes nothing.
    let set = tenantry.migrations()?;
    let (id, joined) = match &args.resume {
        Some(id) => (id.clone(), true),
        None => {
            let selection = selection(args.all, &args.tenant);
            let options = options(&args.controls, args.dry_run)?;
            tenantry
                .start_rollout(&set, &selection, &options, &started_by())
                .await?
        }
    };
    drive(
        tenantry,
        &set,
        &id,
        joined,
        args.resume.is_some(),
        &args.controls,
        Verb::Migrate,
    )
    .await
}

pub async fn sql(tenantry: &Tenantry, args: RunArgs) -> anyhow::Result<ExitCode> {
    if !args.all && args.tenant.is_empty() && args.resume.is_none() {
        anyhow::bail!("say which tenants: --all, --tenant <slug> (repeatable) or --resume <id>");
    }
    let set = tenantry.migrations()?;
    let (id, joined) = match (&args.resume, &args.sql) {
        (Some(id), _) => (id.clone(), true),
        (None, Some(sql)) => {
            let selection = selection(args.all, &args.tenant);
            let options = options(&args.controls, args.dry_run)?;
            tenantry
                .start_sql_run(sql, &selection, &options, &started_by())
                .await?
        }
        (None, None) => anyhow::bail!("no SQL to run"),
    };
    drive(
        tenantry,
        &set,
        &id,
        joined,
        args.resume.is_some(),
        &args.controls,
        Verb::Run,
    )
    .await
}

pub async fn down(tenantry: &Tenantry, args: MigrateDownArgs) -> anyhow::Result<ExitCode> {
    let set = tenantry.migrations()?;
    let (id, joined) = match (&args.resume, args.to, args.steps) {
        (Some(id), _, _) => (id.clone(), true),
        (None, to, steps) => {
            let target = match (to, steps) {
                (Some(version), _) => RevertTarget::To(version),
                (None, Some(steps)) => RevertTarget::Steps(usize::try_from(steps)?),
                (None, None) => anyhow::bail!("say how far back: --to <VERSION> or --steps <N>"),
            };
            let selection = selection(args.all, &args.tenant);
            let options = options(&args.controls, args.dry_run)?;
            tenantry
                .start_revert(&set, &selection, &options, target, &started_by())
                .await?
        }
    };
    drive(
        tenantry,
        &set,
        &id,
        joined,
        args.resume.is_some(),
        &args.controls,
        Verb::Down,
    )
    .await
}

pub async fn undo(tenantry: &Tenantry, args: MigrateUndoArgs) -> anyhow::Result<ExitCode> {
    let set = tenantry.migrations()?;
    let (id, joined) = match (&args.resume, &args.rollout) {
        (Some(id), _) => (id.clone(), true),
        (None, Some(rollout)) => {
            let options = options(&args.controls, args.dry_run)?;
            tenantry
                .start_undo(rollout, &set, &options, &started_by())
                .await?
        }
        (None, None) => anyhow::bail!("say which rollout to undo, or --resume <id>"),
    };
    drive(
        tenantry,
        &set,
        &id,
        joined,
        args.resume.is_some(),
        &args.controls,
        Verb::Undo,
    )
    .await
}

fn selection(all: bool, tenants: &[String]) -> Selection {
    match all {
        true => Selection::All,
        false => Selection::Slugs(tenants.to_vec()),
    }
}

/// Runs rollout `id` in this process until it is done, stopped, or interrupted.
async fn drive(
    tenantry: &Tenantry,
    set: &tenantry::MigrationSet,
    id: &str,
    joined: bool,
    resumed: bool,
    controls: &Controls,
    expected: Verb,
) -> anyhow::Result<ExitCode> {
    let rollout = tenantry.catalog().rollout(id).await?;
    let verb = Verb::of(&rollout.kind);
    // A copied id of another kind would run the opposite operation: refuse it.
    anyhow::ensure!(
        verb == expected,
        "rollout {id} is of kind `{}`; continue it with `tenantry {} --resume {id}`",
        rollout.kind,
        verb.command()
    );
    if !controls.json {
        let how = match (resumed, joined) {
            (true, _) => "resuming",
            (false, true) => "joining",
            (false, false) => "started",
        };
        let total = rollout.total;
        match (verb, rollout.target_version) {
            (Verb::Migrate, Some(version)) => {
                outln!("rollout {id} ({how}): {total} tenant(s) to version {version}")?
            }
            (Verb::Down, Some(version)) => {
                outln!("revert {id} ({how}): {total} tenant(s) down to version {version}")?
            }
            (Verb::Down, None) => outln!("revert {id} ({how}): {total} tenant(s)")?,
            (Verb::Undo, _) => outln!(
                "undo {id} ({how}): {total} tenant(s) of rollout {}",
                rollout.options["undo"].as_str().unwrap_or("?")
            )?,
            _ => outln!("run {id} ({how}): {total} tenant(s)")?,
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
                errln!("stopping: finishing the tenants in flight (Ctrl-C again to kill)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        }
    });
    let bar = progress_bar(controls, rollout.total);
    let failed = AtomicUsize::new(0);
    let progress = |report: &TenantReport| {
        if matches!(report.outcome, Outcome::Failed { .. }) {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        if controls.json
            && let Ok(line) = serde_json::to_string(report)
        {
            let _ = outln!("{line}");
        }
        bar.inc(1);
        bar.set_message(format!(
            "{} failed · {}",
            failed.load(Ordering::Relaxed),
            report.tenant
        ));
    };
    let mut run = tenantry.run_rollout(id, set, &stop, &progress).await?;
    watcher.abort();
    bar.finish_and_clear();
    run.joined = joined;
    summarize(controls, &run, verb)
}

fn options(args: &Controls, dry_run: bool) -> anyhow::Result<RolloutOptions> {
    Ok(RolloutOptions {
        servers: args.servers.clone(),
        strategies: args
            .strategies
            .iter()
            .map(|s| s.parse::<Strategy>())
            .collect::<Result<_, _>>()?,
        labels: args.labels.clone(),
        order_by: args
            .order_by
            .iter()
            .map(|k| k.parse::<OrderKey>())
            .collect::<Result<_, _>>()?,
        canary: args.canary,
        wave_size: args.wave_size,
        max_failures: args
            .max_failures
            .as_deref()
            .map(str::parse::<Budget>)
            .transpose()?,
        dry_run,
        lease: Duration::from_secs(args.lease_secs.max(1)),
    })
}

/// `user@host`, for the rollout record.
fn started_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{user}@{host}")
}

fn progress_bar(args: &Controls, total: i64) -> ProgressBar {
    let bar = match std::io::stderr().is_terminal() && !args.json {
        true => ProgressBar::new(u64::try_from(total).unwrap_or(0)),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} tenants · {per_sec} · ETA {eta} · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn summarize(args: &Controls, run: &RolloutRun, verb: Verb) -> anyhow::Result<ExitCode> {
    let failed = run.report.failed().count();
    if args.json {
        let summary = serde_json::json!({
            "rollout": run.rollout,
            "joined": run.joined,
            "stopped": run.stopped,
            "counts": run.counts,
        });
        outln!("{summary}")?;
    } else {
        let table = match verb {
            Verb::Migrate => output::fleet(&run.report, run.omitted),
            Verb::Run => output::sql_run(&run.report, run.omitted),
            Verb::Down | Verb::Undo => output::revert(&run.report, run.omitted),
        };
        outln!("{table}")?;
        let counts: Vec<String> = run
            .counts
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        let noun = match verb {
            Verb::Migrate => "rollout",
            Verb::Run => "run",
            Verb::Down => "revert",
            Verb::Undo => "undo",
        };
        outln!("{noun} {}: {}", run.rollout, counts.join(", "))?;
    }
    match run.stopped {
        Some(StopReason::Interrupted) => {
            errln!(
                "interrupted: the tenants in flight were finished and recorded; continue with `tenantry {} --resume {}`",
                verb.command(),
                run.rollout
            );
            return Ok(ExitCode::from(130));
        }
        Some(StopReason::Canary) => {
            errln!("error: a canary tenant failed; the rollout stopped there");
            return Ok(ExitCode::FAILURE);
        }
        Some(StopReason::Budget) => {
            errln!("error: failures passed --max-failures; the rest were not attempted");
            return Ok(ExitCode::FAILURE);
        }
        None => {}
    }
    if failed == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    match verb {
        Verb::Migrate => errln!(
            "error: {failed} tenant(s) failed to migrate; fix the migration, then run `tenantry migrate --all` again"
        ),
        Verb::Run => {
            errln!("error: the SQL failed on {failed} tenant(s); nothing was committed there")
        }
        Verb::Down | Verb::Undo => errln!(
            "error: {failed} tenant(s) failed to revert; each keeps the version shown, see its error"
        ),
    }
    Ok(ExitCode::FAILURE)
}
