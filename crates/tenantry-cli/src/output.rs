//! Rendering for people (tables) and for programs (JSON with stable field names), and the
//! one way the CLI writes to standard output and standard error.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use tenantry::catalog::SecretInfo;
use tenantry::spares::SpareCount;
use tenantry::{
    ApiKey, Event, FleetReport, Outcome, Rollout, RolloutItem, Server, StatusRow, Tenant,
};

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
    written(out.write_fmt(args).and_then(|()| out.write_all(b"\n")))
}

/// Writes bytes to standard output as they are (a completion script ends its own lines),
/// then flushes them; a closed pipe is [`StdoutClosed`], as for [`outln!`].
pub fn raw(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    written(out.write_all(bytes).and_then(|()| out.flush()))
}

fn written(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
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
        let said = escaped(&said).into_owned();
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

/// Text safe to show on a terminal: control characters (C0 but the line break, DEL, C1,
/// so ESC and every terminal escape sequence) and bidirectional overrides are written as
/// escapes (`\u{1b}`, `\t`, `\r`), as JSON output escapes them. Tenant names, data, and
/// database messages reach a table cell only through this.
pub fn escaped(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Adds a row, every cell escaped.
pub(crate) fn add_row<S: AsRef<str>>(table: &mut Table, cells: impl IntoIterator<Item = S>) {
    table.add_row(
        cells
            .into_iter()
            .map(|c| escaped(c.as_ref()).into_owned())
            .collect::<Vec<_>>(),
    );
}

/// The rows `tenantry sql` returns, as a table: one column per field of the first row.
pub fn sql_rows(rows: &[serde_json::Map<String, serde_json::Value>]) -> Option<Table> {
    let first = rows.first()?;
    let header: Vec<String> = first.keys().map(|k| escaped(k).into_owned()).collect();
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    for row in rows {
        add_row(
            &mut table,
            row.values().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        );
    }
    Some(table)
}

/// A long error shortened for a table cell.
pub(crate) fn short(error: Option<&str>) -> String {
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
        add_row(
            &mut t,
            vec![
                x.slug.to_string(),
                x.name.clone(),
                x.status.to_string(),
                x.strategy.to_string(),
                x.server.to_string(),
                x.storage.to_string(),
                x.version.to_string(),
                short(x.last_error.as_deref()),
            ],
        );
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
        add_row(&mut t, vec![field.to_owned(), value]);
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
        add_row(
            &mut t,
            vec![
                x.slug.to_string(),
                x.status.to_string(),
                x.server.to_string(),
                x.version.to_string(),
                row.pending.to_string(),
                short(x.last_error.as_deref()),
            ],
        );
    }
    t
}

pub fn servers(servers: &[Server]) -> Table {
    let mut t = table(&[
        "NAME", "ENGINE", "URL", "CAPACITY", "REGION", "LABELS", "CREATED",
    ]);
    for s in servers {
        add_row(
            &mut t,
            vec![
                s.name.to_string(),
                s.engine.to_string(),
                s.display_url(),
                s.capacity.map(|c| c.to_string()).unwrap_or_default(),
                s.region.clone().unwrap_or_default(),
                s.labels.join(" "),
                s.created_at.clone(),
            ],
        );
    }
    t
}

pub fn spares(counts: &[SpareCount]) -> Table {
    let mut t = table(&["SERVER", "STRATEGY", "CURRENT", "BEHIND", "FAILED"]);
    for c in counts {
        add_row(
            &mut t,
            vec![
                c.server.clone(),
                c.strategy.to_string(),
                c.current.to_string(),
                c.behind.to_string(),
                c.failed.to_string(),
            ],
        );
    }
    t
}

pub fn events(events: &[Event]) -> Table {
    let mut t = table(&[
        "AT",
        "ACTOR",
        "TARGET",
        "ACTION",
        "OUTCOME",
        "DETAIL / ERROR",
    ]);
    for e in events {
        let text = e.error.as_deref().or(e.detail.as_deref());
        add_row(
            &mut t,
            vec![
                e.at.clone(),
                e.actor.clone().unwrap_or_default(),
                e.target.clone().unwrap_or_default(),
                e.action.clone(),
                e.outcome.clone(),
                short(text),
            ],
        );
    }
    t
}

pub fn secrets(secrets: &[SecretInfo]) -> Table {
    let mut t = table(&["NAME", "CREATED", "UPDATED"]);
    for s in secrets {
        add_row(
            &mut t,
            vec![s.name.clone(), s.created_at.clone(), s.updated_at.clone()],
        );
    }
    t
}

pub fn api_keys(keys: &[ApiKey]) -> Table {
    let mut t = table(&["NAME", "SCOPES", "TENANT", "CREATED", "BY", "REVOKED"]);
    for k in keys {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        add_row(
            &mut t,
            vec![
                k.name.clone(),
                scopes.join(" "),
                k.tenant.clone().or(k.tenant_id.clone()).unwrap_or_default(),
                k.created_at.clone(),
                k.created_by.clone(),
                k.revoked_at.clone().unwrap_or_default(),
            ],
        );
    }
    t
}

/// The closing summary of a fleet migration, and the failed tenants with their reasons.
/// Recent rollouts.
pub fn rollouts(rollouts: &[Rollout]) -> Table {
    let mut t = table(&[
        "ROLLOUT", "KIND", "STATE", "TARGET", "TENANTS", "STARTED", "BY",
    ]);
    for r in rollouts {
        add_row(
            &mut t,
            vec![
                r.id.clone(),
                r.kind.clone(),
                r.state.to_string(),
                r.target_version.map(|v| v.to_string()).unwrap_or_default(),
                r.total.to_string(),
                r.started_at.clone(),
                r.started_by.clone(),
            ],
        );
    }
    t
}

/// One rollout and each of its tenants' outcome.
pub fn rollout(r: &Rollout, items: &[RolloutItem]) -> String {
    let mut t = table(&["#", "WAVE", "TENANT", "STATE", "FROM", "TO", "ERROR"]);
    for i in items {
        add_row(
            &mut t,
            vec![
                i.position.to_string(),
                i.wave.to_string(),
                i.tenant.clone().unwrap_or_else(|| i.tenant_id.clone()),
                i.state.to_string(),
                i.from_version.map(|v| v.to_string()).unwrap_or_default(),
                i.to_version.map(|v| v.to_string()).unwrap_or_default(),
                short(i.error.as_deref()),
            ],
        );
    }
    format!(
        "rollout {} ({}, {}): target {}, started {} by {}{}\n{t}",
        r.id,
        r.kind,
        r.state,
        r.target_version.unwrap_or(0),
        r.started_at,
        r.started_by,
        r.finished_at
            .as_deref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    )
}

pub fn fleet(report: &FleetReport, omitted: usize) -> String {
    let out = format!(
        "{} tenant(s): {} migrated, {} already current, {} skipped, {} failed",
        report.tenants.len(),
        report.migrated(),
        report.current(),
        report.skipped(),
        report.failed().count()
    );
    with_table(report, out, omitted)
}

/// The closing summary of a revert (`migrate down`), and the failed tenants with their
/// reasons.
pub fn revert(report: &FleetReport, omitted: usize) -> String {
    let out = format!(
        "{} tenant(s): {} reverted, {} already at the target, {} skipped, {} failed",
        report.tenants.len(),
        report.reverted(),
        report.current(),
        report.skipped(),
        report.failed().count()
    );
    with_table(report, out, omitted)
}

/// The closing summary of an SQL run (`tenantry run`), and the failed tenants with their
/// reasons.
pub fn sql_run(report: &FleetReport, omitted: usize) -> String {
    let ran = report
        .tenants
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Ran { .. }))
        .count();
    let out = format!(
        "{} tenant(s): {ran} ran, {} skipped, {} failed",
        report.tenants.len(),
        report.skipped(),
        report.failed().count()
    );
    with_table(report, out, omitted)
}

