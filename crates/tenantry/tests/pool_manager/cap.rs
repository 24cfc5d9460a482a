//! Many concurrent units over many tenants, with a cap of three connections per server: the
//! server never counts more than three sessions of the tenants' roles (SQLite: the process
//! never holds more than three tenant files open), and every unit succeeds or fails with
//! `Error::Busy` only.

use tenantry::{Error, Strategy, Tenant, Tenantry};
use tenantry_testkit::Backend;

use crate::{Counter, Scene, eventually, limits, open_tenant_files, work};

const CAP: u32 = 3;
/// Tasks per tenant, each running units one after another.
const TASKS: usize = 3;
const UNITS: usize = 3;

async fn unit(process: &Tenantry, tenant: &Tenant, backend: Backend) -> tenantry::Result<()> {
    let pool = process.tenant_pool_for(tenant).await?;
    let mut tx = pool.begin().await?;
    let rows = tx.run_script(work(backend)).await.expect("the unit's work");
    assert_eq!(rows.len(), 1, "one count");
    tx.commit().await.expect("commit");
    Ok(())
}

/// What the server (or, for SQLite, the process's file table) and the manager count now:
/// both must be within the cap.
async fn sample(scene: &Scene, counter: &mut Counter, process: &Tenantry) {
    for stats in process.pool_stats() {
        assert!(stats.open <= CAP, "the manager counts {stats:?}");
    }
    let seen = match counter.sessions(&scene.roles).await {
        Some(n) => n,
        None => i64::try_from(open_tenant_files(&scene.fx)).expect("a count"),
    };
    assert!(seen <= i64::from(CAP), "the server counts {seen} sessions");
}

async fn the_server_never_sees_more_than_the_cap(backend: Backend, strategy: Strategy, n: usize) {
    let Some(scene) = Scene::new(backend, strategy, n).await else {
        return;
    };
    // SQLite keeps a closed connection's file open while another connection of the process
    // holds a lock on the same file (closing it would drop that lock): with two connections
    // per tenant the open files could outnumber the connections. One per tenant keeps the
    // count of open files the count of connections.
    let per_tenant = if backend == Backend::Sqlite { 1 } else { 2 };
    let process = scene.process(limits(CAP, per_tenant, 20_000, 60)).await;
    let mut counter = Counter::connect(backend).await;
    if backend == Backend::Sqlite {
        // The files the setup opened (creating and migrating the tenants) are closed on
        // SQLite's own threads after their connections are dropped: count from when they are.
        eventually("the setup's tenant files are closed", || async {
            open_tenant_files(&scene.fx) == 0
        })
        .await;
    }
    let mut load = tokio::task::JoinSet::new();
    for tenant in &scene.tenants {
        for _ in 0..TASKS {
            let process = process.clone();
            let tenant = tenant.clone();
            load.spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..UNITS {
                    outcomes.push((
                        tenant.slug.to_string(),
                        unit(&process, &tenant, backend).await,
                    ));
                }
                outcomes
            });
        }
    }
    let (mut served, mut busy) = (Vec::new(), 0);
    while !load.is_empty() {
        sample(&scene, &mut counter, &process).await;
        while let Some(done) = load.try_join_next() {
            for (slug, outcome) in done.expect("a load task") {
                match outcome {
                    Ok(()) => served.push(slug),
                    Err(Error::Busy { .. }) => busy += 1,
                    Err(e) => panic!("a unit of {slug} failed otherwise than busy: {e}"),
                }
            }
        }
    }
    served.sort();
    served.dedup();
    assert_eq!(served.len(), n, "every tenant was served ({busy} busy)");
    // Once the load is over, the server counts exactly the connections the manager keeps.
    counter.close().await;
    eventually("the server counts what the manager keeps open", || async {
        let open: u32 = process.pool_stats().iter().map(|s| s.open).sum();
        let seen = match scene.sessions().await {
            Some(n) => n,
            None => i64::try_from(open_tenant_files(&scene.fx)).expect("a count"),
        };
        seen == i64::from(open) && open > 0
    })
    .await;
    scene.cleanup(vec![process]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database() {
    the_server_never_sees_more_than_the_cap(Backend::Postgres, Strategy::Database, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared() {
    the_server_never_sees_more_than_the_cap(Backend::Postgres, Strategy::Shared, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_database() {
    the_server_never_sees_more_than_the_cap(Backend::Mysql, Strategy::Database, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files() {
    the_server_never_sees_more_than_the_cap(Backend::Sqlite, Strategy::Database, 8).await;
}
