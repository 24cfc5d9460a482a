//! The request's unit of work over real HTTP: a handler that wrote and then answered with a
//! success status commits; one that wrote and then answered 4xx or 5xx commits nothing — on
//! each catalog engine and, on PostgreSQL, each strategy.
//!
//! The example service has no handler that writes and then refuses, so the service is served
//! here with one more route under the same layer: `POST /probe/{status}` writes a campaign
//! named `probe-<status>` and answers `status`.

mod common;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use tenantry::Strategy;
use tenantry::routing::Resolver;
use tenantry_axum::{CurrentTenant, TenantLayer, Unit};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

use common::{As, token_for, user};

on_each_backend!(the_status_a_handler_answers_decides_the_commit);

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
    drop(service);
    fx.cleanup().await;
}
