//! The shared pool against arbitrary SQL on a tenant's connection: one test per door, each
//! from a fresh fixture with freshly seeded rows, tried through pooled library connections
//! on a connection that tenant B reuses (the shared pool's only idle connection, which B's
//! next unit takes) and through
//! `tenantry sql`. Each asserts the specific outcome: the refusal's SQLSTATE, or B's rows
//! untouched and unseen.

mod common;

use serde_json::{Value, json};
use sqlx::Row;
use tenantry::{Settings, Strategy, Tenant, TenantPool, Tenantry};
use tenantry_testkit::{Backend, Fixture};

/// Two shared tenants with seeded rows, and a `Tenantry` whose tenants hold one connection
/// each, used one unit at a time: the shared pool keeps one connection, so B's unit of work
/// runs on the very connection A's used.
struct Pair {
    fx: Fixture,
    a: Tenant,
    b: Tenant,
    reused: Tenantry,
}

async fn pair() -> Option<Pair> {
    pair_with(&[]).await
}

/// The same, with extra migrations (`(file name, SQL)`) after the example set.
async fn pair_with(migrations: &[(&str, &str)]) -> Option<Pair> {
    let fx = Fixture::new(Backend::Postgres).await?;
    for (name, sql) in migrations {
        fx.write_migration(name, sql);
    }
    let a = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("create A");
    let b = fx
        .create_with("shared-b", Strategy::Shared)
        .await
        .expect("create B");
    let reused = fx
        .reopen(Settings {
            pool_max_connections: Some(1),
            ..Settings::default()
        })
        .await;
    seed(&reused, &a, &[("a1", "A-visible")]).await;
    seed(&reused, &b, &[("b1", "B-secret-1"), ("b2", "B-secret-2")]).await;
    Some(Pair { fx, a, b, reused })
}

async fn seed(t: &Tenantry, tenant: &Tenant, rows: &[(&str, &str)]) {
    let pool = t.tenant_pool(tenant.slug.as_str()).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    for (id, name) in rows {
        tx.run_script(&format!(
            "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{id}', '{}', '{name}')",
            tenant.id
        ))
        .await
        .expect("seed");
    }
    tx.commit().await.expect("commit seed");
}

impl Pair {
    async fn pool(&self, tenant: &Tenant) -> TenantPool {
        self.reused
            .tenant_pool(tenant.slug.as_str())
            .await
            .expect("pool")
    }

    /// B's rows as the administrator sees them.
    async fn b_rows(&self) -> Vec<(String, String)> {
        let mut conn = self
            .fx
            .tenantry
            .connect_storage(&self.b)
            .await
            .expect("admin");
        sqlx::query("SELECT id, name FROM campaigns WHERE tenant_id = $1 ORDER BY id")
            .bind(self.b.id.to_string())
            .fetch_all(&mut conn)
            .await
            .expect("B's rows")
            .iter()
            .map(|r| (r.get("id"), r.get("name")))
            .collect()
    }

    fn b_seeded() -> Vec<(String, String)> {
        vec![
            ("b1".into(), "B-secret-1".into()),
            ("b2".into(), "B-secret-2".into()),
        ]
    }

    /// Runs `sql` as A in one unit of work through the library and expects the database to
    /// refuse it with `code`; then through `tenantry sql`, expecting the same refusal.
    async fn refused(&self, sql: &str, code: &str, cli_says: &str) {
        let pool = self.pool(&self.a).await;
        let mut tx = pool.begin().await.expect("begin");
        let err = tx.run_script(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&err).as_deref(), Some(code), "{sql}: {err}");
        tx.rollback().await.expect("rollback");
        let err = common::fails(&self.fx, &["sql", "shared-a", sql], cli_says);
        assert!(!err.contains("B-secret"), "{err}");
    }

    async fn cleanup(self) {
        assert_eq!(self.b_rows().await, Pair::b_seeded(), "B's rows changed");
        self.fx.cleanup().await;
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The query an application runs with sqlx's typed, prepared statements.
const TYPED: &str = "SELECT name FROM campaigns WHERE id = $1";

async fn typed_names(tx: &mut tenantry::TenantTx, id: &str) -> Vec<String> {
    sqlx::query_scalar(TYPED)
        .bind(id)
        .fetch_all(tx.as_postgres().expect("a PostgreSQL unit"))
        .await
        .expect("typed query")
}

/// A replaces the prepared statements on its connection with its own; B's next unit on that
/// connection must run B's query, not A's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_prepared_statement() {
    let Some(p) = pair().await else { return };
    let a = p.pool(&p.a).await;
    let mut tx = a.begin().await.expect("begin");
    assert_eq!(typed_names(&mut tx, "a1").await, ["A-visible"]);
    let mut plant = String::from("DEALLOCATE ALL;");
    for n in 1..=20 {
        plant.push_str(&format!(
            "PREPARE sqlx_s_{n}(text) AS SELECT 'A-planted'::varchar AS name;"
        ));
    }
    tx.run_script(&plant).await.expect("A prepares statements");
    tx.commit().await.expect("commit");

    let b = p.pool(&p.b).await;
    let mut tx = b.begin().await.expect("B begins on A's connection");
    assert_eq!(typed_names(&mut tx, "b1").await, ["B-secret-1"]);
    tx.commit().await.expect("commit");
    // Through `tenantry sql`: the statements die with the process; B is unaffected.
    common::ok(&p.fx, &["sql", "shared-a", &plant]);
    let out = common::ok(
        &p.fx,
        &[
            "sql",
            "shared-b",
            "--json",
            "SELECT name FROM campaigns ORDER BY id",
        ],
    );
    let rows: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        rows,
        json!([{"name": "B-secret-1"}, {"name": "B-secret-2"}])
    );
    p.cleanup().await;
}

