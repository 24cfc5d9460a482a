//! The isolation promise: through tenant A's application connection — the library's
//! `TenantPool` and `tenantry sql` — every door to tenant B's data is tried, each attempt in
//! the engine's own syntax and against freshly seeded data (the library's unit of work is
//! rolled back; after `tenantry sql`, which commits, A is seeded afresh). Each attempt
//! asserts its specific outcome: the database refuses it with the expected SQLSTATE, or it
//! runs and sees none of B's rows; after every attempt B's rows are exactly as seeded.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::{AssertSqlSafe, Row};
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

/// What an attempt must come to.
#[derive(Debug, Clone)]
enum Expect {
    /// The database refuses it with one of these SQLSTATEs (SQLite: its result code).
    Refused(&'static [&'static str]),
    /// It runs, and its rows show nothing of B (neither B's rows nor `hidden`).
    Unseen,
}

/// One attack: a name that says which door it tries, its SQL, and its expected outcome.
struct Attempt {
    name: String,
    sql: String,
    expect: Expect,
}

fn refused(
    name: impl Into<String>,
    sql: impl Into<String>,
    codes: &'static [&'static str],
) -> Attempt {
    Attempt {
        name: name.into(),
        sql: sql.into(),
        expect: Expect::Refused(codes),
    }
}

fn unseen(name: impl Into<String>, sql: impl Into<String>) -> Attempt {
    Attempt {
        name: name.into(),
        sql: sql.into(),
        expect: Expect::Unseen,
    }
}

/// PostgreSQL: insufficient privilege.
const DENIED: &[&str] = &["42501"];
/// MySQL: access denied (`ER_TABLEACCESS_DENIED_ERROR`, `ER_DBACCESS_DENIED_ERROR`, …).
const MY_DENIED: &[&str] = &["42000"];
/// SQLite: `SQLITE_ERROR` (what its refusals of `ATTACH`, `VACUUM INTO` and
/// `load_extension` return).
const SQLITE_ERROR: &[&str] = &["1"];

struct Scene {
    fx: Fixture,
    a: Tenant,
    b: Tenant,
    strategy: Strategy,
    /// A's login role: its own, or its shared pool's.
    a_login: String,
    /// What else must never appear in A's results (B's storage name, where A cannot see
    /// server metadata).
    hidden: Vec<String>,
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
    let hidden = match backend {
        // PostgreSQL lists every database and role to every login (pg_database, pg_roles):
        // tenant names are ids, not data; MySQL shows a user only its own databases.
        Backend::Mysql => vec![b.storage.to_string()],
        _ => Vec::new(),
    };
    let a_login = match strategy {
        Strategy::Shared => fx
            .tenantry
            .catalog()
            .shared_pool(&fx.server)
            .await
            .expect("lookup")
            .map(|p| p.role.to_string())
            .unwrap_or_default(),
        _ => a.id.role_name().to_string(),
    };
    let scene = Scene {
        a_login,
        fx,
        a,
        b,
        strategy,
        hidden,
    };
    scene.seed_a().await;
    scene.seed_b().await;
    if backend == Backend::Postgres {
        // Fill the planner statistics, so reading them is a real attempt.
        scene.admin_exec(&scene.b, "ANALYZE campaigns").await;
    }
    let a_pool = scene
        .fx
        .tenantry
        .tenant_pool("tenant-a")
        .await
        .expect("A's pool");
    scene.control(&a_pool).await;

    let attempts = attempts(&scene, backend).await;
    for at in &attempts {
        // Through the library, in a unit of work that is rolled back.
        let mut tx = a_pool.begin().await.expect("begin");
        let result = tx.run_script(&at.sql).await;
        let _ = tx.rollback().await;
        scene.verdict_library(at, result);
        scene.after(at).await;
    }
    for at in attempts
        .iter()
        .filter(|a| !a.name.starts_with("SET ROLE (sweep)"))
    {
        // Through `tenantry sql`, which commits: A is seeded afresh after each.
        let out = common::run(&scene.fx, &["sql", "tenant-a", "--json", &at.sql]);
        scene.verdict_cli(at, &out);
        scene.after(at).await;
    }
    reuse_after_unit_of_work(&scene, &a_pool).await;
    scene.fx.cleanup().await;
}

