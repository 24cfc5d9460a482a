//! `tenantry sql --admin`: the administrative connection scoped to one tenant's storage, for
//! the repairs the tenant's own role cannot make, recorded in the event log.

mod common;

use common::{fails, ok, run, stdout};
use tenantry_testkit::{Backend, Fixture};

/// The tenant's events, newest first, as JSON.
fn events(fx: &Fixture, slug: &str) -> Vec<serde_json::Value> {
    let out = ok(fx, &["events", "--tenant", slug, "--json"]);
    serde_json::from_str(&out).expect("events --json is JSON")
}

/// The newest `sql.admin` event of a tenant.
fn last_admin_event(fx: &Fixture, slug: &str) -> serde_json::Value {
    events(fx, slug)
        .into_iter()
        .find(|e| e["action"] == "sql.admin")
        .expect("an sql.admin event")
}

/// README "Dirty migrations", step by step, with nothing but the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_mysql_migration_is_undone_and_retried_with_tenantry_alone() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", "my"]);
    fx.write_migration(
        "20250101000009_tags.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLEE oops (id INT);",
    );
    assert_eq!(run(&fx, &["migrate", "--all"]).status.code(), Some(1));

    // 2. Inspect: the first statement left a table behind.
    let tables = ok(&fx, &["sql", "--admin", "acme", "--json", "SHOW TABLES"]);
    assert!(tables.contains("\"tags\""), "{tables}");
    let event = last_admin_event(&fx, "acme");
    assert_eq!(event["outcome"], "ok");
    assert!(
        event["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("SHOW TABLES")),
        "{event}"
    );

    // 3. The tenant's own role cannot undo DDL; the administrative connection can.
    fails(&fx, &["sql", "acme", "DROP TABLE tags"], "denied");
    let said = ok(&fx, &["sql", "--admin", "acme", "DROP TABLE tags"]);
    assert!(said.contains("(0 rows)"), "{said}");
    let event = last_admin_event(&fx, "acme");
    assert_eq!(event["outcome"], "ok");
    assert!(
        event["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("DROP TABLE tags")),
        "{event}"
    );
    let tables = ok(&fx, &["sql", "--admin", "acme", "--json", "SHOW TABLES"]);
    assert!(!tables.contains("\"tags\""), "{tables}");

    // A failing statement is an error, and recorded as failed with its error.
    let err = fails(
        &fx,
        &["sql", "--admin", "acme", "DROP TABLE nosuch"],
        "tenant \"acme\": the administrative SQL failed",
    );
    assert!(err.contains("nosuch"), "{err}");
    let event = last_admin_event(&fx, "acme");
    assert_eq!(event["outcome"], "failed");
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|e| e.contains("nosuch")),
        "{event}"
    );

    // Fix the file, settle the migration, roll out.
    fx.write_migration("20250101000009_tags.sql", "CREATE TABLE tags (id INT);");
    ok(
        &fx,
        &["migrate", "resolve", "acme", "20250101000009", "--retry"],
    );
    assert!(ok(&fx, &["migrate", "--tenant", "acme"]).contains("1 migrated"));
    assert_eq!(fx.tenant("acme").await.version, 20250101000009);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sql_reaches_a_tenant_in_any_status_but_deleted() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "resting", "--server", "my"]);
    ok(&fx, &["tenant", "suspend", "resting"]);
    fx.write_migration(
        "20250101000009_tags.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLEE oops (id INT);",
    );
    fails(
        &fx,
        &["tenant", "create", "broken", "--server", "my"],
        "CREATE TABLEE oops",
    );
    for (slug, status) in [("resting", "suspended"), ("broken", "failed")] {
        fails(
            &fx,
            &["sql", slug, "SELECT 1 AS one"],
            &format!("is {status}: cannot serve it"),
        );
        let out = ok(
            &fx,
            &[
                "sql",
                "--admin",
                slug,
                "--json",
                "SELECT COUNT(*) AS n FROM campaigns",
            ],
        );
        assert!(out.contains("\"n\": 0"), "{slug}: {out}");
        assert_eq!(last_admin_event(&fx, slug)["outcome"], "ok");
    }
    // The failed tenant's half-applied migration is visible to the administrator.
    let out = stdout(&run(&fx, &["sql", "--admin", "broken", "SHOW TABLES"]));
    assert!(out.contains("tags"), "{out}");

    ok(&fx, &["tenant", "delete", "resting"]);
    let before = events(&fx, "resting").len();
    fails(
        &fx,
        &["sql", "--admin", "resting", "SELECT 1"],
        "is deleted: cannot run administrative SQL on it; its storage is gone",
    );
    assert_eq!(events(&fx, "resting").len(), before, "nothing recorded");
    fx.cleanup().await;
}
