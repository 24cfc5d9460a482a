//! Idle connections make room: at the cap, another pool's idle connection is closed for a
//! new one; and connections idle past the idle timeout are closed, their pools forgotten.

use tenantry::{Strategy, Tenantry};
use tenantry_testkit::Backend;

use crate::{Scene, eventually, limits, open_tenant_files, work};

async fn one_unit(process: &Tenantry, slug: &str, backend: Backend) {
    let pool = process.tenant_pool(slug).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    tx.run_script(work(backend)).await.expect("work");
    tx.commit().await.expect("commit");
}

/// How many connections of tenant `i`'s login the server counts.
async fn sessions_of(scene: &Scene, i: usize) -> i64 {
    scene
        .sessions_of(&scene.role_of(&scene.tenants[i]))
        .await
        .expect("a server count")
}

/// With a cap of one, B's unit closes A's idle connection and runs on a new one.
async fn an_idle_pool_is_evicted_at_the_cap(backend: Backend) {
    let Some(scene) = Scene::new(backend, Strategy::Database, 2).await else {
        return;
    };
    let process = scene.process(limits(1, 5, 5_000, 60)).await;
    one_unit(&process, "tenant-0", backend).await;
    let stats = process.pool_stats();
    assert_eq!((stats[0].open, stats[0].idle), (1, 1), "{stats:?}");
    if backend != Backend::Sqlite {
        eventually("A's idle connection is open on the server", || async {
            sessions_of(&scene, 0).await == 1
        })
        .await;
    }
    one_unit(&process, "tenant-1", backend).await;
    let stats = process.pool_stats();
    assert_eq!((stats[0].open, stats[0].idle), (1, 1), "{stats:?}");
    if backend == Backend::Sqlite {
        assert_eq!(open_tenant_files(&scene.fx), 1, "one tenant file open");
    } else {
        eventually("A's connection is gone from the server", || async {
            sessions_of(&scene, 0).await == 0
        })
        .await;
        assert_eq!(sessions_of(&scene, 1).await, 1, "B's connection is open");
    }
    scene.cleanup(vec![process]).await;
}

/// Connections idle for the idle timeout (1 s) are closed and their pools forgotten.
async fn idle_connections_are_closed_after_the_idle_timeout(backend: Backend, strategy: Strategy) {
    let Some(scene) = Scene::new(backend, strategy, 2).await else {
        return;
    };
    let process = scene.process(limits(3, 5, 5_000, 1)).await;
    // Two units of A at once, then one of B.
    let a = process.tenant_pool("tenant-0").await.expect("A");
    let (first, second) = (a.begin().await.expect("A"), a.begin().await.expect("A"));
    first.commit().await.expect("commit");
    second.commit().await.expect("commit");
    one_unit(&process, "tenant-1", backend).await;
    eventually(
        "idle connections are closed and their pools forgotten",
        || async {
            let stats = process.pool_stats();
            stats[0].open == 0 && stats[0].idle == 0 && stats[0].pools == 0
        },
    )
    .await;
    match scene.sessions().await {
        Some(_) => {
            eventually("the server counts no session", || async {
                scene.sessions().await == Some(0)
            })
            .await;
        }
        None => assert_eq!(open_tenant_files(&scene.fx), 0, "no tenant file open"),
    }
    // A forgotten pool serves again.
    one_unit(&process, "tenant-0", backend).await;
    scene.cleanup(vec![process]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_idle_pool_evicted() {
    an_idle_pool_is_evicted_at_the_cap(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_idle_pool_evicted() {
    an_idle_pool_is_evicted_at_the_cap(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idle_pool_evicted() {
    an_idle_pool_is_evicted_at_the_cap(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_idle_timeout() {
    idle_connections_are_closed_after_the_idle_timeout(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_idle_timeout() {
    idle_connections_are_closed_after_the_idle_timeout(Backend::Postgres, Strategy::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_idle_timeout() {
    idle_connections_are_closed_after_the_idle_timeout(Backend::Mysql, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idle_timeout() {
    idle_connections_are_closed_after_the_idle_timeout(Backend::Sqlite, Strategy::Database).await;
}
