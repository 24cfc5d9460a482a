use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use tenantry::{FleetReport, Tenantry};

use crate::cli::{MigrateArgs, MigrateCommand};
use crate::output;

pub async fn run(tenantry: &Tenantry, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(MigrateCommand::Status { json }) => {
            let rows = tenantry.status().await?;
            if json {
                output::json(&rows)?;
            } else if rows.is_empty() {
                outln!("no tenants")?;
            } else {
                outln!("{}", output::status(&rows))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(MigrateCommand::Resolve {
            slug,
            migration: version,
            applied,
            retry: _,
        }) => {
            let t = tenantry.resolve_dirty(&slug, version, applied).await?;
            let what = if applied {
                "recorded as applied"
            } else {
                "forgotten; the next run applies it again"
            };
            outln!(
                "{slug}: migration {version} {what}; version is now {}",
                t.version
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if !args.all && args.tenant.is_empty() {
        anyhow::bail!(
            "say which tenants: `tenantry migrate --all`, `tenantry migrate --tenant <slug>`, \
             or `tenantry migrate status`"
        );
    }
    // Load the migrations before anything runs, so a bad directory changes nothing.
    let set = tenantry.migrations()?;
    let total = if args.all {
        tenantry.catalog().tenants().await?.len()
    } else {
        args.tenant.len()
    };
    let bar = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} tenants {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("to version {}", set.latest()));
    let progress = |report: &tenantry::TenantReport| {
        bar.inc(1);
        bar.set_message(report.tenant.clone());
    };
    let report: FleetReport = if args.all {
        tenantry.migrate_all(&set, &progress).await?
    } else {
        tenantry
            .migrate_slugs(&set, &args.tenant, &progress)
            .await?
    };
    bar.finish_and_clear();
    if args.json {
        output::json(&report)?;
    } else {
        outln!("{}", output::fleet(&report))?;
    }
    if report.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        errln!(
            "error: {} tenant(s) failed to migrate; fix the migration, then run `tenantry migrate --all` again",
            report.failed().count()
        );
        Ok(ExitCode::FAILURE)
    }
}
