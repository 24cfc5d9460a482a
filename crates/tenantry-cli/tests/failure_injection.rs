//! Failure injection: a runner killed mid-migration, and a tenant server that goes away.

mod common;

use std::time::{Duration, Instant};

use sqlx::Connection;

use common::{ok, run, stderr, stdout, tenantry};
use tenantry::{NewTenant, Status};
use tenantry_testkit::{Backend, Fixture, TempCluster, on_transactional_backends};

// A killed MySQL migration is dirty instead: see crates/tenantry/tests/dirty.rs.
on_transactional_backends!(
    a_create_killed_mid_migration_is_never_active_and_repair_completes_it,
    a_migrate_killed_mid_migration_keeps_the_tenant_serving_and_frees_its_lock,
);

const SLOW: &str = "20250101000009_slow.sql";
const FAST_SQL: &str = "CREATE TABLE slow_done (id INT);";

/// A migration that runs for much longer than the test waits.
fn slow_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CREATE TABLE slow_done (id INT);\nSELECT pg_sleep(60);",
        Backend::Sqlite | Backend::Mysql => {
            "CREATE TABLE slow_done (id INT);\n\
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) \
             SELECT COUNT(*) FROM c;"
        }
    }
}

/// Waits until a runner is inside the slow migration of tenant `slug`: on PostgreSQL, a
/// session in that tenant's own database is sleeping in `pg_sleep`; on SQLite, the tenant's
/// ledger holds the eight migrations before the slow one and its lock file is taken.
async fn wait_until_inside_slow_migration(fx: &Fixture, backend: Backend, slug: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if inside_slow_migration(fx, backend, slug).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the runner never reached the slow migration"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn inside_slow_migration(fx: &Fixture, backend: Backend, slug: &str) -> bool {
    let Ok(Some(tenant)) = fx.tenantry.catalog().find_tenant(slug).await else {
        return false;
    };
    match backend {
        Backend::Postgres => {
            let Ok(mut admin) =
                sqlx::PgConnection::connect(&tenantry_testkit::postgres_url()).await
            else {
                return false;
            };
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
            )
            .bind(tenant.storage.as_str())
            .fetch_one(&mut admin)
            .await
            .is_ok_and(|n| n > 0)
        }
        _ => {
            let Ok(mut conn) = fx.tenantry.connect_storage(&tenant).await else {
                return false;
            };
            let applied = tenantry::migrate::ledger::read(&mut conn)
                .await
                .map(|l| l.len())
                .unwrap_or(0);
            let lock = fx
                .data_dir()
                .join("tenants")
                .join(format!("{}.lock", tenant.storage));
            applied >= 8
                && tenantry::engine::sqlite::try_lock(&lock).is_ok_and(|free| free.is_none())
        }
    }
}

async fn a_create_killed_mid_migration_is_never_active_and_repair_completes_it(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.write_migration(SLOW, slow_sql(backend));
    let mut child = tenantry(&fx)
        .args(["tenant", "create", "acme", "--server", &fx.server])
        .spawn()
        .expect("spawn");
    wait_until_inside_slow_migration(&fx, backend, "acme").await;
    child.kill().expect("kill");
    child.wait().expect("reap");

    let acme = fx.tenant("acme").await;
    assert_eq!(
        acme.status,
        Status::Provisioning,
        "a killed create is not active"
    );
    let listed = ok(&fx, &["tenant", "show", "acme", "--json"]);
    assert!(listed.contains("\"status\": \"provisioning\""), "{listed}");

    // The slow migration never committed; replace it and resume.
    fx.write_migration(SLOW, FAST_SQL);
    let out = run(&fx, &["--lock-wait", "30", "tenant", "repair", "acme"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let acme = fx.tenant("acme").await;
    assert_eq!(acme.status, Status::Active);
    assert_eq!(acme.version, 20250101000009);
    assert_eq!(fx.ledger(&acme).await.len(), 9);
    fx.cleanup().await;
}

async fn a_migrate_killed_mid_migration_keeps_the_tenant_serving_and_frees_its_lock(
    backend: Backend,
) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    fx.write_migration(SLOW, slow_sql(backend));
    let mut child = tenantry(&fx)
        .args(["migrate", "--all"])
        .spawn()
        .expect("spawn");
    wait_until_inside_slow_migration(&fx, backend, "acme").await;
    child.kill().expect("kill");
    child.wait().expect("reap");

    let acme = fx.tenant("acme").await;
    assert_eq!(acme.status, Status::Active);
    assert_eq!(acme.version, 20250101000008);
    assert!(
        !fx.tables(&acme).await.contains("slow_done"),
        "nothing half-applied"
    );

    fx.write_migration(SLOW, FAST_SQL);
    let started = Instant::now();
    let out = run(&fx, &["--lock-wait", "30", "migrate", "--all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 migrated"), "{}", stdout(&out));
    assert_eq!(fx.tenant("acme").await.version, 20250101000009);
    eprintln!("lock freed; rerun took {:?}", started.elapsed());
    fx.cleanup().await;
}

/// A server that goes away: its tenants fail with a clear error and keep their version;
/// tenants elsewhere migrate; once it is back, a rerun completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_fails_only_its_tenants() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let Some(cluster) = TempCluster::start() else {
        return;
    };
    fx.tenantry
        .add_server("second", &cluster.url())
        .await
        .expect("add server");
    fx.create("home").await.expect("create on pg");
    for slug in ["away1", "away2"] {
        fx.tenantry
            .create_tenant(NewTenant {
                slug: slug.into(),
                server: Some("second".into()),
                ..NewTenant::default()
            })
            .await
            .expect("create on second");
    }
    fx.write_migration("20250101000009_more.sql", "CREATE TABLE more (id INT);");

    cluster.stop();
    let out = run(&fx, &["migrate", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("1 migrated"), "{text}");
    assert!(text.contains("2 failed"), "{text}");
    assert!(
        text.contains("failed: away1") && text.contains("failed: away2"),
        "{text}"
    );
    for slug in ["away1", "away2"] {
        let t = fx.tenant(slug).await;
        assert_eq!(t.status, Status::Active);
        assert_eq!(t.version, 20250101000008);
        assert!(t.last_error.is_some());
    }
    common::fails(
        &fx,
        &["tenant", "create", "newcomer", "--server", "second"],
        "unreachable",
    );
    assert!(
        fx.tenantry
            .catalog()
            .find_tenant("newcomer")
            .await
            .expect("lookup")
            .is_none()
    );

    cluster.resume();
    let out = run(&fx, &["migrate", "--all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for slug in ["home", "away1", "away2"] {
        assert_eq!(fx.tenant(slug).await.version, 20250101000009);
    }
    fx.cleanup().await;
}
