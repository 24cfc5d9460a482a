//! Suspend and delete revoke access everywhere, at once: a second `Tenantry` (standing for
//! another process) that already holds the tenant's pool, an idle connection and a unit of
//! work in flight, can do nothing with them once `suspend` or `delete` has returned; `resume`
//! restores access; other tenants are untouched.

use tenantry::{Error, Settings, Status, Strategy, TenantPool, TenantTx, Tenantry};
use tenantry_testkit::{Backend, Fixture};

async fn count(tx: &mut TenantTx) -> Result<usize, sqlx::Error> {
    Ok(tx.run_script("SELECT id FROM campaigns").await?.len())
}

/// A unit of work that must succeed.
async fn works(pool: &TenantPool, tenant_id: &str, id: &str) {
    let mut tx = pool.begin().await.expect("begin");
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{id}', '{tenant_id}', 'x')"
    ))
    .await
    .expect("write");
    tx.commit().await.expect("commit");
}

/// `begin` refused with the tenant's status.
async fn refused(pool: &TenantPool, status: Status) {
    match pool.begin().await {
        Err(Error::InvalidTransition { status: s, .. }) if s == status => {}
        other => panic!("expected a refusal as {status}, got {other:?}"),
    }
}

async fn rows_of(fx: &Fixture, slug: &str) -> usize {
    let tenant = fx.tenant(slug).await;
    usize::try_from(
        fx.scalar(
            &tenant,
            &format!(
                "SELECT COUNT(*) FROM campaigns WHERE tenant_id = '{}'",
                tenant.id
            ),
        )
        .await,
    )
    .expect("count")
}

async fn suspend_and_delete_revoke_access_in_every_process(backend: Backend, strategy: Strategy) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create_with("acme", strategy).await.expect("acme");
    let other = fx.create_with("other", strategy).await.expect("other");
    let acme_id = acme.id.to_string();
    // The other process, with its pool, an idle connection and a unit of work in flight.
    let elsewhere: Tenantry = fx
        .reopen(Settings {
            pool_max_connections: Some(2),
            ..Settings::default()
        })
        .await;
    let pool = elsewhere.tenant_pool("acme").await.expect("pool");
    works(&pool, &acme_id, "before").await;
    let mut in_flight = pool.begin().await.expect("begin");
    assert_eq!(count(&mut in_flight).await.expect("read"), 1);

    fx.tenantry.suspend_tenant("acme").await.expect("suspend");

    // The unit in flight can neither finish its work nor commit it.
    let late = async {
        in_flight
            .run_script(&format!(
                "INSERT INTO campaigns (id, tenant_id, name) VALUES ('late', '{acme_id}', 'x')"
            ))
            .await?;
        in_flight.commit().await
    }
    .await;
    assert!(late.is_err(), "a unit in flight committed after suspend");
    assert_eq!(
        rows_of(&fx, "acme").await,
        1,
        "nothing written after suspend"
    );
    refused(&pool, Status::Suspended).await;
    assert!(matches!(
        elsewhere.tenant_pool("acme").await,
        Err(Error::InvalidTransition {
            status: Status::Suspended,
            ..
        })
    ));
    // Other tenants, of the same pool when shared, are untouched.
    let other_pool = elsewhere.tenant_pool("other").await.expect("other's pool");
    works(&other_pool, &other.id.to_string(), "o1").await;

    fx.tenantry.resume_tenant("acme").await.expect("resume");
    works(&pool, &acme_id, "after-resume").await;

    fx.tenantry
        .delete_tenant("acme", false)
        .await
        .expect("delete");
    refused(&pool, Status::Deleted).await;
    works(&other_pool, &other.id.to_string(), "o2").await;
    elsewhere.catalog().close().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database() {
    suspend_and_delete_revoke_access_in_every_process(Backend::Sqlite, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database() {
    suspend_and_delete_revoke_access_in_every_process(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema() {
    suspend_and_delete_revoke_access_in_every_process(Backend::Postgres, Strategy::Schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared() {
    suspend_and_delete_revoke_access_in_every_process(Backend::Postgres, Strategy::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_database() {
    suspend_and_delete_revoke_access_in_every_process(Backend::Mysql, Strategy::Database).await;
}

/// Suspending the last tenant of a shared pool leaves every other pool serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_a_pools_last_tenant_leaves_other_pools_serving() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let admin = tenantry_testkit::postgres_url();
    let (url, database) =
        tenantry_testkit::fresh_postgres_database(&admin, "tenantry_test_server").await;
    fx.tenantry
        .add_server("second", &url)
        .await
        .expect("a second server");
    fx.create_with("solo", Strategy::Shared)
        .await
        .expect("the first pool's only tenant");
    let other = fx
        .tenantry
        .create_tenant(tenantry::NewTenant {
            slug: "elsewhere".into(),
            server: Some("second".into()),
            strategy: Some(Strategy::Shared),
            ..tenantry::NewTenant::default()
        })
        .await
        .expect("the second pool's tenant");
    let process = fx.reopen(Settings::default()).await;
    let pool = process.tenant_pool("elsewhere").await.expect("pool");
    works(&pool, &other.id.to_string(), "before").await;
    fx.tenantry.suspend_tenant("solo").await.expect("suspend");
    works(&pool, &other.id.to_string(), "after").await;
    let fresh = fx.reopen(Settings::default()).await;
    let pool = fresh.tenant_pool("elsewhere").await.expect("pool");
    works(&pool, &other.id.to_string(), "fresh").await;
    process.catalog().close().await;
    fresh.catalog().close().await;
    fx.cleanup().await;
    tenantry_testkit::drop_postgres_database(&admin, &database).await;
}

/// A shared tenant's unit in flight cannot escape a suspend by renaming itself: units are
/// marked by a lock the tenant's SQL cannot drop, and ended by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_shared_unit_in_flight_is_ended_by_suspend() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let acme = fx
        .create_with("acme", Strategy::Shared)
        .await
        .expect("acme");
    let elsewhere = fx.reopen(Settings::default()).await;
    let pool = elsewhere.tenant_pool("acme").await.expect("pool");
    let mut in_flight = pool.begin().await.expect("begin");
    in_flight
        .run_script(&format!(
            "SELECT set_config('application_name', 'innocent', true); \
             INSERT INTO campaigns (id, tenant_id, name) VALUES ('late', '{}', 'x')",
            acme.id
        ))
        .await
        .expect("write before the suspend");
    fx.tenantry.suspend_tenant("acme").await.expect("suspend");
    assert!(
        in_flight.commit().await.is_err(),
        "a renamed unit committed after suspend"
    );
    fx.tenantry.resume_tenant("acme").await.expect("resume");
    assert_eq!(rows_of(&fx, "acme").await, 0, "nothing written by the unit");
    elsewhere.catalog().close().await;
    fx.cleanup().await;
}
