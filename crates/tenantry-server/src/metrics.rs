//! `/metrics` in the OpenMetrics text format: requests by route, method and status with
//! their latencies (kept by the middleware here), and, read at each scrape, tenants by
//! status and strategy, the items of running rollouts by state, and the pool manager's
//! connections per server. Every request runs in a `request` span (method, route, and the
//! `tenant_id` a handler records), ended by one log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tenantry::RolloutState;
use tracing::Instrument;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The request metrics of one server.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// Counts and times every request, in its `request` span.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        tenant_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let code = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status = code,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        )
    });
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            code: code.to_string(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(elapsed.as_secs_f64());
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    status: String,
    strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    rollout: String,
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    server: String,
    connections: String,
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let mut registry = Registry::with_prefix("tenantry");
    registry.register(
        "http_requests",
        "Requests answered, by method, route and status",
        state.metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer a request, by method and route",
        state.metrics.latency.clone(),
    );
    let t = &state.tenantry;
    let tenants = Family::<TenantLabels, Gauge>::default();
    let scrape_ok = Gauge::<i64>::default();
    let mut ok = true;
    match t.catalog().tenants().await {
        Ok(list) => {
            for tenant in list {
                tenants
                    .get_or_create(&TenantLabels {
                        status: tenant.status.to_string(),
                        strategy: tenant.strategy.to_string(),
                    })
                    .inc();
            }
        }
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e, "metrics: could not read tenants");
        }
    }
    registry.register("tenants", "Tenants by status and strategy", tenants);
    let items = Family::<RolloutLabels, Gauge>::default();
    match t.catalog().rollouts(100).await {
        Ok(rollouts) => {
            for r in rollouts.iter().filter(|r| r.state == RolloutState::Running) {
                let Ok(counts) = t.catalog().rollout_counts(&r.id).await else {
                    ok = false;
                    continue;
                };
                for c in counts {
                    items
                        .get_or_create(&RolloutLabels {
                            rollout: r.id.clone(),
                            kind: r.kind.clone(),
                            state: c.state.to_string(),
                        })
                        .inc_by(c.count);
                }
            }
        }
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e, "metrics: could not read rollouts");
        }
    }
    registry.register(
        "rollout_items",
        "Items of running rollouts by state (failed ones included)",
        items,
    );
    let pools = Family::<PoolLabels, Gauge>::default();
    for s in t.pool_stats() {
        let counts = [
            ("in_use", s.in_use as i64),
            ("idle", s.idle as i64),
            ("open", i64::from(s.open)),
            ("cap", i64::from(s.cap)),
            ("waiting", s.waiting as i64),
        ];
        for (kind, n) in counts {
            pools
                .get_or_create(&PoolLabels {
                    server: s.server.clone(),
                    connections: kind.to_owned(),
                })
                .set(n);
        }
    }
    registry.register(
        "pool_connections",
        "Application connections of this process per server: in use, idle, open, the cap, units waiting",
        pools,
    );
    scrape_ok.set(i64::from(ok));
    registry.register(
        "catalog_scrape_ok",
        "1 when this scrape read the catalog, 0 when it could not",
        scrape_ok,
    );
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
