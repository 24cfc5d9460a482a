//! Adopting what exists and splitting a shared database, in one fleet with an SQLite server,
//! a PostgreSQL server and a MariaDB server. Databases are migrated by sqlx's own migrator
//! (what `sqlx migrate run` does), so their `_sqlx_migrations` is exactly sqlx's.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection};
use tenantry::{AdoptTenant, Error, SplitDatabase, Status, Strategy, Tenant};
use tenantry_testkit::{Fixture, fresh_mysql_database, fresh_postgres_database};

const V1: (&str, &str) = (
    "20250101000001_customers.sql",
    "CREATE TABLE customers (
    business_id INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    name        VARCHAR(100),
    PRIMARY KEY (business_id, id)
);",
);
const V2: (&str, &str) = (
    "20250101000002_orders.sql",
    "CREATE TABLE orders (
    business_id INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    total       DECIMAL(10,2),
    note        TEXT,
    PRIMARY KEY (business_id, id)
);
CREATE TABLE plans (
    code  VARCHAR(10) NOT NULL PRIMARY KEY,
    price INTEGER NOT NULL
);",
);
/// Added to the fleet's set after the application's databases were migrated.
const V3: (&str, &str) = (
    "20250101000003_email.sql",
    "ALTER TABLE customers ADD COLUMN email VARCHAR(100);",
);

/// The application's rows: three businesses, and plans nobody owns.
const ROWS: &str = "INSERT INTO customers (business_id, id, name) VALUES
    (1, 1, 'Ann'), (1, 2, 'Bo ✓'), (2, 1, 'Cy'), (3, 1, NULL), (3, 2, 'Di'), (3, 3, 'O''Hara');
INSERT INTO orders (business_id, id, customer_id, total, note) VALUES
    (1, 1, 1, 12.50, 'first'), (3, 1, 2, 0.05, NULL), (3, 2, 3, 1000.00, '日本語');
INSERT INTO plans (code, price) VALUES ('free', 0), ('pro', 20);";

/// The fleet, with V1–V3 as its set; and a directory with the application's V1–V2.
async fn fleet() -> Option<(Fixture, tempfile::TempDir)> {
    let fx = Fixture::mixed().await?;
    fx.use_migration(V1.0, V1.1);
    fx.write_migration(V2.0, V2.1);
    fx.write_migration(V3.0, V3.1);
    let app = tempfile::tempdir().expect("tempdir");
    for (name, sql) in [V1, V2] {
        std::fs::write(app.path().join(name), sql).expect("write");
    }
    Some((fx, app))
}

/// Runs sqlx's migrator over `dir` against `url`, as `sqlx migrate run` does.
async fn sqlx_migrate(url: &str, dir: &Path) {
    let migrator = sqlx::migrate::Migrator::new(dir.to_path_buf())
        .await
        .expect("read the migrations");
    if url.starts_with("postgres") {
        let mut conn = sqlx::postgres::PgConnection::connect(url)
            .await
            .expect("connect");
        migrator.run(&mut conn).await.expect("sqlx migrate");
        let _ = conn.close().await;
    } else if url.starts_with("mysql") {
        let mut conn = sqlx::mysql::MySqlConnection::connect(url)
            .await
            .expect("connect");
        migrator.run(&mut conn).await.expect("sqlx migrate");
        let _ = conn.close().await;
    } else {
        let mut conn = sqlx::sqlite::SqliteConnection::connect(url)
            .await
            .expect("connect");
        migrator.run(&mut conn).await.expect("sqlx migrate");
        let _ = conn.close().await;
    }
}

async fn run(url: &str, sql: &str) {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("run");
    let _ = conn.close().await;
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let n = sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let _ = conn.close().await;
    n
}

/// An application database on `server`, migrated by sqlx and holding [`ROWS`]: its name
/// and URL.
async fn app_database(fx: &Fixture, server: &str, app: &Path) -> (String, String) {
    let (url, name) = match server {
        "pg" => fresh_postgres_database(&tenantry_testkit::postgres_url(), "shop").await,
        "my" => fresh_mysql_database(&tenantry_testkit::mysql_url(), "shop").await,
        _ => {
            let name = format!(
                "shop_{}",
                ulid::Ulid::new().to_string().to_ascii_lowercase()
            );
            let dir = fx.data_dir().join("tenants");
            std::fs::create_dir_all(&dir).expect("the local server's directory");
            let path = dir.join(format!("{name}.db"));
            (format!("sqlite://{}?mode=rwc", path.display()), name)
        }
    };
    sqlx_migrate(&url, app).await;
    run(&url, ROWS).await;
    (name, url)
}

