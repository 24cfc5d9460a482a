//! Where shared pools live and how units are locked: each pool in a database of its own
//! (two catalogs on one server never share one, and removing a server leaves nothing), and
//! lock keys a tenant cannot compute from what it can see.

use sqlx::{Connection, Row};
use tenantry::{NewTenant, Outcome, Settings, Strategy, Tenant, Tenantry};
use tenantry_testkit::{Backend, Fixture};

/// Writes a campaign named `name` (its id too) and reads every campaign name back.
async fn write_and_read(t: &Tenantry, tenant: &Tenant, name: &str) -> Vec<String> {
    let pool = t.tenant_pool(tenant.slug.as_str()).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let rows = tx
        .run_script(&format!(
            "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{name}', '{}', '{name}'); \
             SELECT name FROM campaigns ORDER BY name",
            tenant.id
        ))
        .await
        .expect("write and read");
    tx.commit().await.expect("commit");
    rows.iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Two catalogs pointed at one server database each get a pool of their own, with its own
/// role and rights; removing the server from one catalog drops that pool's database and role
/// and leaves the other pool, and the server's database, as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_catalogs_on_one_server_database() {
    let Some(first) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let Some(second) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let server = first
        .tenantry
        .catalog()
        .server(&first.server)
        .await
        .expect("server");
    second
        .tenantry
        .add_server("same", &server.url)
        .await
        .expect("the same server in a second catalog");
    let a = first
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("first catalog's tenant");
    let b = second
        .tenantry
        .create_tenant(NewTenant {
            slug: "shared-b".into(),
            server: Some("same".into()),
            strategy: Some(Strategy::Shared),
            ..NewTenant::default()
        })
        .await
        .expect("second catalog's tenant");
    assert_eq!(write_and_read(&first.tenantry, &a, "A").await, ["A"]);
    assert_eq!(write_and_read(&second.tenantry, &b, "B").await, ["B"]);

    let pool_a = first
        .tenantry
        .catalog()
        .shared_pool(&first.server)
        .await
        .expect("lookup")
        .expect("pool");
    let pool_b = second
        .tenantry
        .catalog()
        .shared_pool("same")
        .await
        .expect("lookup")
        .expect("pool");
    assert_ne!(pool_a.id, pool_b.id);

    second
        .tenantry
        .delete_tenant("shared-b", true)
        .await
        .expect("delete B");
    second
        .tenantry
        .remove_server("same")
        .await
        .expect("remove the server from the second catalog");

    let admin_url = tenantry_testkit::postgres_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("admin");
    let databases: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname IN ($1, $2)")
            .bind(tenantry::storage::shared::pool_database(&pool_a).as_str())
            .bind(tenantry::storage::shared::pool_database(&pool_b).as_str())
            .fetch_all(&mut admin)
            .await
            .expect("databases");
    assert_eq!(
        databases,
        [tenantry::storage::shared::pool_database(&pool_a).to_string()],
        "only the first pool's database is left"
    );
    let roles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname = $1")
        .bind(pool_b.role.as_str())
        .fetch_one(&mut admin)
        .await
        .expect("roles");
    assert_eq!(roles, 0, "the second pool's role is gone");
    let mut server_db = sqlx::PgConnection::connect(&server.url)
        .await
        .expect("server database");
    let schemas: Vec<String> = sqlx::query(
        "SELECT nspname::text AS name FROM pg_namespace WHERE nspname LIKE 'tenantry%'",
    )
    .fetch_all(&mut server_db)
    .await
    .expect("schemas")
    .iter()
    .map(|r| r.get("name"))
    .collect();
    assert!(
        schemas.is_empty(),
        "nothing of a pool in the server's database: {schemas:?}"
    );
    assert_eq!(write_and_read(&first.tenantry, &a, "A2").await.len(), 2);
    second.cleanup().await;
    first.cleanup().await;
}

/// A tenant takes the lock key the previous releases derived from another tenant's id (which
/// it can see as a role name) and holds it; that tenant's migration must go ahead, because
/// keys are derived from the master key.
async fn lock_keys_cannot_be_derived_from_ids(backend: Backend, strategy: Strategy) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let a = fx.create_with("tenant-a", strategy).await.expect("A");
    let b = fx.create_with("tenant-b", strategy).await.expect("B");
    let a_pool = fx.tenantry.tenant_pool("tenant-a").await.expect("A's pool");
    let low_bits = ulid::Ulid::from_string(&b.id.to_string()).expect("ulid").0 as u64 as i64;
    // A's own application connection holds what it guesses is B's lock.
    let mut held = a_pool.begin().await.expect("A's unit of work");
    if let Some(pg) = held.postgres() {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(low_bits)
            .fetch_one(&mut *pg)
            .await
            .expect("A locks");
        assert!(taken);
    } else if let Some(my) = held.mysql() {
        let taken: Option<i64> = sqlx::query_scalar("SELECT CAST(GET_LOCK(?, 0) AS SIGNED)")
            .bind(format!("tenantry:{}", b.storage))
            .fetch_one(&mut *my)
            .await
            .expect("A locks");
        assert_eq!(taken, Some(1));
    } else {
        panic!("a server tenant");
    }
    fx.write_migration(
        "20250101000009_more.sql",
        "CREATE TABLE more_things (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
         PRIMARY KEY (tenant_id, id));",
    );
    let impatient = fx
        .reopen(Settings {
            lock_wait_secs: Some(1),
            ..Settings::default()
        })
        .await;
    let set = impatient.migrations().expect("migrations");
    let report = impatient
        .migrate_slugs(&set, &["tenant-b".to_owned()], &|_| {})
        .await
        .expect("run");
    assert!(
        matches!(report.tenants[0].outcome, Outcome::Migrated { .. }),
        "{report:?}"
    );
    drop(held);
    let _ = a;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_lock_keys_cannot_be_derived_from_ids() {
    lock_keys_cannot_be_derived_from_ids(Backend::Postgres, Strategy::Schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_lock_names_cannot_be_derived_from_ids() {
    lock_keys_cannot_be_derived_from_ids(Backend::Mysql, Strategy::Database).await;
}
