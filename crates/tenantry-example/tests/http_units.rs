//! The request's unit of work over real HTTP: a handler that wrote and then answered with a
//! success status commits; one that wrote and then answered 4xx or 5xx commits nothing — on
//! each catalog engine and, on PostgreSQL, each strategy.
//!
//! The example service has no handler that writes and then refuses, nor one that keeps its
//! unit open, so the service is served here with more routes under the same layer:
//! `POST /probe/{status}` writes a campaign named `probe-<status>` and answers `status`;
//! `GET /hold` keeps its unit until the test lets it go. A tenant or server at its limit is
//! answered `busy` (503, `Retry-After`), and served again once the unit ends.

mod common;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tenantry::Strategy;
use tenantry::routing::Resolver;
use tenantry_axum::{CurrentTenant, TenantLayer, Unit};
use tenantry_testkit::{Backend, Fixture, on_each_backend};
use tokio::sync::{Notify, mpsc};

use common::{As, json_of, refusal_of, token_for, user, who};

on_each_backend!(
    the_status_a_handler_answers_decides_the_commit,
    a_tenant_or_server_at_its_limit_is_answered_busy,
);

async fn probe(
    Path(status): Path<u16>,
    CurrentTenant(tenant): CurrentTenant,
    mut unit: Unit,
) -> StatusCode {
    // Ids and the name are ULID and digit characters only: safe as literals.
    let sql = format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{}', '{}', 'probe-{status}')",
        ulid::Ulid::new(),
        tenant.id,
    );
    unit.run_script(&sql).await.expect("insert a campaign");
    StatusCode::from_u16(status).expect("a status")
}

/// A handler that asks for the unit twice.
async fn twice(_first: Unit, _second: Unit) -> StatusCode {
    StatusCode::OK
}

async fn the_status_a_handler_answers_decides_the_commit(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let strategies: &[Strategy] = match backend {
        Backend::Postgres => &[Strategy::Database, Strategy::Schema, Strategy::Shared],
        Backend::Sqlite | Backend::Mysql => &[Strategy::Database],
    };
    let emma = user(&fx.tenantry, "emma@example.com").await;
    let mut tenants = Vec::new();
    for (i, strategy) in strategies.iter().enumerate() {
        let slug = format!("t{i}");
        tenants.push(fx.create_with(&slug, *strategy).await.expect("create"));
        fx.tenantry
            .add_member(&emma, &slug, "employee")
            .await
            .expect("member");
    }
    let tenantry = fx.reopen(common::routing(&["header"])).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let probes = axum::Router::new()
        .route("/probe/{status}", post(probe))
        .route("/twice", get(twice))
        .layer(TenantLayer::new(resolver.clone()));
    let service = common::serve_router(tenantry_example::app(resolver).merge(probes)).await;
    let token = token_for(&emma);

    let committed = [200, 201, 204, 303];
    let rolled_back = [400, 404, 409, 422, 500, 503];
    for tenant in &tenants {
        let who = As {
            host: None,
            tenant: Some(tenant.slug.as_str()),
            token: Some(&token),
        };
        for status in committed.iter().chain(&rolled_back) {
            let response = who
                .apply(service.post(&format!("/probe/{status}")))
                .send()
                .await
                .expect("POST /probe");
            assert_eq!(response.status().as_u16(), *status, "{}", tenant.strategy);
        }
        for status in committed.iter().chain(&rolled_back) {
            let written = fx
                .scalar(
                    tenant,
                    &format!(
                        "SELECT COUNT(*) FROM campaigns WHERE tenant_id = '{}' \
                         AND name = 'probe-{status}'",
                        tenant.id
                    ),
                )
                .await;
            let expected = i64::from(committed.contains(status));
            assert_eq!(written, expected, "{} answering {status}", tenant.strategy);
        }
    }
    // A second `Unit` in one handler is refused rather than waiting on the first forever.
    let who = As {
        host: None,
        tenant: Some(tenants[0].slug.as_str()),
        token: Some(&token),
    };
    let response = who
        .apply(service.get("/twice"))
        .send()
        .await
        .expect("GET /twice");
    assert_eq!(refusal_of(response).await, (503, "unavailable".to_owned()));
    drop(service);
    fx.cleanup().await;
}

/// What `GET /hold` tells the test (its unit is open) and waits for (let it go).
#[derive(Clone)]
struct Hold {
    entered: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

async fn hold(State(hold): State<Hold>, mut unit: Unit) -> StatusCode {
    unit.run_script("SELECT 1").await.expect("a query");
    hold.entered.send(()).expect("the test listens");
    hold.release.notified().await;
    StatusCode::OK
}

async fn a_tenant_or_server_at_its_limit_is_answered_busy(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let emma = user(&fx.tenantry, "emma@example.com").await;
    for slug in ["acme", "globex"] {
        fx.create(slug).await.expect("create");
        fx.tenantry
            .add_member(&emma, slug, "employee")
            .await
            .expect("member");
    }
    // One unit per tenant, one connection per server, and a short wait for either.
    let tenantry = fx
        .reopen(tenantry::Settings {
            pool_max_connections: Some(1),
            pool_max_per_server: Some(1),
            pool_acquire_timeout_ms: Some(200),
            ..common::routing(&["header"])
        })
        .await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let (entered, mut inside) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let holds = axum::Router::new()
        .route("/hold", get(hold))
        .layer(TenantLayer::new(resolver.clone()))
        .with_state(Hold {
            entered,
            release: Arc::clone(&release),
        });
    let service = common::serve_router(tenantry_example::app(resolver).merge(holds)).await;
    let token = token_for(&emma);
    let acme = who(None, Some("acme"), Some(&token));
    let globex = who(None, Some("globex"), Some(&token));

    let held = tokio::spawn(acme.apply(service.get("/hold")).send());
    inside.recv().await.expect("the unit is open");
    for (what, at) in [("the tenant's limit", &acme), ("the server's cap", &globex)] {
        let response = common::get(&service, "/documents", at).await;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.to_str().expect("ASCII").to_owned());
        assert_eq!(
            refusal_of(response).await,
            (503, "busy".to_owned()),
            "{what}"
        );
        assert_eq!(retry_after.as_deref(), Some("1"), "{what}");
    }

    release.notify_one();
    let response = held.await.expect("joined").expect("GET /hold");
    assert_eq!(response.status().as_u16(), 200);
    // The connection came back: each tenant is served again, one after the other.
    for at in [&globex, &acme] {
        let (status, rows) = json_of(common::get(&service, "/documents", at).await).await;
        assert_eq!((status, rows), (200, serde_json::json!([])), "{at:?}");
    }
    drop(service);
    fx.cleanup().await;
}
