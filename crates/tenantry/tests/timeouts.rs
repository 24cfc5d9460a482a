//! Tenantry's own statements have a time limit on the server; migrations have their own
//! (none by default), since they may legitimately run long.

use sqlx::AssertSqlSafe;
use tenantry::Settings;
use tenantry::storage::Place;
use tenantry_testkit::{Backend, Fixture};

async fn own_statements_are_limited_and_migrations_are_not(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = fx
        .reopen(Settings {
            statement_timeout_secs: Some(1),
            ..Settings::default()
        })
        .await;
    let sleep = match backend {
        Backend::Postgres => "SELECT pg_sleep(2)",
        _ => "SELECT SLEEP(2)",
    };
    let server = t.catalog().server(&fx.server).await.expect("server");
    let mut admin = Place::of(&server, t.config())
        .admin_at(None)
        .await
        .expect("connect");
    let err = sqlx::raw_sql(AssertSqlSafe(sleep))
        .execute(&mut admin)
        .await
        .expect_err("a statement longer than the limit is cancelled");
    let text = err.to_string();
    assert!(
        text.contains("statement timeout") || text.contains("max_statement_time"),
        "{text}"
    );

    // A migration that runs longer than that limit is applied all the same.
    fx.write_migration(
        "20250101000009_slow.sql",
        &format!("CREATE TABLE slow_done (id INT);\n{sleep};\n"),
    );
    t.create_tenant(tenantry::NewTenant {
        slug: "acme".into(),
        server: Some(fx.server.clone()),
        ..Default::default()
    })
    .await
    .expect("a slow migration is not cut short");
    t.catalog().close().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    own_statements_are_limited_and_migrations_are_not(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql() {
    own_statements_are_limited_and_migrations_are_not(Backend::Mysql).await;
}
