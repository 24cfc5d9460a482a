//! At a maximum, `begin` waits for the acquire timeout and fails with `Error::Busy`, naming
//! the maximum; once a unit ends, it succeeds.

use std::time::Duration;

use tenantry::{BusyLimit, Error, Strategy};
use tenantry_testkit::Backend;

use crate::{Scene, limits};

const ACQUIRE_MS: u64 = 300;

fn busy(outcome: tenantry::Result<tenantry::TenantTx>, slug: &str, limit: BusyLimit) {
    match outcome {
        Err(Error::Busy {
            tenant,
            limit: l,
            waited,
            ..
        }) if tenant == slug && l == limit => {
            assert!(
                waited >= Duration::from_millis(ACQUIRE_MS),
                "waited {waited:?}"
            );
        }
        other => panic!("expected {slug} busy at {limit:?}, got {other:?}"),
    }
}

/// Every connection the server allows is in use by other tenants' open units: a third
/// tenant is busy, and served once one of them ends.
async fn busy_at_the_server_cap(backend: Backend, strategy: Strategy) {
    let Some(scene) = Scene::new(backend, strategy, 3).await else {
        return;
    };
    let process = scene.process(limits(2, 5, ACQUIRE_MS, 60)).await;
    let pool = |i: usize| process.tenant_pool(scene.tenants[i].slug.as_str());
    let (a, b, c) = (
        pool(0).await.expect("A"),
        pool(1).await.expect("B"),
        pool(2).await.expect("C"),
    );
    let held_a = a.begin().await.expect("A's unit");
    let held_b = b.begin().await.expect("B's unit");
    let stats = process.pool_stats();
    assert_eq!((stats[0].open, stats[0].in_use), (2, 2), "{stats:?}");
    busy(c.begin().await, "tenant-2", BusyLimit::Server { cap: 2 });
    held_a.commit().await.expect("A ends its unit");
    let mut tx = c
        .begin()
        .await
        .expect("C is served in place of A's idle connection");
    tx.run_script("SELECT COUNT(*) AS n FROM campaigns")
        .await
        .expect("C reads");
    tx.commit().await.expect("commit");
    assert_eq!(process.pool_stats()[0].open, 2);
    held_b.rollback().await.expect("B ends its unit");
    scene.cleanup(vec![process]).await;
}

/// A tenant holding all its connections is busy, other tenants are not; once one of its
/// units ends, it is served again.
async fn busy_at_the_tenant_maximum(backend: Backend, strategy: Strategy) {
    let Some(scene) = Scene::new(backend, strategy, 2).await else {
        return;
    };
    let process = scene.process(limits(10, 2, ACQUIRE_MS, 60)).await;
    let a = process.tenant_pool("tenant-0").await.expect("A");
    let first = a.begin().await.expect("A's first unit");
    let second = a.begin().await.expect("A's second unit");
    busy(a.begin().await, "tenant-0", BusyLimit::Tenant { max: 2 });
    // Another handle on the same tenant shares its maximum.
    let again = process
        .tenant_pool_for(&scene.tenants[0])
        .await
        .expect("A again");
    busy(
        again.begin().await,
        "tenant-0",
        BusyLimit::Tenant { max: 2 },
    );
    let b = process.tenant_pool("tenant-1").await.expect("B");
    b.begin()
        .await
        .expect("B is not held back by A")
        .rollback()
        .await
        .expect("rollback");
    first.rollback().await.expect("A ends a unit");
    let third = a.begin().await.expect("A is served again");
    assert_eq!(process.pool_stats()[0].in_use, 2);
    second.rollback().await.expect("rollback");
    third.rollback().await.expect("rollback");
    scene.cleanup(vec![process]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_busy_at_the_server_cap() {
    busy_at_the_server_cap(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_busy_at_the_server_cap() {
    busy_at_the_server_cap(Backend::Mysql, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_at_the_server_cap() {
    busy_at_the_server_cap(Backend::Sqlite, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_busy_at_the_tenant_maximum() {
    busy_at_the_tenant_maximum(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_busy_at_the_tenant_maximum() {
    busy_at_the_tenant_maximum(Backend::Postgres, Strategy::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_at_the_tenant_maximum() {
    busy_at_the_tenant_maximum(Backend::Sqlite, Strategy::Database).await;
}
