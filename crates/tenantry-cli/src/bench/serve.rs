//! The HTTP service under load: one handler, one indexed `SELECT` of a document by id, served
//! four ways on one loopback listener:
//!
//! - `/layer/documents/{n}`: through [`TenantLayer`] and the [`Unit`] extractor (the tenant
//!   named by the `X-Tenant` header);
//! - `/layer-plain/documents/{n}`: through [`TenantLayer`] (the tenant resolved, the
//!   request in its span), the query on the plain pool ([`super::plain`]), no [`Unit`]: the
//!   layer's own cost, without the pool manager and the transaction;
//! - `/plain/documents/{n}`: on a plain sqlx pool of the tenant's own database, no
//!   transaction (what an application without Tenantry would write);
//! - `/plain-tx/documents/{n}`: the same pool, the query in a transaction as a [`Unit`] runs
//!   it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde_json::json;
use tenantry::routing::Resolver;
use tenantry::{Engine, TenantTx};
use tenantry_axum::{CurrentTenant, TenantLayer, Unit};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fleet::doc_id;
use super::plain::{Plain, Row, SQL, SQL_PG};

/// How long a handler's query may take.
const QUERY_WAIT: Duration = Duration::from_secs(10);

/// How long the service may take to finish its connections once asked to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The service: the layered route, and the plain ones when a plain pool is given.
pub(super) fn app(resolver: Resolver, plain: Option<Arc<Plain>>) -> Router {
    let layer = TenantLayer::new(resolver);
    let layered = Router::new()
        .route("/layer/documents/{n}", get(layer_document))
        .layer(layer.clone());
    let app = Router::new().merge(layered);
    match plain {
        Some(plain) => app
            .merge(
                Router::new()
                    .route("/layer-plain/documents/{n}", get(layer_plain_document))
                    .with_state(Arc::clone(&plain))
                    .layer(layer),
            )
            .merge(
                Router::new()
                    .route("/plain/documents/{n}", get(plain_document))
                    .route("/plain-tx/documents/{n}", get(plain_tx_document))
                    .with_state(plain),
            ),
        None => app,
    }
}

async fn layer_document(
    Path(n): Path<u32>,
    CurrentTenant(tenant): CurrentTenant,
    mut unit: Unit,
) -> Response {
    answer(find_in_unit(&mut unit, &tenant.id.to_string(), &doc_id(n))).await
}

async fn layer_plain_document(
    Path(n): Path<u32>,
    CurrentTenant(tenant): CurrentTenant,
    State(plain): State<Arc<Plain>>,
) -> Response {
    answer(plain.pool.find(&tenant.id.to_string(), &doc_id(n))).await
}

async fn plain_document(Path(n): Path<u32>, State(plain): State<Arc<Plain>>) -> Response {
    answer(plain.pool.find(&plain.tenant_id, &doc_id(n))).await
}

async fn plain_tx_document(Path(n): Path<u32>, State(plain): State<Arc<Plain>>) -> Response {
    answer(plain.pool.find_in_tx(&plain.tenant_id, &doc_id(n))).await
}

/// The query on the unit's connection, whatever its engine.
async fn find_in_unit(unit: &mut TenantTx, tenant_id: &str, id: &str) -> sqlx::Result<Option<Row>> {
    let wrong = |e: tenantry::Error| sqlx::Error::Protocol(e.to_string());
    match unit.engine() {
        Engine::Postgres => {
            sqlx::query_as(SQL_PG)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(unit.as_postgres().map_err(wrong)?)
                .await
        }
        Engine::Mysql => {
            sqlx::query_as(SQL)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(unit.as_mysql().map_err(wrong)?)
                .await
        }
        Engine::Sqlite => {
            sqlx::query_as(SQL)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(unit.as_sqlite().map_err(wrong)?)
                .await
        }
    }
}

/// The query's answer: the document, `not_found`, `busy` (no connection in time), `timeout`
/// (no answer within [`QUERY_WAIT`]) or `internal`.
async fn answer(query: impl Future<Output = sqlx::Result<Option<Row>>>) -> Response {
    match tokio::time::timeout(QUERY_WAIT, query).await {
        Ok(Ok(Some((id, storage_path)))) => {
            axum::Json(json!({ "id": id, "storage_path": storage_path })).into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "not_found"),
        Ok(Err(sqlx::Error::PoolTimedOut)) => error(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        Ok(Err(e)) => internal(e),
        Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "timeout"),
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "query failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

/// An error in the shape of Tenantry's refusals: `{"error": {"code", "status"}}`.
fn error(status: StatusCode, code: &str) -> Response {
    let body = json!({ "error": { "code": code, "status": status.as_u16() } });
    (status, axum::Json(body)).into_response()
}

/// The service, listening on a loopback port of its own.
pub(super) struct Served {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

pub(super) async fn serve(app: Router) -> anyhow::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listen on a loopback port")?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Served { addr, stop, task })
}

impl Served {
    /// Stops listening and waits, a little, for the connections to finish.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(SHUTDOWN_WAIT, self.task)
            .await
            .is_err()
        {
            tracing::debug!("the bench service did not stop in time");
        }
    }
}
