//! Rendering for people (tables) and for programs (JSON with stable field names), and the
//! one way the CLI writes to standard output and standard error.

use std::fmt;
use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use tenantry::{Event, FleetReport, Outcome, Server, StatusRow, Tenant};

/// `println!` that never panics: writes a line to standard output and returns
/// `anyhow::Result<()>`. A reader that went away (`tenantry tenant list | head -1`) becomes
/// [`StdoutClosed`], which `main` turns into a quiet, successful exit.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a standard error nobody reads is not worth failing for.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_line(format_args!($($arg)*))
    };
}

/// Standard output was closed by its reader: the output is not wanted any more, which is
/// not a failure.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes one line to standard output (see [`outln!`]).
pub fn line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("write to standard output")),
    }
}

/// An error and its causes, each said once. The library's errors already say what their
/// sources said (so a fleet report or a log line is complete on its own): the chain stops at
/// the first of them. Above it, a cause whose text an outer message already contains is not
/// repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        // A database error straight from sqlx: its own text, once.
        let database = cause
            .downcast_ref::<sqlx::Error>()
            .filter(|e| e.as_database_error().is_some());
        let said = match database {
            Some(e) => tenantry::error::said(e),
            None => cause.to_string(),
        };
        if !text.contains(&said) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&said);
        }
        if database.is_some()
            || cause.is::<tenantry::Error>()
            || cause.is::<tenantry::error::DirtyFailure>()
        {
            break;
        }
    }
    text
}

/// Writes one line to standard error, ignoring failures (see [`errln!`]).
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// A long error shortened for a table cell.
fn short(error: Option<&str>) -> String {
    let Some(error) = error else {
        return String::new();
    };
    let line = error.lines().next().unwrap_or_default();
    if line.chars().count() > 90 {
        format!("{}…", line.chars().take(89).collect::<String>())
    } else {
        line.to_owned()
    }
}

pub fn tenants(tenants: &[Tenant]) -> Table {
    let mut t = table(&[
        "SLUG",
        "NAME",
        "STATUS",
        "STRATEGY",
        "SERVER",
        "STORAGE",
        "VERSION",
        "LAST ERROR",
    ]);
    for x in tenants {
        t.add_row(vec![
            x.slug.to_string(),
            x.name.clone(),
            x.status.to_string(),
            x.strategy.to_string(),
            x.server.to_string(),
            x.storage.to_string(),
            x.version.to_string(),
            short(x.last_error.as_deref()),
        ]);
    }
    t
}

pub fn tenant(x: &Tenant) -> Table {
    let mut t = table(&["FIELD", "VALUE"]);
    let rows = [
        ("id", x.id.to_string()),
        ("slug", x.slug.to_string()),
        ("name", x.name.clone()),
        ("status", x.status.to_string()),
        ("strategy", x.strategy.to_string()),
        ("server", x.server.to_string()),
        ("storage", x.storage.to_string()),
        ("version", x.version.to_string()),
        ("last_error", x.last_error.clone().unwrap_or_default()),
        ("created_at", x.created_at.clone()),
        ("updated_at", x.updated_at.clone()),
        ("deleted_at", x.deleted_at.clone().unwrap_or_default()),
    ];
    for (field, value) in rows {
        t.add_row(vec![field.to_owned(), value]);
    }
    t
}

pub fn status(rows: &[StatusRow]) -> Table {
    let mut t = table(&[
        "TENANT",
        "STATUS",
        "SERVER",
        "VERSION",
        "PENDING",
        "LAST ERROR",
    ]);
    for row in rows {
        let x = &row.tenant;
        t.add_row(vec![
            x.slug.to_string(),
            x.status.to_string(),
            x.server.to_string(),
            x.version.to_string(),
            row.pending.to_string(),
            short(x.last_error.as_deref()),
        ]);
    }
    t
}

pub fn servers(servers: &[Server]) -> Table {
    let mut t = table(&["NAME", "ENGINE", "URL", "CREATED"]);
    for s in servers {
        t.add_row(vec![
            s.name.to_string(),
            s.engine.to_string(),
            s.display_url(),
            s.created_at.clone(),
        ]);
    }
    t
}

pub fn events(events: &[Event]) -> Table {
    let mut t = table(&["AT", "TENANT", "ACTION", "OUTCOME", "DETAIL / ERROR"]);
    for e in events {
        let text = e.error.as_deref().or(e.detail.as_deref());
        t.add_row(vec![
            e.at.clone(),
            e.tenant.clone().unwrap_or_default(),
            e.action.clone(),
            e.outcome.clone(),
            short(text),
        ]);
    }
    t
}

/// The closing summary of a fleet migration, and the failed tenants with their reasons.
pub fn fleet(report: &FleetReport) -> String {
    let failed: Vec<(&str, &str)> = report.failed().collect();
    let mut out = format!(
        "{} tenant(s): {} migrated, {} already current, {} skipped, {} failed",
        report.tenants.len(),
        report.migrated(),
        report.current(),
        report.skipped(),
        failed.len()
    );
    let mut t = table(&["TENANT", "OUTCOME", "VERSION", "DETAIL"]);
    for r in &report.tenants {
        let (outcome, version, detail) = match &r.outcome {
            Outcome::Migrated { from, to, applied } => (
                "migrated",
                to.to_string(),
                format!("{from} -> {to}, {} applied", applied.len()),
            ),
            Outcome::Current { version } => ("current", version.to_string(), String::new()),
            Outcome::Failed { version, error } => {
                ("FAILED", version.to_string(), short(Some(error)))
            }
            Outcome::Skipped { reason } => ("skipped", String::new(), reason.clone()),
        };
        t.add_row(vec![r.tenant.clone(), outcome.to_owned(), version, detail]);
    }
    if !report.tenants.is_empty() {
        out = format!("{t}\n{out}");
    }
    for (tenant, error) in failed {
        out.push_str(&format!("\n  failed: {tenant}: {error}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::other("connection refused");
        let wrapped = anyhow::Error::new(tenantry::Error::Io {
            path: "x.db".into(),
            source: io,
        })
        .context("open the catalog");
        assert_eq!(
            error_text(&wrapped),
            "open the catalog: x.db: connection refused"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&plain), "outer: inner");
    }
}
