//! A unit dropped without commit or rollback is rolled back, and its connection, reset,
//! serves the next unit: the same session, nothing written, no setting left.

use tenantry::{Engine, Error, Strategy, TenantTx};
use tenantry_testkit::Backend;

use crate::{Scene, limits};

/// The server's id of the unit's session (SQLite: none).
async fn session_id(tx: &mut TenantTx) -> Option<u64> {
    if let Some(pg) = tx.postgres() {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pg)
            .await
            .expect("backend pid");
        return Some(u64::try_from(pid).expect("a pid"));
    }
    if let Some(my) = tx.mysql() {
        let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(my)
            .await
            .expect("connection id");
        return Some(id);
    }
    None
}

async fn a_dropped_unit_is_rolled_back(backend: Backend, strategy: Strategy) {
    let Some(scene) = Scene::new(backend, strategy, 1).await else {
        return;
    };
    // One connection per tenant: the next unit waits for the dropped one's reset.
    let process = scene.process(limits(5, 1, 5_000, 60)).await;
    let tenant = &scene.tenants[0];
    let pool = process.tenant_pool_for(tenant).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let before = session_id(&mut tx).await;
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('dropped', '{}', 'x')",
        tenant.id
    ))
    .await
    .expect("write");
    if backend == Backend::Postgres {
        tx.run_script("SET statement_timeout = '4321ms'")
            .await
            .expect("a session setting");
    }
    drop(tx);

    let mut tx = pool.begin().await.expect("the next unit");
    assert_eq!(session_id(&mut tx).await, before, "the same session");
    let rows = tx
        .run_script("SELECT COUNT(*) AS n FROM campaigns WHERE id = 'dropped'")
        .await
        .expect("read");
    assert_eq!(
        rows[0]["n"],
        serde_json::json!(0),
        "the dropped unit wrote nothing"
    );
    if backend == Backend::Postgres {
        let rows = tx.run_script("SHOW statement_timeout").await.expect("show");
        assert_ne!(
            rows[0]["statement_timeout"],
            serde_json::json!("4321ms"),
            "the setting was reset"
        );
    }
    if backend == Backend::Sqlite {
        assert!(matches!(
            tx.as_postgres(),
            Err(Error::WrongEngine {
                engine: Engine::Sqlite,
                wanted: Engine::Postgres,
                ..
            })
        ));
    }
    tx.commit().await.expect("commit");
    let stats = process.pool_stats();
    assert_eq!((stats[0].open, stats[0].idle), (1, 1), "{stats:?}");
    scene.cleanup(vec![process]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database() {
    a_dropped_unit_is_rolled_back(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema() {
    a_dropped_unit_is_rolled_back(Backend::Postgres, Strategy::Schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared() {
    a_dropped_unit_is_rolled_back(Backend::Postgres, Strategy::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_database() {
    a_dropped_unit_is_rolled_back(Backend::Mysql, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file() {
    a_dropped_unit_is_rolled_back(Backend::Sqlite, Strategy::Database).await;
}
