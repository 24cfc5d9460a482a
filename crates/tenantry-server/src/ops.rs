//! Operations endpoints, without a key: `/healthz` (the process answers) and `/readyz` (the
//! catalog and every server answer, with timings and the pool manager's connections).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tenantry::session::ServerPoolStats;

use crate::AppState;

pub fn router(_: AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// One dependency's answer.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    millis: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    catalog: Check,
    servers: Vec<Check>,
    pools: Vec<ServerPoolStats>,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

async fn readyz(State(state): State<AppState>) -> Response {
    let t = &state.tenantry;
    let started = Instant::now();
    let servers = t.catalog().servers().await;
    let catalog = Check {
        name: "catalog".to_owned(),
        ok: servers.is_ok(),
        millis: millis(started.elapsed()),
        error: servers.as_ref().err().map(ToString::to_string),
    };
    let mut checks = Vec::new();
    for server in servers.unwrap_or_default() {
        let started = Instant::now();
        let answer = t.check_server(server.name.as_str()).await;
        checks.push(Check {
            name: server.name.to_string(),
            ok: answer.is_ok(),
            millis: millis(started.elapsed()),
            error: answer.err().map(|e| e.to_string()),
        });
    }
    let ready = catalog.ok && checks.iter().all(|c| c.ok);
    let body = axum::Json(Readiness {
        ready,
        catalog,
        servers: checks,
        pools: t.pool_stats(),
    });
    if ready {
        body.into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            body,
        )
            .into_response()
    }
}