/// A unit of work as the tenant's own runtime login: a count of `table`.
async fn served_count(fx: &Fixture, slug: &str, table: &str) -> i64 {
    let pool = fx.tenantry.tenant_pool(slug).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let rows = tx
        .run_script(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .await
        .expect("read as the tenant");
    tx.commit().await.expect("commit");
    let v = &rows[0]["n"];
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .expect("a count")
}

fn adopt(slug: &str, server: &str, storage: &str, strategy: Strategy) -> AdoptTenant {
    AdoptTenant {
        slug: slug.into(),
        name: None,
        server: server.into(),
        storage: storage.into(),
        strategy,
        baseline: None,
    }
}

async fn tenants(fx: &Fixture) -> usize {
    fx.tenantry
        .catalog()
        .tenants()
        .await
        .expect("tenants")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_migrated_by_sqlx_are_adopted_on_every_engine() {
    let Some((fx, app)) = fleet().await else {
        return;
    };
    for server in ["local", "pg", "my"] {
        let (name, url) = app_database(&fx, server, app.path()).await;
        let slug = format!("adopted-{server}");
        let adopted = fx
            .tenantry
            .adopt_tenant(adopt(&slug, server, &name, Strategy::Database))
            .await
            .unwrap_or_else(|e| panic!("adopt on {server}: {e}"));
        assert_eq!(adopted.baseline, 20250101000002, "{server}");
        assert_eq!(adopted.source, tenantry::BaselineSource::Sqlx, "{server}");
        assert!(adopted.extra_tables.is_empty(), "{server}");
        let t: Tenant = adopted.tenant;
        assert_eq!(t.status, Status::Active, "{server}");
        assert_eq!(t.storage.as_str(), name, "{server}: it keeps its name");
        assert_eq!(
            t.version, 20250101000003,
            "{server}: the set's later migration applied"
        );
        // The ledger starts with sqlx's two versions and their checksums, then V3.
        let ledger = fx.ledger(&t).await;
        let versions: Vec<i64> = ledger.iter().map(|r| r.version).collect();
        assert_eq!(versions, [20250101000001, 20250101000002, 20250101000003]);
        // Nothing of the application's was dropped: its rows and sqlx's ledger are there,
        // and the tenant's own login reads and writes the tables that existed before.
        assert_eq!(
            count(&url, "SELECT COUNT(*) FROM _sqlx_migrations").await,
            2
        );
        assert_eq!(served_count(&fx, &slug, "customers").await, 6, "{server}");
        assert_eq!(served_count(&fx, &slug, "plans").await, 2, "{server}");
        let pool = fx.tenantry.tenant_pool(&slug).await.expect("pool");
        let mut tx = pool.begin().await.expect("begin");
        tx.run_script("INSERT INTO orders (business_id, id, customer_id) VALUES (9, 9, 1)")
            .await
            .unwrap_or_else(|e| panic!("{server}: the tenant writes an adopted table: {e}"));
        tx.commit().await.expect("commit");
        assert_eq!(fx.scalar(&t, "SELECT COUNT(*) FROM orders").await, 4);
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_is_adopted_at_a_given_baseline() {
    let Some((fx, _app)) = fleet().await else {
        return;
    };
    let server = fx.tenantry.catalog().server("pg").await.expect("pg");
    let schema = format!(
        "legacy_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );
    run(
        &server.url,
        &format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {} {} {ROWS}",
            V1.1, V2.1
        ),
    )
    .await;
    // Without sqlx's ledger the version must be given.
    let refused = fx
        .tenantry
        .adopt_tenant(adopt("legacy", "pg", &schema, Strategy::Schema))
        .await;
    assert!(
        matches!(&refused, Err(Error::AdoptRefused { detail, .. }) if detail.contains("--baseline")),
        "{refused:?}"
    );
    let mut req = adopt("legacy", "pg", &schema, Strategy::Schema);
    req.baseline = Some(20250101000002);
    let adopted = fx.tenantry.adopt_tenant(req).await.expect("adopt");
    assert_eq!(adopted.source, tenantry::BaselineSource::Given);
    assert_eq!(adopted.tenant.version, 20250101000003);
    assert_eq!(served_count(&fx, "legacy", "customers").await, 6);
    assert_eq!(served_count(&fx, "legacy", "orders").await, 3);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_adopted_is_refused_with_nothing_written() {
    let Some((fx, app)) = fleet().await else {
        return;
    };
    let refused_because = |r: tenantry::Result<tenantry::Adopted>, why: &str| match r {
        Err(Error::AdoptRefused { detail, .. }) => {
            assert!(detail.contains(why), "{detail:?} does not say {why:?}")
        }
        other => panic!("expected a refusal for {why:?}, got {other:?}"),
    };
    // The application's V1 was another SQL than the fleet's file of that version.
    let edited = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        edited.path().join(V1.0),
        V1.1.replace("VARCHAR(100)", "VARCHAR(120)"),
    )
    .expect("write");
    std::fs::write(edited.path().join(V2.0), V2.1).expect("write");
    let (url, db) = fresh_postgres_database(&tenantry_testkit::postgres_url(), "shop").await;
    sqlx_migrate(&url, edited.path()).await;
    let r = fx
        .tenantry
        .adopt_tenant(adopt("edited", "pg", &db, Strategy::Database))
        .await;
    refused_because(r, "checksums differ");
    let ledger = "SELECT COUNT(*) FROM pg_tables WHERE tablename = '_tenantry_migrations'";
    assert_eq!(count(&url, ledger).await, 0, "no ledger was written");

    // A baseline whose tables are not all there.
    let (bare_url, bare) = fresh_postgres_database(&tenantry_testkit::postgres_url(), "bare").await;
    run(&bare_url, V1.1).await;
    let mut req = adopt("bare", "pg", &bare, Strategy::Database);
    req.baseline = Some(20250101000002);
    refused_because(fx.tenantry.adopt_tenant(req).await, "lacks: orders, plans");
    // sqlx's ledger and a baseline that disagree.
    let (shop, _) = app_database(&fx, "pg", app.path()).await;
    let mut req = adopt("shop", "pg", &shop, Strategy::Database);
    req.baseline = Some(20250101000001);
    refused_because(fx.tenantry.adopt_tenant(req).await, "records version");
    // A database that is not there, and a name that is no storage name.
    refused_because(
        fx.tenantry
            .adopt_tenant(adopt("ghost", "pg", "no_such_db", Strategy::Database))
            .await,
        "no database",
    );
    let r = fx
        .tenantry
        .adopt_tenant(adopt("bad", "pg", "Shop;drop", Strategy::Database))
        .await;
    assert!(matches!(r, Err(Error::InvalidName { .. })), "{r:?}");
    assert_eq!(tenants(&fx).await, 0, "no catalog row was written");

    // Adopted once, a storage is no other tenant's.
    fx.tenantry
        .adopt_tenant(adopt("shop", "pg", &shop, Strategy::Database))
        .await
        .expect("adopt");
    refused_because(
        fx.tenantry
            .adopt_tenant(adopt("again", "pg", &shop, Strategy::Database))
            .await,
        "tenant \"shop\"",
    );
    assert_eq!(tenants(&fx).await, 1);
    for db in [db, bare] {
        tenantry_testkit::drop_postgres_database(&tenantry_testkit::postgres_url(), &db).await;
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_database_is_split_into_tenants() {
    let Some((fx, app)) = fleet().await else {
        return;
    };
    let (shared, url) = app_database(&fx, "pg", app.path()).await;
    let split_req = |prefix: &str| SplitDatabase {
        server: "pg".into(),
        database: shared.clone(),
        column: "business_id".into(),
        slug_prefix: prefix.into(),
        to_server: Some("my".into()),
        strategy: Some(Strategy::Database),
        baseline: None,
    };
    // Numbers make no slugs by themselves: refused before anything is made.
    let r = fx.tenantry.split_database(split_req(""), |_| {}).await;
    assert!(
        matches!(&r, Err(Error::AdoptRefused { detail, .. }) if detail.contains("--slug-prefix")),
        "{r:?}"
    );
    assert_eq!(tenants(&fx).await, 0);

    let seen = std::sync::Mutex::new(Vec::new());
    let split = fx
        .tenantry
        .split_database(split_req("biz-"), |t| {
            seen.lock().expect("lock").push(t.tenant.slug.to_string())
        })
        .await
        .expect("split");
    assert_eq!(split.baseline, 20250101000002);
    assert_eq!(split.unsplit_tables, ["plans"]);
    assert_eq!(*seen.lock().expect("lock"), ["biz-1", "biz-2", "biz-3"]);
    // Each business's rows, and only those, in its own MariaDB database at the fleet's
    // version; the values kept as they were.
    for (business, customers, orders) in [(1, 2, 1), (2, 1, 0), (3, 3, 2)] {
        let t = fx.tenant(&format!("biz-{business}")).await;
        assert_eq!(t.status, Status::Active);
        assert_eq!(t.server.as_str(), "my");
        assert_eq!(t.version, 20250101000003);
        let own = format!("SELECT COUNT(*) FROM customers WHERE business_id = {business}");
        assert_eq!(fx.scalar(&t, &own).await, customers);
        assert_eq!(
            fx.scalar(&t, "SELECT COUNT(*) FROM customers").await,
            customers
        );
        assert_eq!(fx.scalar(&t, "SELECT COUNT(*) FROM orders").await, orders);
        assert_eq!(fx.scalar(&t, "SELECT COUNT(*) FROM plans").await, 0);
    }
    let t3 = fx.tenant("biz-3").await;
    let exact = "SELECT COUNT(*) FROM orders WHERE note = '日本語' AND total = 1000.00";
    assert_eq!(fx.scalar(&t3, exact).await, 1);
    // The source was only read.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM customers").await, 6);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM orders").await, 3);
    // Split again: its slugs are taken, refused before anything is made.
    let r = fx.tenantry.split_database(split_req("biz-"), |_| {}).await;
    assert!(matches!(r, Err(Error::TenantExists { .. })), "{r:?}");
    assert_eq!(tenants(&fx).await, 3);
    tenantry_testkit::drop_postgres_database(&tenantry_testkit::postgres_url(), &shared).await;
    fx.cleanup().await;
}
