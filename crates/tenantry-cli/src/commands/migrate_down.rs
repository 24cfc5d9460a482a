//! `tenantry migrate down`: revert migrations with their `.down.sql` scripts, on the named
//! tenants or all of them, to a version or by a number of steps.

use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use tenantry::{RevertTarget, Status, Tenant, Tenantry};

use crate::cli::MigrateDownArgs;
use crate::output;

pub async fn run(tenantry: &Tenantry, args: MigrateDownArgs) -> anyhow::Result<ExitCode> {
    let target = match (args.to, args.steps) {
        (Some(version), _) => RevertTarget::To(version),
        (None, Some(steps)) => RevertTarget::Steps(usize::try_from(steps)?),
        (None, None) => anyhow::bail!("say how far back: --to <VERSION> or --steps <N>"),
    };
    // Load the migrations before anything runs, so a bad directory changes nothing.
    let set = tenantry.migrations()?;
    let tenants: Vec<Tenant> = if args.all {
        tenantry
            .catalog()
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != Status::Deleted)
            .collect()
    } else {
        let mut tenants = Vec::with_capacity(args.tenant.len());
        for slug in &args.tenant {
            tenants.push(tenantry.catalog().tenant(slug).await?);
        }
        tenants
    };
    let bar = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(tenants.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} tenants {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(match target {
        RevertTarget::To(version) => format!("down to version {version}"),
        RevertTarget::Steps(steps) => format!("down {steps} step(s)"),
    });
    let progress = |report: &tenantry::TenantReport| {
        bar.inc(1);
        bar.set_message(report.tenant.clone());
    };
    let report = tenantry
        .migrate_down(&set, tenants, target, &progress)
        .await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        output::json(&report)?;
    } else {
        outln!("{}", output::revert(&report))?;
    }
    if report.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        errln!(
            "error: {} tenant(s) failed to revert; each keeps the version shown, see its error",
            report.failed().count()
        );
        Ok(ExitCode::FAILURE)
    }
}
