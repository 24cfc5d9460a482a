//! Delete means gone: after a purge, nothing of the tenant is left on its server (checked
//! against the server's own catalogs here, not through Tenantry), in its shared pool, in the
//! catalog, or in this process; and a purge that finds something left says what.

use sqlx::{AssertSqlSafe, Connection};
use tenantry::apikeys::NewApiKey;
use tenantry::identity::NewUser;
use tenantry::{Error, NewTenant, Scope, Strategy, Tenant};
use tenantry_testkit::{Fixture, mysql_url, postgres_url, with_database};

const PLACES: [(&str, Strategy); 5] = [
    ("local", Strategy::Database),
    ("pg", Strategy::Database),
    ("pg", Strategy::Schema),
    ("pg", Strategy::Shared),
    ("my", Strategy::Database),
];

async fn fleet() -> Option<Fixture> {
    Fixture::mixed().await
}

/// A tenant with everything a tenant can have: rows, a domain, a member, a label, a
/// secret, an API key, and a pool open in this process.
async fn furnished(fx: &Fixture, slug: &str, (server, strategy): (&str, Strategy)) -> Tenant {
    let t = fx
        .tenantry
        .create_tenant(NewTenant {
            slug: slug.into(),
            server: Some(server.into()),
            strategy: Some(strategy),
            ..NewTenant::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"));
    let pool = fx.tenantry.tenant_pool(slug).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('c1', '{}', 'spring')",
        t.id
    ))
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    fx.tenantry
        .add_domain(slug, &format!("{slug}.example.com"), true)
        .await
        .expect("domain");
    let email = format!("owner@{slug}.example.com");
    fx.tenantry
        .add_user(NewUser {
            email: email.clone(),
            display_name: "Owner".into(),
            password: None,
        })
        .await
        .expect("user");
    fx.tenantry
        .add_member(&email, slug, "owner")
        .await
        .expect("member");
    fx.tenantry
        .label_tenant(slug, &["tier=gold".into()])
        .await
        .expect("label");
    fx.tenantry
        .set_secret(slug, "stripe_key", "sk_live_x")
        .await
        .expect("secret");
    fx.tenantry
        .create_api_key(NewApiKey {
            name: format!("{slug}-key"),
            scopes: vec![Scope::TenantsRead],
            tenant: Some(slug.into()),
        })
        .await
        .expect("key");
    t
}

/// What the server's own catalogs still hold under the tenant's names, asked directly.
async fn on_the_server(fx: &Fixture, t: &Tenant, server: &str) -> Vec<String> {
    let storage = t.storage.as_str();
    let role = format!("t_{}", t.id.to_string().to_ascii_lowercase());
    match server {
        "local" => {
            let dir = fx.data_dir().join("tenants");
            std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|name| name.starts_with(storage))
                        .collect()
                })
                .unwrap_or_default()
        }
        "pg" => {
            let server = fx.tenantry.catalog().server("pg").await.expect("server");
            let mut conn = sqlx::AnyConnection::connect(&server.url).await.expect("pg");
            let mut left: Vec<String> = sqlx::query_scalar(
                "SELECT 'database ' || datname FROM pg_database WHERE datname = $1 \
                 UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname = $1 \
                 UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname = $2",
            )
            .bind(storage)
            .bind(&role)
            .fetch_all(&mut conn)
            .await
            .expect("pg catalogs");
            // The shared pool's tables, read as their owner (no row-level security).
            if let Some(pool) = fx.tenantry.catalog().shared_pool("pg").await.expect("pool") {
                let db = format!("tenantry_pool_{}", pool.id.to_string().to_ascii_lowercase());
                let url = with_database(&postgres_url(), &db);
                if let Ok(mut pool_conn) = sqlx::AnyConnection::connect(&url).await {
                    for (what, sql) in [
                        (
                            "campaign rows",
                            "SELECT COUNT(*) FROM tenantry_shared.campaigns WHERE tenant_id = $1",
                        ),
                        (
                            "admission",
                            "SELECT COUNT(*) FROM tenantry_private.admitted WHERE tenant = $1",
                        ),
                    ] {
                        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                            .bind(t.id.to_string())
                            .fetch_one(&mut pool_conn)
                            .await
                            .expect(what);
                        if n > 0 {
                            left.push(format!("{n} {what}"));
                        }
                    }
                }
            }
            left
        }
        _ => {
            let mut conn = sqlx::AnyConnection::connect(&mysql_url())
                .await
                .expect("mysql");
            sqlx::query_scalar(
                "SELECT CAST(CONCAT('database ', schema_name) AS CHAR) FROM information_schema.schemata \
                 WHERE schema_name = ? UNION ALL \
                 SELECT CAST(CONCAT('user ', user) AS CHAR) FROM mysql.user WHERE user = ?",
            )
            .bind(storage)
            .bind(&role)
            .fetch_all(&mut conn)
            .await
            .expect("mysql catalogs")
        }
    }
}