impl Scene {
    fn backend(&self) -> Backend {
        self.fx.backend
    }

    /// A's own rows, through A's pool: the control that A's connection works.
    async fn control(&self, a_pool: &TenantPool) {
        let mut tx = a_pool.begin().await.expect("begin");
        let own = tx
            .run_script("SELECT name FROM campaigns")
            .await
            .expect("A reads");
        assert_eq!(Value::from(own), serde_json::json!([{"name": "A-visible"}]));
        tx.rollback().await.expect("rollback");
        let out = common::run(
            &self.fx,
            &["sql", "tenant-a", "--json", "SELECT name FROM campaigns"],
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).expect("json"),
            serde_json::json!([{"name": "A-visible"}])
        );
    }

    fn verdict_library(
        &self,
        at: &Attempt,
        result: Result<Vec<serde_json::Map<String, Value>>, sqlx::Error>,
    ) {
        match (&at.expect, result) {
            (Expect::Unseen, Ok(rows)) => self.assert_unseen(at, "library", &Value::from(rows)),
            (Expect::Unseen, Err(e)) => {
                panic!(
                    "{:?} through the library: expected to run unseen, failed: {e}",
                    at.name
                )
            }
            (Expect::Refused(codes), Ok(rows)) => panic!(
                "door open: {:?} through the library ran (expected {codes:?}): {rows:?}",
                at.name
            ),
            (Expect::Refused(codes), Err(e)) => {
                let code = match &e {
                    sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                    _ => None,
                };
                assert!(
                    code.as_deref().is_some_and(|c| codes.contains(&c)),
                    "{:?} through the library: expected {codes:?}, got {code:?}: {e}",
                    at.name
                );
            }
        }
    }

    fn verdict_cli(&self, at: &Attempt, out: &std::process::Output) {
        let stderr = common::stderr(out);
        match &at.expect {
            Expect::Unseen => {
                assert!(
                    out.status.success(),
                    "{:?} through tenantry sql: expected to run unseen: {stderr}",
                    at.name
                );
                let rows: Value = serde_json::from_slice(&out.stdout).expect("json rows");
                self.assert_unseen(at, "tenantry sql", &rows);
            }
            Expect::Refused(codes) => {
                assert!(
                    !out.status.success(),
                    "door open: {:?} through tenantry sql ran: {}",
                    at.name,
                    common::stdout(out)
                );
                assert!(
                    codes
                        .iter()
                        .any(|c| stderr.contains(&format!("(SQLSTATE {c})"))),
                    "{:?} through tenantry sql: expected {codes:?}: {stderr}",
                    at.name
                );
                assert!(!stderr.contains(MARKER), "{stderr}");
            }
        }
    }

    fn assert_unseen(&self, at: &Attempt, via: &str, rows: &Value) {
        let text = rows.to_string();
        for secret in std::iter::once(MARKER).chain(self.hidden.iter().map(String::as_str)) {
            assert!(
                !text.contains(secret),
                "door open: {:?} through {via} reached tenant B ({secret}): {text}",
                at.name
            );
        }
    }

    /// After an attempt: B exactly as seeded, and A seeded afresh.
    async fn after(&self, at: &Attempt) {
        assert_eq!(
            self.rows(&self.b).await,
            vec![
                ("b1".to_owned(), "B-secret-1".to_owned()),
                ("b2".to_owned(), "B-secret-2".to_owned()),
            ],
            "{:?} changed B's rows",
            at.name
        );
        self.seed_a().await;
    }

    async fn seed_a(&self) {
        self.reseed(&self.a, &[("a1", "A-visible")]).await;
    }

    async fn seed_b(&self) {
        self.reseed(&self.b, &[("b1", "B-secret-1"), ("b2", "B-secret-2")])
            .await;
    }

    /// Replaces a tenant's campaigns with `rows`, as the administrator: every row of its own
    /// storage, or (shared) every row carrying its id.
    async fn reseed(&self, tenant: &Tenant, rows: &[(&str, &str)]) {
        let mut sql = match self.strategy {
            Strategy::Shared => format!("DELETE FROM campaigns WHERE tenant_id = '{}';", tenant.id),
            _ => "DELETE FROM campaigns;".to_owned(),
        };
        for (id, name) in rows {
            sql.push_str(&format!(
                "INSERT INTO campaigns (id, tenant_id, name) VALUES ('{id}', '{}', '{name}');",
                tenant.id
            ));
        }
        self.admin_exec(tenant, &sql).await;
    }

    async fn admin_exec(&self, tenant: &Tenant, sql: &str) {
        let mut conn = self
            .fx
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("admin");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("admin SQL");
    }

    /// A tenant's campaign rows, read as the administrator.
    async fn rows(&self, tenant: &Tenant) -> Vec<(String, String)> {
        let mut conn = self
            .fx
            .tenantry
            .connect_storage(tenant)
            .await
            .expect("admin");
        let sql = match self.backend() {
            Backend::Postgres => "SELECT id, name FROM campaigns WHERE tenant_id = $1 ORDER BY id",
            _ => "SELECT id, name FROM campaigns WHERE tenant_id = ? ORDER BY id",
        };
        sqlx::query(sql)
            .bind(tenant.id.to_string())
            .fetch_all(&mut conn)
            .await
            .expect("read rows")
            .iter()
            .map(|r| (r.get::<String, _>("id"), r.get::<String, _>("name")))
            .collect()
    }

    /// Every role or user the server knows, read as the administrator.
    async fn all_roles(&self) -> BTreeSet<String> {
        let mut conn = self
            .fx
            .tenantry
            .connect_storage(&self.b)
            .await
            .expect("admin");
        let sql = match self.backend() {
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
}

async fn attempts(scene: &Scene, backend: Backend) -> Vec<Attempt> {
    match backend {
        Backend::Sqlite => sqlite_attempts(scene),
        Backend::Mysql => mysql_attempts(scene).await,
        Backend::Postgres => postgres_attempts(scene).await,
    }
}

/// Writes that stay in A's own storage (database strategies): they run, and B is untouched.
fn own_writes(b_id: &str, read: &str) -> Vec<Attempt> {
    vec![
        unseen(
            "insert a row carrying B's id",
            format!(
                "INSERT INTO campaigns (id, tenant_id, name) VALUES ('forged', '{b_id}', 'forged'); {read}"
            ),
        ),
        unseen(
            "update without WHERE",
            format!("UPDATE campaigns SET name = 'pwned'; {read}"),
        ),
        unseen(
            "delete without WHERE",
            format!("DELETE FROM campaigns; {read}"),
        ),
        unseen(
            "move own rows to B",
            format!("UPDATE campaigns SET tenant_id = '{b_id}'; {read}"),
        ),
    ]
}

fn sqlite_attempts(scene: &Scene) -> Vec<Attempt> {
    let read = "SELECT id, name, tenant_id FROM campaigns";
    let b_file = scene
        .fx
        .data_dir()
        .join("tenants")
        .join(format!("{}.db", scene.b.storage));
    let b_file = b_file.display();
    let mut list = vec![
        refused(
            "ATTACH B's file",
            format!("ATTACH DATABASE '{b_file}' AS b; SELECT * FROM b.campaigns"),
            SQLITE_ERROR,
        ),
        refused(
            "ATTACH B's file by URI",
            format!("ATTACH DATABASE 'file:{b_file}?mode=ro' AS b; SELECT * FROM b.campaigns"),
            SQLITE_ERROR,
        ),
        refused(
            "VACUUM INTO B's file",
            format!("VACUUM INTO '{b_file}'"),
            SQLITE_ERROR,
        ),
        refused(
            "load_extension",
            "SELECT load_extension('/nonexistent')",
            SQLITE_ERROR,
        ),
        unseen(
            "the files this connection has open",
            "SELECT name, file FROM pragma_database_list",
        ),
    ];
    list.extend(own_writes(&scene.b.id.to_string(), read));
    list
}

async fn mysql_attempts(scene: &Scene) -> Vec<Attempt> {
    let read = "SELECT id, name, tenant_id FROM campaigns";
    let b_store = scene.b.storage.to_string();
    let b_role = scene.b.id.role_name().to_string();
    let mut list = vec![
        refused(
            "B's table by qualified name",
            format!("SELECT * FROM `{b_store}`.campaigns"),
            MY_DENIED,
        ),
        refused(
            "USE B's database",
            format!("USE `{b_store}`; {read}"),
            MY_DENIED,
        ),
        refused(
            "CREATE DATABASE",
            "CREATE DATABASE tenantry_evil",
            MY_DENIED,
        ),
        refused(
            "CREATE USER",
            "CREATE USER 'evil'@'%' IDENTIFIED BY 'x'",
            MY_DENIED,
        ),
        refused(
            "GRANT to self",
            format!("GRANT SELECT ON `{b_store}`.* TO CURRENT_USER"),
            MY_DENIED,
        ),
        refused(
            "read the user table",
            "SELECT user, authentication_string FROM mysql.user",
            MY_DENIED,
        ),
        refused(
            "write a file",
            format!("{read} INTO OUTFILE '/tmp/tenantry-evil'"),
            MY_DENIED,
        ),
        unseen("read a file", "SELECT LOAD_FILE('/etc/hostname') AS name"),
        unseen(
            "information_schema tables",
            "SELECT table_schema, table_name FROM information_schema.tables",
        ),
        unseen("SHOW DATABASES", "SHOW DATABASES"),
        unseen(
            "other sessions",
            "SELECT user, db, info FROM information_schema.processlist",
        ),
        unseen("SET ROLE NONE", format!("SET ROLE NONE; {read}")),
    ];
    list.extend(own_writes(&scene.b.id.to_string(), read));
    for role in scene.all_roles().await {
        let name = if ["root", b_role.as_str()].contains(&role.as_str()) {
            format!("SET ROLE {role}")
        } else {
            format!("SET ROLE (sweep) {role}")
        };
        // MariaDB: "Invalid role specification" (`ER_INVALID_ROLE`).
        list.push(refused(
            name,
            format!("SET ROLE '{role}'; SELECT * FROM `{b_store}`.campaigns"),
            &["OP000"],
        ));
    }
    list
}

async fn postgres_attempts(scene: &Scene) -> Vec<Attempt> {
    let read = "SELECT id, name, tenant_id FROM campaigns";
    let b_id = scene.b.id.to_string();
    let b_store = scene.b.storage.to_string();
    let b_role = scene.b.id.role_name().to_string();
    let shared = scene.strategy == Strategy::Shared;
    // A's real context shape with B's id: the signature does not match.
    let forged = format!("{b_id}:{}", "0".repeat(64));
    let mut list = vec![
        match scene.strategy {
            // Another database cannot be named in a query.
            Strategy::Database => refused(
                "B's table by qualified name",
                format!("SELECT * FROM \"{b_store}\".public.campaigns"),
                &["0A000"],
            ),
            Strategy::Schema => refused(
                "B's table by qualified name",
                format!("SELECT * FROM \"{b_store}\".campaigns"),
                DENIED,
            ),
            Strategy::Shared => unseen(
                "B's rows by their tenant id",
                format!("SELECT * FROM tenantry_shared.campaigns WHERE tenant_id = '{b_id}'"),
            ),
        },
        unseen("RESET ALL", format!("RESET ALL; {read}")),
        unseen("RESET ROLE", format!("RESET ROLE; {read}")),
        refused(
            "SET SESSION AUTHORIZATION",
            format!("SET SESSION AUTHORIZATION postgres; {read}"),
            DENIED,
        ),
        unseen(
            "set_config local to B's id",
            format!("SELECT set_config('tenantry.tenant', '{b_id}', true); {read}"),
        ),
        unseen(
            "set_config session to B's id",
            format!("SELECT set_config('tenantry.tenant', '{b_id}', false); {read}"),
        ),
        unseen(
            "set_config with a forged signature",
            format!("SELECT set_config('tenantry.tenant', '{forged}', true); {read}"),
        ),
        unseen(
            "SET tenantry.tenant",
            format!("SET tenantry.tenant = '{b_id}'; {read}"),
        ),
        refused(
            "ALTER TABLE DISABLE ROW LEVEL SECURITY",
            format!("ALTER TABLE campaigns DISABLE ROW LEVEL SECURITY; {read}"),
            DENIED,
        ),
        refused(
            "ALTER TABLE NO FORCE ROW LEVEL SECURITY",
            format!("ALTER TABLE campaigns NO FORCE ROW LEVEL SECURITY; {read}"),
            DENIED,
        ),
        refused("DISCARD ALL", format!("DISCARD ALL; {read}"), &["25001"]),
        refused("CREATE ROLE", "CREATE ROLE evil LOGIN SUPERUSER", DENIED),
        // CREATE DATABASE cannot run in a unit of work at all; the right to it is refused.
        refused(
            "grant itself CREATEDB",
            "ALTER ROLE CURRENT_USER CREATEDB",
            DENIED,
        ),
        refused(
            "grant itself BYPASSRLS",
            "ALTER ROLE CURRENT_USER BYPASSRLS",
            DENIED,
        ),
        // Refused for want of the privilege, or because the extension is not installed.
        refused("dblink", "CREATE EXTENSION dblink", &["42501", "58P01"]),
        unseen(
            "planner statistics",
            "SELECT concat(most_common_vals::text, histogram_bounds::text) AS name FROM pg_stats WHERE tablename = 'campaigns'",
        ),
        refused(
            "read a server file",
            "SELECT pg_read_file('/etc/hostname')",
            DENIED,
        ),
        refused(
            "COPY to a program",
            "COPY campaigns TO PROGRAM 'true'",
            DENIED,
        ),
    ];
    if shared {
        list.extend([
            refused("insert a row carrying B's id", format!("INSERT INTO campaigns (id, tenant_id, name) VALUES ('forged', '{b_id}', 'forged'); {read}"), DENIED),
            unseen("update without WHERE", format!("UPDATE campaigns SET name = 'pwned'; {read}")),
            unseen("delete without WHERE", format!("DELETE FROM campaigns; {read}")),
            refused("move own rows to B", format!("UPDATE campaigns SET tenant_id = '{b_id}'"), DENIED),
            refused("DROP POLICY", format!("DROP POLICY tenantry_tenant_isolation ON campaigns; {read}"), DENIED),
            refused("read the context key", "SELECT encode(k_opad, 'hex') AS name FROM tenantry_private.context_key", DENIED),
            refused("admit oneself as B", format!("INSERT INTO tenantry_private.admitted VALUES ('{b_id}')"), DENIED),
            refused("replace the verifier", "CREATE OR REPLACE FUNCTION tenantry_private.current_tenant() RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$", DENIED),
            refused("a table in the shared schema", "CREATE TABLE tenantry_shared.evil (x text)", DENIED),
            refused("a temporary table", "CREATE TEMP TABLE campaigns (id text)", DENIED),
        ]);
    } else {
        list.extend(own_writes(&b_id, read));
        list.extend([
            // Not the owner of the table: the policy cannot even be looked for.
            refused(
                "DROP POLICY",
                format!("DROP POLICY tenantry_tenant_isolation ON campaigns; {read}"),
                &["42704", "42501"],
            ),
            refused("a table of its own", "CREATE TABLE evil (x text)", DENIED),
        ]);
    }
    for role in scene.all_roles().await {
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
        let sql = format!("SET ROLE \"{role}\"; {read}");
        // A's own login role (its tenant role, or the pool's): allowed, and changes nothing.
        if role == scene.a_login {
            list.push(unseen(name, sql));
        } else {
            list.push(refused(name, sql, DENIED));
        }
    }
    list
}

/// A pooled connection reused right after B's unit of work carries nothing of B: A's next
/// unit (under the shared strategy, on the very connection B's used) sees A's rows only,
/// and, with its tenant context cleared, none at all.
async fn reuse_after_unit_of_work(scene: &Scene, a_pool: &TenantPool) {
    let b_pool = scene
        .fx
        .tenantry
        .tenant_pool(scene.b.slug.as_str())
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

    let mut tx = a_pool.begin().await.expect("A's unit of work");
    let rows = tx
        .run_script("SELECT name FROM campaigns")
        .await
        .expect("A reads");
    assert_eq!(
        Value::from(rows),
        serde_json::json!([{"name": "A-visible"}])
    );
    if scene.strategy == Strategy::Shared {
        let rows = tx
            .run_script(
                "SELECT set_config('tenantry.tenant', '', true); SELECT name FROM campaigns",
            )
            .await
            .expect("a unit without a context reads");
        assert!(rows.is_empty(), "no context, no row: {rows:?}");
    }
    tx.rollback().await.expect("rollback");
}
