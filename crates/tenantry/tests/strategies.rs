//! The three isolation models in one PostgreSQL fleet: one migration set for all, the shared
//! pool migrated once, every shared table protected, deletion by rows.

use sqlx::Row;
use tenantry::{Error, Outcome, Settings, Status, Strategy};
use tenantry_testkit::{Backend, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_migrates_together_and_the_shared_pool_once() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("own-db", Strategy::Database)
        .await
        .expect("database");
    fx.create_with("own-schema", Strategy::Schema)
        .await
        .expect("schema");
    let shared_a = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("shared");
    fx.create_with("shared-b", Strategy::Shared)
        .await
        .expect("shared");
    fx.write_migration(
        "20250101000009_add_budget.sql",
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );

    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.migrated(), 4);
    for t in fx.tenantry.catalog().tenants().await.expect("tenants") {
        assert_eq!(t.version, 20250101000009, "{}", t.slug);
    }
    // One ledger for the pool, each migration in it once.
    let ledger = fx.ledger(&shared_a).await;
    assert_eq!(ledger.len(), 9);
    let pool = fx
        .tenantry
        .catalog()
        .shared_pool("pg")
        .await
        .expect("lookup")
        .expect("pool");
    assert_eq!(pool.version, 20250101000009);

    // Every shared tenant table has row-level security enabled and forced.
    let mut conn = fx
        .tenantry
        .connect_storage(&shared_a)
        .await
        .expect("connect");
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'tenantry_shared' AND c.relkind = 'r' AND c.relname <> '_tenantry_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("query");
    assert_eq!(rows.len(), 8);
    for row in rows {
        let name: String = row.get("name");
        assert!(
            row.get::<bool, _>("enabled") && row.get::<bool, _>("forced"),
            "{name}"
        );
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_table_without_the_tenant_column_fails_unless_declared_global() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("own-db", Strategy::Database)
        .await
        .expect("database");
    let shared = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("shared");
    fx.write_migration(
        "20250101000009_countries.sql",
        "CREATE TABLE countries (code VARCHAR(2) PRIMARY KEY, name VARCHAR(64) NOT NULL);\n\
         INSERT INTO countries VALUES ('nz', 'New Zealand');",
    );
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert_eq!(failed[0].0, "shared-a");
    assert!(
        failed[0].1.contains("countries") && failed[0].1.contains("tenant_id"),
        "{}",
        failed[0].1
    );
    assert!(
        !fx.tables(&shared).await.contains("countries"),
        "rolled back, never unprotected"
    );
    assert_eq!(fx.tenant("shared-a").await.version, 20250101000008);
    assert_eq!(fx.tenant("own-db").await.version, 20250101000009);

    // Declared global: migrated, readable by every tenant, writable by none.
    let tenantry = fx
        .reopen(Settings {
            shared_global_tables: Some(vec!["countries".into()]),
            ..Settings::default()
        })
        .await;
    let report = tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success(), "{report:?}");
    let pool = tenantry.tenant_pool("shared-a").await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let rows = tx
        .run_script("SELECT name FROM countries")
        .await
        .expect("read");
    assert_eq!(rows.len(), 1);
    tx.rollback().await.expect("rollback");
    let mut tx = pool.begin().await.expect("begin");
    assert!(
        tx.run_script("INSERT INTO countries VALUES ('xx', 'Nowhere')")
            .await
            .is_err()
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_tenants_fail_closed_and_deletion_removes_exactly_their_rows() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let a = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("a");
    let b = fx
        .create_with("shared-b", Strategy::Shared)
        .await
        .expect("b");
    for (t, n) in [(&a, 3), (&b, 2)] {
        let pool = fx
            .tenantry
            .tenant_pool(t.slug.as_str())
            .await
            .expect("pool");
        let mut tx = pool.begin().await.expect("begin");
        for i in 0..n {
            let sql = format!(
                "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{}-{i}', '{}', 'c'); \
                 INSERT INTO usage_events (id, tenant_id, event_type, quantity) VALUES ('{}-{i}', '{}', 'upload', 1)",
                t.slug, t.id, t.slug, t.id
            );
            tx.run_script(&sql).await.expect("seed");
        }
        tx.commit().await.expect("commit");
    }

    // Fail closed: a unit whose tenant context is cleared sees nothing and writes nothing.
    let pool = fx.tenantry.tenant_pool("shared-a").await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let conn = tx.as_postgres().expect("postgres");
    sqlx::query("SELECT set_config('tenantry.tenant', '', true)")
        .execute(&mut *conn)
        .await
        .expect("clear the context");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns")
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(n, 0);
    let insert = sqlx::query("INSERT INTO campaigns (id, tenant_id, name) VALUES ('x', $1, 'x')")
        .bind(a.id.to_string())
        .execute(&mut *conn)
        .await;
    assert!(insert.is_err(), "no context, no write");
    tx.rollback().await.expect("rollback");

    let deleted = fx
        .tenantry
        .delete_tenant("shared-a", false)
        .await
        .expect("delete")
        .expect("row");
    assert_eq!(deleted.status, Status::Deleted);
    let mut admin = fx.tenantry.connect_storage(&b).await.expect("connect");
    for (id, expected) in [(a.id.to_string(), 0), (b.id.to_string(), 2)] {
        for table in ["campaigns", "usage_events"] {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE tenant_id = $1"
            )))
            .bind(&id)
            .fetch_one(&mut admin)
            .await
            .expect("count");
            assert_eq!(n, expected, "{table} rows of {id}");
        }
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_an_engine_cannot_provide_are_refused_saying_what_is_supported() {
    for backend in [Backend::Sqlite, Backend::Mysql] {
        let Some(fx) = Fixture::new(backend).await else {
            return;
        };
        for strategy in [Strategy::Schema, Strategy::Shared] {
            let err = fx.create_with("nope", strategy).await.expect_err("refused");
            assert!(matches!(err, Error::StrategyUnsupported { .. }), "{err}");
            assert!(err.to_string().contains("support"), "{err}");
        }
        assert!(
            fx.tenantry
                .catalog()
                .tenants()
                .await
                .expect("list")
                .is_empty()
        );
        fx.cleanup().await;
    }
    assert!(matches!(
        "sharded".parse::<Strategy>(),
        Err(Error::UnknownStrategy { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_pool_failure_is_reported_for_every_shared_tenant() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    for slug in ["s1", "s2", "s3"] {
        fx.create_with(slug, Strategy::Shared)
            .await
            .expect("create");
    }
    fx.write_migration("20250101000009_broken.sql", "SELEC 1;");
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert_eq!(report.failed().count(), 3);
    for r in &report.tenants {
        assert!(matches!(
            r.outcome,
            Outcome::Failed {
                version: 20250101000008,
                ..
            }
        ));
    }
    fx.cleanup().await;
}

/// A temporary table cannot capture another tenant's rows, because a shared tenant cannot
/// create one: the pool's own database grants its role CONNECT only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_table_cannot_capture_another_shared_tenants_rows() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let a = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("a");
    let b = fx
        .create_with("shared-b", Strategy::Shared)
        .await
        .expect("b");
    // One unit at a time: the pool keeps one connection, so B gets the very one A used.
    let tenantry = fx
        .reopen(Settings {
            pool_max_connections: Some(1),
            ..Settings::default()
        })
        .await;
    let a_pool = tenantry.tenant_pool("shared-a").await.expect("a pool");
    let mut tx = a_pool.begin().await.expect("begin");
    let refused = tx
        .run_script("CREATE TEMP TABLE campaigns (id TEXT, tenant_id TEXT, name TEXT)")
        .await
        .expect_err("A cannot create a temporary table");
    assert_eq!(sqlstate(&refused).as_deref(), Some("42501"), "{refused}");
    tx.rollback().await.expect("rollback");

    let b_pool = tenantry.tenant_pool("shared-b").await.expect("b pool");
    let mut tx = b_pool.begin().await.expect("begin");
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('b1', '{}', 'B-secret')",
        b.id
    ))
    .await
    .expect("B writes");
    tx.commit().await.expect("commit");

    let mut admin = fx.tenantry.connect_storage(&a).await.expect("connect");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE tenant_id = $1")
        .bind(b.id.to_string())
        .fetch_one(&mut admin)
        .await
        .expect("count");
    assert_eq!(n, 1, "B's row landed in the shared table");
    fx.cleanup().await;
}

/// A `-- no-transaction` migration that fails is recorded dirty, not lost: it can be
/// settled like a MySQL one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_no_transaction_migration_is_dirty_and_can_be_settled() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    fx.write_migration(
        "20250101000009_index.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY campaigns_by_nam ON campaignz (name);",
    );
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert_eq!(report.failed().count(), 1);
    let acme = fx.tenant("acme").await;
    let ledger = fx.ledger(&acme).await;
    assert!(
        ledger
            .iter()
            .any(|r| r.version == 20250101000009 && r.state == "dirty")
    );

    fx.write_migration(
        "20250101000009_index.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY campaigns_by_name ON campaigns (name);",
    );
    fx.tenantry
        .resolve_dirty("acme", 20250101000009, false)
        .await
        .expect("resolve");
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(fx.tenant("acme").await.version, 20250101000009);
    fx.cleanup().await;
}

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}