/// B declares a cursor that outlives its transaction; A, next on the connection, must not be
/// able to fetch from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hold_cursor() {
    let Some(p) = pair().await else { return };
    let b = p.pool(&p.b).await;
    let mut tx = b.begin().await.expect("begin");
    tx.run_script("DECLARE b_cursor CURSOR WITH HOLD FOR SELECT name FROM campaigns")
        .await
        .expect("B declares a cursor");
    tx.commit().await.expect("commit");

    let a = p.pool(&p.a).await;
    let mut tx = a.begin().await.expect("begin");
    let err = tx
        .run_script("FETCH ALL FROM b_cursor")
        .await
        .expect_err("B's cursor is gone");
    assert_eq!(sqlstate(&err).as_deref(), Some("34000"), "{err}");
    tx.rollback().await.expect("rollback");
    p.cleanup().await;
}

/// `lastval()` after B used a sequence must not tell A anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lastval_of_the_previous_unit() {
    let Some(p) = pair_with(&[(
        "20250101000009_tickets.sql",
        "CREATE TABLE tickets (tenant_id VARCHAR(26) NOT NULL, id BIGSERIAL, \
         PRIMARY KEY (tenant_id, id));",
    )])
    .await
    else {
        return;
    };
    let b = p.pool(&p.b).await;
    let mut tx = b.begin().await.expect("begin");
    tx.run_script(&format!(
        "INSERT INTO tickets (tenant_id) VALUES ('{}')",
        p.b.id
    ))
    .await
    .expect("B inserts");
    tx.commit().await.expect("commit");
    p.refused("SELECT lastval()", "55000", "lastval is not yet defined")
        .await;
    p.cleanup().await;
}

/// B listens on a channel; A must not learn of it, nor inherit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_channels() {
    let Some(p) = pair().await else { return };
    let b = p.pool(&p.b).await;
    let mut tx = b.begin().await.expect("begin");
    tx.run_script("LISTEN b_secret_channel")
        .await
        .expect("B listens");
    tx.commit().await.expect("commit");
    p.refused(
        "SELECT pg_listening_channels()",
        "42501",
        "permission denied for function pg_listening_channels",
    )
    .await;
    p.cleanup().await;
}

/// Advisory locks, Tenantry's own included, are out of a tenant's reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks() {
    let Some(p) = pair().await else { return };
    for (sql, function) in [
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        ("SELECT pg_try_advisory_lock(1)", "pg_try_advisory_lock"),
        ("SELECT pg_advisory_xact_lock(1)", "pg_advisory_xact_lock"),
        ("SELECT pg_try_advisory_lock(1, 2)", "pg_try_advisory_lock"),
        (
            "SELECT pg_advisory_lock_shared(1)",
            "pg_advisory_lock_shared",
        ),
    ] {
        p.refused(
            sql,
            "42501",
            &format!("permission denied for function {function}"),
        )
        .await;
    }
    p.cleanup().await;
}

/// Large objects are not covered by row-level security: a tenant can neither make nor read
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects() {
    let Some(p) = pair().await else { return };
    for (sql, function) in [
        ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
        ("SELECT lo_create(0)", "lo_create"),
        ("SELECT lo_get(1)", "lo_get"),
        ("SELECT lo_open(1, 262144)", "lo_open"),
        ("SELECT lo_put(1, 0, 'x')", "lo_put"),
        ("SELECT lo_unlink(1)", "lo_unlink"),
    ] {
        p.refused(
            sql,
            "42501",
            &format!("permission denied for function {function}"),
        )
        .await;
    }
    p.cleanup().await;
}

/// Other sessions' statements (with their literals) and locks are hidden, and other
/// backends cannot be signalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sessions_activity_and_signals() {
    let Some(p) = pair().await else { return };
    for (sql, function) in [
        ("SELECT query FROM pg_stat_activity", "pg_stat_get_activity"),
        (
            "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() AS s",
            "pg_stat_get_backend_idset",
        ),
        ("SELECT * FROM pg_locks", "pg_lock_status"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
        ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
        ("SELECT pg_blocking_pids(1)", "pg_blocking_pids"),
        (
            "SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables",
            "pg_stat_get_",
        ),
        (
            "SELECT pg_total_relation_size('campaigns')",
            "pg_total_relation_size",
        ),
    ] {
        p.refused(
            sql,
            "42501",
            &format!("permission denied for function {function}"),
        )
        .await;
    }
    p.cleanup().await;
}