async fn in_the_catalog(fx: &Fixture, t: &Tenant) -> i64 {
    let id = t.id.to_string();
    let mut total = 0;
    for table in [
        "tenantry_domains",
        "tenantry_memberships",
        "tenantry_labels",
        "tenantry_secrets",
        "tenantry_api_keys",
        "tenantry_operations",
    ] {
        total += fx
            .catalog_count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE tenant_id = '{id}'"
            ))
            .await;
    }
    total
        + fx.catalog_count(&format!(
            "SELECT COUNT(*) FROM tenantry_tenants WHERE id = '{id}'"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_leaves_nothing_on_any_engine_or_strategy() {
    let Some(fx) = fleet().await else {
        return;
    };
    for (i, place) in PLACES.iter().enumerate() {
        let slug = format!("gone-{i}");
        let t = furnished(&fx, &slug, *place).await;
        let neighbour = furnished(&fx, &format!("stays-{i}"), *place).await;
        assert!(
            !on_the_server(&fx, &t, place.0).await.is_empty(),
            "{place:?}: seeded"
        );
        assert!(in_the_catalog(&fx, &t).await > 0);

        let purged = fx.tenantry.delete_tenant(&slug, true).await;
        assert!(matches!(purged, Ok(None)), "{place:?}: {purged:?}");
        assert_eq!(
            on_the_server(&fx, &t, place.0).await,
            Vec::<String>::new(),
            "{place:?}"
        );
        assert_eq!(in_the_catalog(&fx, &t).await, 0, "{place:?}");
        assert!(fx.tenantry.leftovers(&t).await.expect("check").is_empty());
        // The events keep its id, not its records.
        let events = fx
            .catalog_count(&format!(
                "SELECT COUNT(*) FROM tenantry_events WHERE tenant_id = '{}'",
                t.id
            ))
            .await;
        assert!(events > 0);
        let named = fx
            .catalog_count(&format!(
                "SELECT COUNT(*) FROM tenantry_events WHERE tenant_id = '{}' \
                 AND (tenant_slug IS NOT NULL OR target IS NOT NULL)",
                t.id
            ))
            .await;
        assert_eq!(named, 0, "{place:?}: its entries keep its id only");
        // Its neighbour on the same server is whole.
        assert!(
            !on_the_server(&fx, &neighbour, place.0).await.is_empty()
                || place.1 == Strategy::Shared
        );
        let pool = fx
            .tenantry
            .tenant_pool(&format!("stays-{i}"))
            .await
            .expect("neighbour");
        let mut tx = pool.begin().await.expect("begin");
        let rows = tx
            .run_script("SELECT name FROM campaigns")
            .await
            .expect("read");
        assert_eq!(rows.len(), 1, "{place:?}: the neighbour's row");
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_finds_something_left_names_it() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = furnished(&fx, "acme", PLACES[1]).await;
    fx.tenantry
        .delete_tenant("acme", false)
        .await
        .expect("delete");
    // A role under the tenant's name, made behind Tenantry's back after the drop.
    let role = format!("t_{}", t.id.to_string().to_ascii_lowercase());
    let server = fx.tenantry.catalog().server("pg").await.expect("server");
    let mut conn = sqlx::AnyConnection::connect(&server.url).await.expect("pg");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE ROLE \"{role}\"")))
        .execute(&mut conn)
        .await
        .expect("create role");
    let err = fx
        .tenantry
        .delete_tenant("acme", true)
        .await
        .expect_err("left");
    assert!(
        matches!(&err, Error::PurgeIncomplete { left, .. } if left == &[format!("role {role}")]),
        "{err}"
    );
    sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE \"{role}\"")))
        .execute(&mut conn)
        .await
        .expect("drop role");
    fx.cleanup().await;
}
