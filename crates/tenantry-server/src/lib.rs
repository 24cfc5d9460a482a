//! The Tenantry control plane over HTTP ([docs/0004](../../../docs/0004-control-plane.md)):
//! a versioned JSON API (`/v1/…`) over the same library the CLI uses, behind API keys with
//! scopes, its OpenAPI document at `/openapi.json`, `/healthz`, `/readyz`, `/metrics`, and
//! the web console at `/`.
//!
//! API boundary: [`app`] builds the router; [`serve`] runs it on a listener until a
//! shutdown signal, then stops the rollouts it runs so they stay resumable.

mod api;
mod auth;
mod body;
mod console;
mod jobs;
mod metrics;
mod openapi;
mod ops;
mod problem;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tenantry::Tenantry;
use tokio::net::TcpListener;

pub use problem::Problem;

/// How the server guards itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Failed authentications one client address may make within `failure_window` before
    /// it is told to wait (`429`).
    pub failure_budget: u32,
    pub failure_window: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            body_limit: 64 * 1024,
            failure_budget: 10,
            failure_window: Duration::from_secs(60),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub tenantry: Tenantry,
    pub throttle: Arc<auth::Throttle>,
    pub jobs: Arc<jobs::Jobs>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    fn new(tenantry: Tenantry, options: &Options) -> AppState {
        AppState {
            tenantry,
            throttle: Arc::new(auth::Throttle::new(
                options.failure_budget,
                options.failure_window,
            )),
            jobs: Arc::new(jobs::Jobs::default()),
            metrics: Arc::new(metrics::Metrics::default()),
        }
    }
}

/// The whole application: the API under `/v1`, the document, the operations endpoints.
pub fn app(tenantry: Tenantry, options: &Options) -> Router {
    app_with(AppState::new(tenantry, options), options)
}

fn app_with(state: AppState, options: &Options) -> Router {
    let (api, document) = api::router(state.clone());
    let document = Arc::new(openapi::finish(document));
    Router::new()
        .merge(api)
        .merge(ops::router(state.clone()))
        .merge(openapi::router(document))
        .merge(console::router())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .fallback(problem::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(options.body_limit))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes; then asks the rollouts
/// this server runs to stop after the tenants in flight, and waits for them.
pub async fn serve(
    tenantry: Tenantry,
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(tenantry, &options);
    let jobs = state.jobs.clone();
    let app = app_with(state, &options);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    jobs.stop_all().await;
    Ok(())
}