/// A changes the runtime role's defaults (all tenants log in as that role); B's next
/// connection, in another process, must not inherit them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_level_settings() {
    let Some(p) = pair().await else { return };
    for setting in [
        "default_transaction_read_only = on",
        "statement_timeout = 1",
        "search_path = pg_temp",
    ] {
        let sql = format!("ALTER ROLE CURRENT_USER SET {setting}");
        // Through the library: the change is made, and undone before any connection is used.
        let pool = p.pool(&p.a).await;
        let mut tx = pool.begin().await.expect("begin");
        tx.run_script(&sql)
            .await
            .expect("the role may alter itself");
        tx.commit().await.expect("commit");
        let fresh = p.fx.reopen(Settings::default()).await;
        let b = fresh.tenant_pool("shared-b").await.expect("B's pool");
        let mut tx = b.begin().await.expect("B begins");
        let rows = tx
            .run_script(&format!(
                "INSERT INTO campaigns (id, tenant_id, name) VALUES ('b3', '{}', 'B-new'); \
                 SELECT pg_sleep(0.01)::text AS slept, COUNT(*) AS n FROM campaigns",
                p.b.id
            ))
            .await
            .unwrap_or_else(|e| panic!("{setting} reached B: {e}"));
        assert_eq!(rows[0]["n"], json!(3), "{setting}");
        tx.rollback().await.expect("rollback");
        fresh.catalog().close().await;
        // Through `tenantry sql`, each command a process of its own.
        common::ok(&p.fx, &["sql", "shared-a", &sql]);
        let out = common::ok(
            &p.fx,
            &[
                "sql",
                "shared-b",
                "--json",
                "SELECT pg_sleep(0.01)::text AS slept, COUNT(*) AS n FROM campaigns",
            ],
        );
        let rows: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(rows[0]["n"], json!(2), "{setting} through tenantry sql");
    }
    p.cleanup().await;
}

/// A seeds the random generator; B's next unit on that connection must not draw A's
/// sequence (`DISCARD ALL` leaves the generator alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_seed_of_the_previous_unit() {
    let Some(p) = pair().await else { return };
    let a = p.pool(&p.a).await;
    let mut tx = a.begin().await.expect("begin");
    let seeded = tx
        .run_script("SELECT setseed(0.42); SELECT random()::text AS r")
        .await
        .expect("A draws from its seed");
    tx.run_script("SELECT setseed(0.42)")
        .await
        .expect("A seeds again for B");
    tx.commit().await.expect("commit");
    let b = p.pool(&p.b).await;
    let mut tx = b.begin().await.expect("begin");
    let drawn = tx
        .run_script("SELECT random()::text AS r")
        .await
        .expect("B draws");
    tx.commit().await.expect("commit");
    assert_ne!(drawn, seeded, "B drew from A's seed");
    p.cleanup().await;
}

/// A commits a change to the runtime role's settings, then holds the role's row locked in a
/// transaction it never ends; B's next connection must still be restored and served (the
/// restoration ends A's session instead of waiting on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_row_held_by_an_open_transaction() {
    let Some(p) = pair().await else { return };
    let a_process =
        p.fx.reopen(Settings {
            pool_max_connections: Some(2),
            ..Settings::default()
        })
        .await;
    let a = a_process.tenant_pool("shared-a").await.expect("A's pool");
    // Both connections are open before the tampering.
    let mut tamper = a.begin().await.expect("begin");
    let mut holder = a.begin().await.expect("begin");
    tamper
        .run_script("ALTER ROLE CURRENT_USER SET default_transaction_read_only = on")
        .await
        .expect("A changes the role");
    tamper.commit().await.expect("commit");
    holder
        .run_script("ALTER ROLE CURRENT_USER SET work_mem = '1MB'")
        .await
        .expect("A locks the role's row");

    let fresh = p.fx.reopen(Settings::default()).await;
    let b = fresh.tenant_pool("shared-b").await.expect("B's pool");
    let mut tx = b.begin().await.expect("B is served");
    let rows = tx
        .run_script(&format!(
            "INSERT INTO campaigns (id, tenant_id, name) VALUES ('b3', '{}', 'B-new'); \
             SELECT COUNT(*) AS n FROM campaigns",
            p.b.id
        ))
        .await
        .expect("B writes");
    assert_eq!(rows[0]["n"], json!(3));
    tx.rollback().await.expect("rollback");
    assert!(
        holder.commit().await.is_err(),
        "A's session holding the role was ended"
    );
    fresh.catalog().close().await;
    a_process.catalog().close().await;
    p.cleanup().await;
}