/// Above this many tenants, a report's table lists only those that failed or were skipped.
const FULL_TABLE_UP_TO: usize = 50;

/// A table of each tenant's outcome above `summary` (of a large report: only the tenants
/// that failed or were skipped), then each failure in full. `omitted`: tenants that
/// succeeded and are not in the report at all (a runner keeps a bounded report).
fn with_table(report: &FleetReport, summary: String, omitted: usize) -> String {
    let mut out = match omitted {
        0 => summary,
        _ => format!(
            "{} tenant(s): {} skipped, {} failed, the rest succeeded",
            report.tenants.len() + omitted,
            report.skipped(),
            report.failed().count()
        ),
    };
    let mut t = table(&["TENANT", "OUTCOME", "VERSION", "DETAIL"]);
    let whole = omitted == 0 && report.tenants.len() <= FULL_TABLE_UP_TO;
    let mut rows = 0;
    for r in &report.tenants {
        if !whole && !matches!(r.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }) {
            continue;
        }
        let (outcome, version, detail) = outcome_cells(&r.outcome);
        add_row(
            &mut t,
            vec![r.tenant.clone(), outcome.to_owned(), version, detail],
        );
        rows += 1;
    }
    if rows > 0 {
        out = format!("{t}\n{out}");
    }
    if !whole {
        out.push_str(&format!(
            "\n  ({} tenant(s) that succeeded are not listed; --json prints every tenant)",
            report.tenants.len() - rows + omitted
        ));
    }
    for (tenant, error) in report.failed() {
        out.push_str(&format!("\n  failed: {tenant}: {}", escaped(error)));
    }
    out
}

/// An outcome as table cells: what happened, the version it left, a detail.
fn outcome_cells(outcome: &Outcome) -> (&'static str, String, String) {
    let list = |versions: &[i64]| {
        versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match outcome {
        Outcome::Migrated { from, to, applied } => (
            "migrated",
            to.to_string(),
            format!("{from} -> {to}, applied {}", list(applied)),
        ),
        Outcome::Reverted { from, to, reverted } => (
            "reverted",
            to.to_string(),
            format!("{from} -> {to}, reverted {}", list(reverted)),
        ),
        Outcome::Current { version } => ("current", version.to_string(), String::new()),
        Outcome::Failed { version, error } => ("FAILED", version.to_string(), short(Some(error))),
        Outcome::Skipped { reason } => ("skipped", String::new(), reason.clone()),
        Outcome::Ran { rows, committed } => (
            "ran",
            String::new(),
            match committed {
                true => format!("{} row(s)", rows.len()),
                false => format!("{} row(s), rolled back", rows.len()),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_line_breaks_kept() {
        assert_eq!(escaped("plain ✓"), "plain ✓");
        assert_eq!(
            escaped("\u{1b}[31mred\tx\r\n\u{7f}\u{9b}\u{202e}"),
            "\\u{1b}[31mred\\tx\\r\n\\u{7f}\\u{9b}\\u{202e}"
        );
    }

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
