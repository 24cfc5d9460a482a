//! The isolation promise: through tenant A's application connection — the library's
//! `TenantPool` and `tenantry sql` — every door to tenant B's data is tried, and each attempt
//! must fail or see none of B's rows; afterwards B's rows are exactly as they were.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::Row;
use tenantry::{Strategy, Tenant, TenantPool};
use tenantry_testkit::{Backend, Fixture};

const MARKER: &str = "B-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_per_tenant() {
    check(Backend::Postgres, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_per_tenant() {
    check(Backend::Postgres, Strategy::Schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared_tables_with_row_level_security() {
    check(Backend::Postgres, Strategy::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_per_tenant() {
    check(Backend::Sqlite, Strategy::Database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_database_per_tenant() {
    check(Backend::Mysql, Strategy::Database).await;
}

/// One attack: a name that says which door it tries, and the SQL.
struct Attempt {
    name: String,
    sql: String,
}

fn attempt(name: impl Into<String>, sql: impl Into<String>) -> Attempt {
    Attempt {
        name: name.into(),
        sql: sql.into(),
    }
}

async fn check(backend: Backend, strategy: Strategy) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let a = fx
        .create_with("tenant-a", strategy)
        .await
        .expect("create A");
    let b = fx
        .create_with("tenant-b", strategy)
        .await
        .expect("create B");
    seed(&fx, &a, &[("a1", "A-visible")]).await;
    seed(&fx, &b, &[("b1", "B-secret-1"), ("b2", "B-secret-2")]).await;
    let before = rows_of(&fx, &b).await;
    assert_eq!(before.len(), 2);
    if backend == Backend::Postgres {
        // Fill the planner statistics, so reading them is a real attempt.
        let mut admin = fx.tenantry.connect_storage(&b).await.expect("connect");
        sqlx::raw_sql("ANALYZE campaigns")
            .execute(&mut admin)
            .await
            .expect("analyze");
    }

    let attempts = attempts(&fx, backend, strategy, &a, &b).await;
    let a_pool = fx.tenantry.tenant_pool("tenant-a").await.expect("A's pool");
    // The control: A's connection works and sees A's own rows, so a refusal below is the
    // door being shut, not a broken connection.
    let mut tx = a_pool.begin().await.expect("begin");
    let own = tx
        .run_script("SELECT name FROM campaigns")
        .await
        .expect("A reads");
    assert_eq!(Value::from(own), serde_json::json!([{"name": "A-visible"}]));
    tx.rollback().await.expect("rollback");
    let out = common::run(
        &fx,
        &["sql", "tenant-a", "--json", "SELECT name FROM campaigns"],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        serde_json::json!([{"name": "A-visible"}])
    );
    for at in &attempts {
        // Through the library.
        let mut tx = a_pool.begin().await.expect("begin");
        match tx.run_script(&at.sql).await {
            Ok(rows) => {
                assert_no_marker(&at.name, "library", &Value::from(rows.clone()));
                tx.commit().await.expect("commit");
            }
            Err(_) => {
                let _ = tx.rollback().await;
            }
        }
    }
    for at in cli_subset(&attempts) {
        // Through `tenantry sql`, as an operator or a test from outside would.
        let out = common::run(&fx, &["sql", "tenant-a", "--json", &at.sql]);
        if out.status.success() {
            let rows: Value = serde_json::from_slice(&out.stdout).expect("json rows");
            assert_no_marker(&at.name, "tenantry sql", &rows);
        }
    }
    reuse_after_unit_of_work(&fx, &a_pool, &b).await;

    let after = rows_of(&fx, &b).await;
    assert_eq!(before, after, "B's rows changed");
    fx.cleanup().await;
}

fn assert_no_marker(attempt: &str, via: &str, rows: &Value) {
    let text = rows.to_string();
    assert!(
        !text.contains(MARKER),
        "door open: {attempt:?} through {via} reached tenant B's rows: {text}"
    );
}

/// The CLI gets every attempt except the long role sweep, of which it gets the roles that
/// matter most (see `attempts`).
fn cli_subset(attempts: &[Attempt]) -> impl Iterator<Item = &Attempt> {
    attempts
        .iter()
        .filter(|a| !a.name.starts_with("SET ROLE (sweep)"))
}

async fn seed(fx: &Fixture, tenant: &Tenant, rows: &[(&str, &str)]) {
    let pool = fx
        .tenantry
        .tenant_pool(tenant.slug.as_str())
        .await
        .expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    for (id, name) in rows {
        let sql = format!(
            "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{id}', '{}', '{name}')",
            tenant.id
        );
        tx.run_script(&sql).await.expect("seed");
    }
    tx.commit().await.expect("commit seed");
}

/// B's campaign rows, read as the administrator (who sees through row-level security).
async fn rows_of(fx: &Fixture, b: &Tenant) -> Vec<(String, String)> {
    let mut conn = fx.tenantry.connect_storage(b).await.expect("connect");
    let sql = match fx.backend {
        Backend::Postgres => "SELECT id, name FROM campaigns WHERE tenant_id = $1 ORDER BY id",
        _ => "SELECT id, name FROM campaigns WHERE tenant_id = ? ORDER BY id",
    };
    sqlx::query(sql)
        .bind(b.id.to_string())
        .fetch_all(&mut conn)
        .await
        .expect("read B's rows")
        .iter()
        .map(|r| (r.get::<String, _>("id"), r.get::<String, _>("name")))
        .collect()
}

/// Every role or user the server knows, read as the administrator.
async fn all_roles(fx: &Fixture, b: &Tenant) -> BTreeSet<String> {
    let mut conn = fx.tenantry.connect_storage(b).await.expect("connect");
    let sql = match fx.backend {
        Backend::Mysql => {
            "SELECT DISTINCT CAST(user AS CHAR) AS name FROM mysql.user WHERE user <> ''"
        }
        _ => "SELECT rolname::text AS name FROM pg_roles",
    };
    sqlx::query(sql)
        .fetch_all(&mut conn)
        .await
        .expect("list roles")
        .iter()
        .map(|r| r.get::<String, _>("name"))
        .collect()
}

async fn attempts(
    fx: &Fixture,
    backend: Backend,
    strategy: Strategy,
    a: &Tenant,
    b: &Tenant,
) -> Vec<Attempt> {
    let read = "SELECT id, name, tenant_id FROM campaigns";
    let b_id = b.id.to_string();
    let b_store = b.storage.to_string();
    let b_role = b.id.role_name().to_string();
    let mut list = Vec::new();
    if backend == Backend::Sqlite {
        let b_file = fx.data_dir().join("tenants").join(format!("{b_store}.db"));
        let b_file = b_file.display();
        list.extend([
            attempt("ATTACH B's file", format!("ATTACH DATABASE '{b_file}' AS b; SELECT * FROM b.campaigns")),
            attempt("ATTACH B's file by URI", format!("ATTACH DATABASE 'file:{b_file}?mode=ro' AS b; SELECT * FROM b.campaigns")),
            attempt("VACUUM INTO B's file", format!("VACUUM INTO '{b_file}'")),
            attempt("insert a row carrying B's id", format!("INSERT INTO campaigns (id, tenant_id, name) VALUES ('forged', '{b_id}', 'forged'); {read}")),
            attempt("update without WHERE", format!("UPDATE campaigns SET name = 'pwned'; {read}")),
            attempt("delete without WHERE", format!("DELETE FROM campaigns; {read}")),
            attempt("load_extension", "SELECT load_extension('/nonexistent')"),
            attempt("RESET ALL", format!("RESET ALL; {read}")),
            attempt("SET ROLE", format!("SET ROLE postgres; {read}")),
            attempt("DISCARD ALL", format!("DISCARD ALL; {read}")),
        ]);
    } else if backend == Backend::Mysql {
        list.extend([
            attempt(
                "B's table by qualified name",
                format!("SELECT * FROM `{b_store}`.campaigns"),
            ),
            attempt("USE B's database", format!("USE `{b_store}`; {read}")),
            attempt(
                "search_path",
                format!("SET search_path TO `{b_store}`; {read}"),
            ),
            attempt("RESET ALL", format!("RESET ALL; {read}")),
            attempt("RESET ROLE", format!("SET ROLE NONE; {read}")),
            attempt(
                "SET SESSION AUTHORIZATION",
                format!("SET SESSION AUTHORIZATION root; {read}"),
            ),
            attempt(
                "set_config local",
                format!("SELECT set_config('tenantry.tenant', '{b_id}', true); {read}"),
            ),
            attempt(
                "set_config session",
                format!("SELECT set_config('tenantry.tenant', '{b_id}', false); {read}"),
            ),
            attempt(
                "ALTER TABLE DISABLE ROW LEVEL SECURITY",
                "ALTER TABLE campaigns DISABLE ROW LEVEL SECURITY",
            ),
            attempt("DISCARD ALL", format!("DISCARD ALL; {read}")),
            attempt("CREATE DATABASE", "CREATE DATABASE tenantry_evil"),
            attempt("CREATE USER", "CREATE USER 'evil'@'%' IDENTIFIED BY 'x'"),
            attempt(
                "GRANT to self",
                format!("GRANT SELECT ON `{b_store}`.* TO CURRENT_USER"),
            ),
            attempt(
                "information_schema",
                "SELECT table_schema AS name FROM information_schema.tables",
            ),
        ]);
        for role in all_roles(fx, b).await {
            let name = if ["root", b_role.as_str()].contains(&role.as_str()) {
                format!("SET ROLE {role}")
            } else {
                format!("SET ROLE (sweep) {role}")
            };
            list.push(attempt(
                name,
                format!("SET ROLE '{role}'; SELECT * FROM `{b_store}`.campaigns"),
            ));
        }
    } else {
        let qualified = match strategy {
            Strategy::Database => format!("SELECT * FROM \"{b_store}\".public.campaigns"),
            Strategy::Schema => format!("SELECT * FROM \"{b_store}\".campaigns"),
            Strategy::Shared => {
                format!("SELECT * FROM tenantry_shared.campaigns WHERE tenant_id = '{b_id}'")
            }
        };
        let a_token_for_b = {
            // A's real context with B's id swapped in: the signature no longer matches.
            format!("{b_id}:{}", "0".repeat(64))
        };
        list.extend([
            attempt("B's table by qualified name", qualified),
            attempt("search_path to B's schema", format!("SET search_path TO \"{b_store}\", tenantry_shared, public; {read}")),
            attempt("search_path set_config", format!("SELECT set_config('search_path', '\"{b_store}\"', false); {read}")),
            attempt("RESET ALL", format!("RESET ALL; {read}")),
            attempt("RESET ROLE", format!("RESET ROLE; {read}")),
            attempt("SET SESSION AUTHORIZATION", format!("SET SESSION AUTHORIZATION postgres; {read}")),
            attempt("set_config local to B's id", format!("SELECT set_config('tenantry.tenant', '{b_id}', true); {read}")),
            attempt("set_config session to B's id", format!("SELECT set_config('tenantry.tenant', '{b_id}', false); {read}")),
            attempt("set_config with a forged signature", format!("SELECT set_config('tenantry.tenant', '{a_token_for_b}', true); {read}")),
            attempt("SET tenantry.tenant", format!("SET tenantry.tenant = '{b_id}'; {read}")),
            attempt("insert a row carrying B's id", format!("INSERT INTO campaigns (id, tenant_id, name) VALUES ('forged', '{b_id}', 'forged'); {read}")),
            attempt("update without WHERE", format!("UPDATE campaigns SET name = 'pwned'; {read}")),
            attempt("delete without WHERE", format!("DELETE FROM campaigns; {read}")),
            attempt("move own rows to B", format!("UPDATE campaigns SET tenant_id = '{b_id}'")),
            attempt("ALTER TABLE DISABLE ROW LEVEL SECURITY", format!("ALTER TABLE campaigns DISABLE ROW LEVEL SECURITY; {read}")),
            attempt("ALTER TABLE NO FORCE ROW LEVEL SECURITY", format!("ALTER TABLE campaigns NO FORCE ROW LEVEL SECURITY; {read}")),
            attempt("DROP POLICY", format!("DROP POLICY tenantry_tenant_isolation ON campaigns; {read}")),
            attempt("DISCARD ALL", format!("DISCARD ALL; {read}")),
            attempt("read the context key", "SELECT encode(k_opad, 'hex') AS name FROM tenantry_private.context_key"),
            attempt("replace the verifier", "CREATE OR REPLACE FUNCTION tenantry_private.current_tenant() RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$"),
            attempt("CREATE ROLE", "CREATE ROLE evil LOGIN SUPERUSER"),
            attempt("CREATE DATABASE", "CREATE DATABASE tenantry_evil"),
            attempt("dblink", "CREATE EXTENSION dblink"),
            attempt("planner statistics", "SELECT concat(most_common_vals::text, histogram_bounds::text) AS name FROM pg_stats WHERE tablename = 'campaigns'"),
        ]);
        for role in all_roles(fx, b).await {
            let important = [
                "postgres",
                b_role.as_str(),
                "pg_read_all_data",
                "pg_write_all_data",
            ];
            let name = if important.contains(&role.as_str()) || role.starts_with("p_") {
                format!("SET ROLE {role}")
            } else {
                format!("SET ROLE (sweep) {role}")
            };
            list.push(attempt(name, format!("SET ROLE \"{role}\"; {read}")));
        }
    }
    let _ = a;
    list
}

/// A pooled connection reused right after B's unit of work carries nothing of B: A's pool
/// (shared with B's under the shared strategy) hands out a connection that sees none of B's
/// rows, with or without `DISCARD ALL`.
async fn reuse_after_unit_of_work(fx: &Fixture, a_pool: &TenantPool, b: &Tenant) {
    let b_pool = fx
        .tenantry
        .tenant_pool(b.slug.as_str())
        .await
        .expect("B's pool");
    let mut tx = b_pool.begin().await.expect("B's unit of work");
    let rows = tx
        .run_script("SELECT name FROM campaigns")
        .await
        .expect("B reads");
    assert!(
        Value::from(rows).to_string().contains(MARKER),
        "B sees its own rows"
    );
    tx.commit().await.expect("commit");

    if let Some(pool) = a_pool.postgres() {
        for script in [
            "SELECT name FROM campaigns",
            "DISCARD ALL; SELECT name FROM campaigns",
        ] {
            let mut conn = pool.acquire().await.expect("a pooled connection");
            let rows: Vec<String> = match sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                .fetch_all(&mut *conn)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .filter_map(|r| r.try_get::<String, _>(0).ok())
                    .collect(),
                Err(_) => Vec::new(),
            };
            assert!(
                rows.iter().all(|r| !r.contains(MARKER)),
                "door open: reusing a pooled connection ({script}) reached B's rows: {rows:?}"
            );
        }
    }
    if let Some(pool) = a_pool.mysql() {
        let mut conn = pool.acquire().await.expect("a pooled connection");
        let rows = sqlx::raw_sql("SELECT name FROM campaigns")
            .fetch_all(&mut *conn)
            .await
            .expect("A reads");
        assert!(rows.iter().all(|r| !r.get::<String, _>(0).contains(MARKER)));
    }
}
