//! What `tenantry bench route` reports: its figures (JSON field names are stable) and their
//! tables.

use std::collections::BTreeMap;

use serde::Serialize;

use super::load::Run;
use super::stats::round3;

#[derive(Debug, Serialize)]
pub(super) struct Figures {
    /// `one_tenant` (layer against plain pool) or `many_tenants`.
    pub mode: &'static str,
    pub engine: String,
    pub strategy: String,
    pub tenants: usize,
    pub clients: usize,
    pub warmup_s: u64,
    pub duration_s: u64,
    /// `pool_max_per_server`.
    pub cap: u32,
    /// `pool_max_connections`, also the plain pool's maximum.
    pub tenant_pool_max: u32,
    pub rows_per_tenant: u32,
    pub create_s: f64,
    pub seed_s: f64,
    /// Through the layer, the query in a [`tenantry_axum::Unit`].
    pub layer: Run,
    /// One tenant: through the layer, the query on the plain pool (no unit).
    pub layer_plain: Option<Run>,
    /// One tenant: the plain pool, no transaction.
    pub plain: Option<Run>,
    /// One tenant: the plain pool, the query in a transaction.
    pub plain_tx: Option<Run>,
    pub layer_vs_plain: Option<Compare>,
    pub layer_vs_plain_tx: Option<Compare>,
    pub layer_plain_vs_plain: Option<Compare>,
    /// Where `server_sessions_max` comes from.
    pub connections_source: &'static str,
    /// During the layer run: the most sessions of the bench's roles the server reported
    /// (SQLite: the pool manager's count).
    pub server_sessions_max: Option<u32>,
    pub pool_open_max: u32,
    pub connection_polls: u64,
    /// The server's `max_connections`, less its superuser reserve.
    pub server_max_connections: Option<u32>,
    /// Errors of the layer run other than `busy`.
    pub unexpected_errors: u64,
    pub peak_rss_mib: Option<f64>,
    pub cleanup_s: f64,
}

/// The layer's figures against a plain pool's.
#[derive(Debug, Serialize)]
pub(super) struct Compare {
    /// Layer requests/s divided by plain requests/s.
    pub throughput_ratio: f64,
    /// Layer p50 minus plain p50, milliseconds.
    pub p50_diff_ms: f64,
    /// Layer p99 minus plain p99, milliseconds.
    pub p99_diff_ms: f64,
}

impl Compare {
    pub(super) fn of(layer: &Run, plain: &Run) -> Compare {
        Compare {
            throughput_ratio: round3(layer.requests_per_s / plain.requests_per_s.max(1e-9)),
            p50_diff_ms: round3(layer.p50_ms - plain.p50_ms),
            p99_diff_ms: round3(layer.p99_ms - plain.p99_ms),
        }
    }
}

pub(super) fn print_tables(f: &Figures) -> anyhow::Result<()> {
    let mut runs = comfy_table::Table::new();
    runs.set_header(vec![
        "RUN",
        "REQUESTS/S",
        "P50 MS",
        "P99 MS",
        "MAX MS",
        "REQUESTS",
        "ERRORS",
    ]);
    let rows = [
        ("layer, unit", Some(&f.layer)),
        ("layer, plain pool", f.layer_plain.as_ref()),
        ("plain pool", f.plain.as_ref()),
        ("plain pool, in a transaction", f.plain_tx.as_ref()),
    ];
    for (name, run) in rows {
        let Some(run) = run else { continue };
        runs.add_row(vec![
            name.to_owned(),
            format!("{:.2}", run.requests_per_s),
            format!("{:.3}", run.p50_ms),
            format!("{:.3}", run.p99_ms),
            format!("{:.3}", run.max_ms),
            run.requests.to_string(),
            errors_text(&run.errors),
        ]);
    }
    outln!("{runs}")?;
    let mut figures = comfy_table::Table::new();
    figures.set_header(vec!["FIGURE", "VALUE"]);
    let value = serde_json::to_value(f)?;
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            if matches!(k.as_str(), "layer" | "layer_plain" | "plain" | "plain_tx") {
                continue;
            }
            let text = match v {
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            figures.add_row(vec![k.clone(), text]);
        }
    }
    outln!("{figures}")?;
    Ok(())
}

fn errors_text(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".to_owned();
    }
    errors
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
