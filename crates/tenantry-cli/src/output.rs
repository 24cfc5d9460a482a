//! Rendering for people (tables) and for programs (JSON with stable field names).

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use tenantry::{Event, FleetReport, Outcome, Server, StatusRow, Tenant};

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
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
