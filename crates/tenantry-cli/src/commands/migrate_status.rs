//! `migrate status`: the fleet at a glance from the catalog alone; `--tenants`, each
//! tenant's row; `--tenant <slug>`, one tenant's migrations from its ledger. `migrate
//! verify`: every selected ledger and schema, exit 1 on drift.

use std::process::ExitCode;

use tenantry::migrate::audit::LedgerProblem;
use tenantry::migrate::drift::Drift;
use tenantry::migrate::{Selection, Verdict};
use tenantry::{MigrationSummary, TenantMigrations, Tenantry, VerifyReport, VerifyRequest};

use crate::cli::{MigrateStatusArgs, MigrateVerifyArgs};
use crate::output::{self, add_row, escaped, short, table};

/// How many failed or dirty tenants the summary names before it points at `--tenants`.
const NAMED: usize = 20;

pub async fn status(tenantry: &Tenantry, args: MigrateStatusArgs) -> anyhow::Result<ExitCode> {
    if args.tenants {
        let rows = tenantry.status().await?;
        if args.json {
            output::json(&rows)?;
        } else if rows.is_empty() {
            outln!("no tenants")?;
        } else {
            outln!("{}", output::status(&rows))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let set = tenantry.migrations()?;
    if let Some(slug) = args.tenant {
        let migrations = tenantry.tenant_migrations(&slug, &set).await?;
        if args.json {
            output::json(&migrations)?;
        } else {
            outln!("{}", ledger_text(&migrations))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let summary = tenantry.migration_summary(&set).await?;
    if args.json {
        output::json(&summary)?;
    } else {
        outln!("{}", summary_text(&summary))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(tenantry: &Tenantry, args: MigrateVerifyArgs) -> anyhow::Result<ExitCode> {
    // Load the migrations before anything is opened, so a bad directory opens nothing.
    let set = tenantry.migrations()?;
    let request = VerifyRequest {
        tenants: match args.all {
            true => Selection::All,
            false => Selection::Slugs(args.tenant),
        },
        reference: args.reference,
    };
    let report = tenantry.verify_migrations(&set, &request).await?;
    if args.json {
        output::json(&report)?;
    } else {
        outln!("{}", verify_text(&report))?;
    }
    if report.is_clean() {
        return Ok(ExitCode::SUCCESS);
    }
    errln!(
        "error: {} unit(s) drifted and {} could not be read; see above",
        report.drifted(),
        report.failed()
    );
    Ok(ExitCode::FAILURE)
}

/// The summary for people: the counts, tenants per version (newest first), and the failed
/// and dirty tenants by name.
fn summary_text(s: &MigrationSummary) -> String {
    let statuses: Vec<String> = s
        .statuses
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let mut out = format!(
        "latest version {} ({} migration(s))\n{} tenant(s){}: {} current, {} pending, {} failed, {} dirty",
        s.latest,
        s.migrations,
        s.tenants,
        match statuses.is_empty() {
            true => String::new(),
            false => format!(" ({})", statuses.join(", ")),
        },
        s.current,
        s.pending,
        s.failed,
        s.dirty,
    );
    if !s.versions.is_empty() {
        let mut t = table(&["VERSION", "TENANTS"]);
        for (version, n) in s.versions.iter().rev() {
            let version = match *version == s.latest {
                true => format!("{version} (latest)"),
                false => version.to_string(),
            };
            add_row(&mut t, [version, n.to_string()]);
        }
        out = format!("{out}\n{t}");
    }
    for p in s.problems.iter().take(NAMED) {
        let what = match p.dirty_version {
            Some(dirty) => format!("dirty at {dirty}"),
            None => "failed".to_owned(),
        };
        out.push_str(&format!(
            "\n  {what}: {} ({}, version {}): {}",
            p.tenant,
            p.status,
            p.version,
            escaped(first_line(p.last_error.as_deref()))
        ));
    }
    if s.problems.len() > NAMED {
        out.push_str(&format!(
            "\n  … and {} more: `tenantry migrate status --tenants` lists every tenant",
            s.problems.len() - NAMED
        ));
    }
    out
}

/// One tenant's migrations for people.
fn ledger_text(m: &TenantMigrations) -> String {
    let whose = match m.shared {
        true => format!(
            "{} is a shared tenant: this is the ledger of the {}, which every tenant of the pool shares",
            m.tenant, m.ledger_of
        ),
        false => format!("{} ({} on {})", m.tenant, m.strategy, m.server),
    };
    let mut out = format!(
        "{whose}\nledger at version {}; latest version {}",
        m.version, m.latest
    );
    let mut t = table(&[
        "VERSION",
        "DESCRIPTION",
        "STATE",
        "APPLIED AT",
        "DURATION",
        "CHECKSUM",
    ]);
    for e in &m.migrations {
        let checksum = match e.checksum_matches {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        add_row(
            &mut t,
            [
                e.version.to_string(),
                e.description.clone(),
                e.state.as_str().to_owned(),
                e.applied_at.clone().unwrap_or_default(),
                e.execution_ms
                    .map(|ms| format!("{ms} ms"))
                    .unwrap_or_default(),
                checksum.to_owned(),
            ],
        );
    }
    if !m.migrations.is_empty() {
        out = format!("{out}\n{t}");
    }
    for e in &m.migrations {
        if let Some(statement) = &e.failed_statement {
            out.push_str(&format!(
                "\n  {} is dirty: it stopped at `{}`; see README \"Dirty migrations\"",
                e.version,
                escaped(statement)
            ));
        }
    }
    out
}

/// The verify report for people: a line per unit, then what drifted, then the counts.
fn verify_text(report: &VerifyReport) -> String {
    let mut t = table(&[
        "UNIT",
        "ENGINE",
        "STRATEGY",
        "OUTCOME",
        "REFERENCE",
        "DETAIL",
    ]);
    let mut details = String::new();
    for u in &report.units {
        let (outcome, reference, detail) = match &u.verdict {
            Verdict::Clean { reference } => ("clean", reference_cell(reference), String::new()),
            Verdict::Drifted {
                reference,
                ledger,
                schema,
            } => {
                details.push_str(&drift_lines(&u.unit, ledger, schema));
                let detail = format!("{} ledger, {} schema", ledger.len(), schema.len());
                ("DRIFTED", reference_cell(reference), detail)
            }
            Verdict::Failed { error } => {
                details.push_str(&format!("\nfailed: {}: {}", u.unit, escaped(error)));
                ("FAILED", String::new(), short(Some(error)))
            }
            Verdict::Skipped { reason } => ("skipped", String::new(), reason.clone()),
        };
        let unit = match u.tenants.as_slice() {
            [only] if *only == u.unit => u.unit.clone(),
            tenants => format!("{} ({})", u.unit, tenants.join(", ")),
        };
        add_row(
            &mut t,
            [
                unit,
                u.engine.to_string(),
                u.strategy.to_string(),
                outcome.to_owned(),
                reference,
                detail,
            ],
        );
    }
    let counts = format!(
        "{} unit(s) at latest version {}: {} clean, {} drifted, {} failed, {} skipped",
        report.units.len(),
        report.latest,
        report.clean(),
        report.drifted(),
        report.failed(),
        report.skipped()
    );
    match report.units.is_empty() {
        true => counts,
        false => format!("{t}{details}\n{counts}"),
    }
}

fn first_line(text: Option<&str>) -> &str {
    text.and_then(|t| t.lines().next()).unwrap_or_default()
}

fn reference_cell(reference: &Option<String>) -> String {
    reference
        .clone()
        .unwrap_or_else(|| "none: tables checked".to_owned())
}

/// What drifted on one unit, a line each.
fn drift_lines(unit: &str, ledger: &[LedgerProblem], schema: &[Drift]) -> String {
    let mut out = format!("\ndrifted: {unit}");
    for p in ledger {
        out.push_str(&format!("\n  ledger {}: {}", p.version, escaped(&p.detail)));
    }
    for d in schema {
        out.push_str(&format!("\n  {}", escaped(&d.to_string())));
    }
    out
}
