//! `tenantry migrate down`: its flags, the refusal when a version has no down file (nothing
//! changed, the file named), and reverts as a table and as JSON.

mod common;

use common::{fails, ok, run, stderr, stdout, tenants};
use tenantry_testkit::{Backend, Fixture};

const BUDGET: &str = "20250101000009_add_budget";
const TAGS: &str = "20250101000010_create_tags";

/// Each tenant's slug and version, from `tenant list --json`.
fn versions(fx: &Fixture) -> Vec<(String, i64)> {
    tenants(fx)
        .iter()
        .map(|t| {
            (
                t["slug"].as_str().expect("slug").to_owned(),
                t["version"].as_i64().expect("version"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_say_which_tenants_and_how_far() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme"]);
    for (args, needle) in [
        (&["migrate", "down", "--steps", "1"][..], "--all"),
        (&["migrate", "down", "--all"][..], "--to <VERSION>"),
        (
            &["migrate", "down", "--all", "--to", "0", "--steps", "1"][..],
            "cannot be used with",
        ),
        (
            &[
                "migrate", "down", "--all", "--tenant", "acme", "--steps", "1",
            ][..],
            "cannot be used with",
        ),
        (&["migrate", "down", "--all", "--steps", "0"][..], "--steps"),
        (&["migrate", "down", "--all", "--to", "-1"][..], "--to"),
    ] {
        let out = run(&fx, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    fails(
        &fx,
        &["migrate", "down", "--tenant", "nosuch", "--steps", "1"],
        "no tenant \"nosuch\"",
    );
    fails(
        &fx,
        &["migrate", "down", "--all", "--to", "20250101000042"],
        "no migration 20250101000042",
    );
    assert_eq!(versions(&fx), [("acme".to_owned(), 20250101000008)]);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_without_a_down_file_is_refused_by_name_and_then_reverted() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme"]);
    ok(&fx, &["tenant", "create", "bravo"]);
    fx.write_migration(
        &format!("{BUDGET}.up.sql"),
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );
    fx.write_migration(
        &format!("{BUDGET}.down.sql"),
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
    fx.write_migration(
        &format!("{TAGS}.up.sql"),
        "CREATE TABLE tags (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, PRIMARY KEY (tenant_id, id));",
    );
    ok(&fx, &["migrate", "--all"]);

    let expected = fx.migrations_dir().join(format!("{TAGS}.down.sql"));
    let err = fails(
        &fx,
        &["migrate", "down", "--all", "--steps", "1"],
        "tenant \"acme\": migration 20250101000010 cannot be reverted: its down file",
    );
    assert!(
        err.contains(&expected.display().to_string()) && err.contains("nothing was reverted"),
        "{err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(
        versions(&fx),
        [
            ("acme".to_owned(), 20250101000010),
            ("bravo".to_owned(), 20250101000010)
        ]
    );

    // With the down file: one tenant, as JSON.
    fx.write_migration(&format!("{TAGS}.down.sql"), "DROP TABLE tags;");
    let out = ok(
        &fx,
        &[
            "migrate", "down", "--tenant", "acme", "--steps", "1", "--json",
        ],
    );
    // One line per tenant, then the revert's summary.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let (summary, rows) = lines.split_last().expect("a summary");
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(summary["counts"], serde_json::json!({"reverted": 1}));
    assert_eq!(rows[0]["tenant"], "acme");
    assert_eq!(rows[0]["outcome"], "reverted");
    assert_eq!(rows[0]["from"], 20250101000010_i64);
    assert_eq!(rows[0]["to"], 20250101000009_i64);
    assert_eq!(rows[0]["reverted"], serde_json::json!([20250101000010_i64]));
    let events = ok(&fx, &["events", "--tenant", "acme", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_str(&events).expect("JSON");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "migrate.down" && e["outcome"] == "ok"),
        "{events:?}"
    );

    // Everyone to 9, as a table: bravo goes back; acme, there already, is settled from the
    // catalog without being opened.
    let table = ok(&fx, &["migrate", "down", "--all", "--to", "20250101000009"]);
    assert!(
        table.contains("1 tenant(s): 1 reverted, 0 already at the target, 0 skipped, 0 failed"),
        "{table}"
    );
    let bravo = table
        .lines()
        .find(|l| l.contains("bravo"))
        .expect("a row for bravo");
    assert!(
        bravo.contains("reverted") && bravo.contains("20250101000010 -> 20250101000009"),
        "{bravo}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("revert ") && l.ends_with(": 1 current, 1 reverted")),
        "{table}"
    );
    assert_eq!(
        versions(&fx),
        [
            ("acme".to_owned(), 20250101000009),
            ("bravo".to_owned(), 20250101000009)
        ]
    );

    // A failing down script: exit code 1, the tenant at its version.
    fx.write_migration(
        &format!("{BUDGET}.down.sql"),
        "ALTER TABLE campaigns DROP COLUMN no_such_column;",
    );
    let out = run(&fx, &["migrate", "down", "--all", "--to", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tenant \"acme\": migration 20250101000008 cannot be reverted")
            && err.contains("20250101000008_create_audit_logs.down.sql"),
        "{err}"
    );
    let out = run(&fx, &["migrate", "down", "--all", "--steps", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 tenant(s) failed to revert"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("no_such_column"), "{}", stdout(&out));
    assert_eq!(
        versions(&fx),
        [
            ("acme".to_owned(), 20250101000009),
            ("bravo".to_owned(), 20250101000009)
        ]
    );
    fx.cleanup().await;
}

/// The JSON lines of a rollout: each tenant's, then the summary.
fn lines(out: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let summary = lines.pop().expect("a summary line");
    (lines, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_undo_take_the_controls_of_a_rollout() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme"]);
    ok(&fx, &["tenant", "create", "bravo"]);
    fx.write_migration(
        &format!("{BUDGET}.up.sql"),
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );
    fx.write_migration(
        &format!("{BUDGET}.down.sql"),
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
    let (_, summary) = lines(&ok(&fx, &["migrate", "--all", "--json"]));
    let up = summary["rollout"].as_str().expect("rollout id").to_owned();
    let at = |v: i64| vec![("acme".to_owned(), v), ("bravo".to_owned(), v)];
    assert_eq!(versions(&fx), at(20250101000009));

    // A dry run reports what would be reverted and reverts nothing.
    let out = ok(
        &fx,
        &[
            "migrate",
            "down",
            "--all",
            "--steps",
            "1",
            "--dry-run",
            "--json",
        ],
    );
    let (tenants, summary) = lines(&out);
    assert_eq!(tenants.len(), 2, "{out}");
    assert!(tenants.iter().all(|t| t["outcome"] == "reverted"), "{out}");
    assert_eq!(summary["counts"], serde_json::json!({"reverted": 2}));
    assert_eq!(versions(&fx), at(20250101000009));

    // Flags that cannot go together are refused before anything runs.
    for args in [
        &["migrate", "down", "--all", "--resume", "x"][..],
        &["migrate", "down", "--steps", "1", "--resume", "x"][..],
        &["migrate", "undo", &up, "--resume", "x"][..],
        &["migrate", "down", "--resume", "x", "--dry-run"][..],
    ] {
        let out = run(&fx, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }

    // The undo, with a canary: both tenants back, recorded as an undo rollout.
    let out = ok(&fx, &["migrate", "undo", &up, "--canary", "1", "--json"]);
    let (tenants, summary) = lines(&out);
    assert_eq!(tenants.len(), 2, "{out}");
    assert_eq!(summary["counts"], serde_json::json!({"reverted": 2}));
    assert_eq!(versions(&fx), at(20250101000008));
    let undo = summary["rollout"].as_str().expect("undo id").to_owned();
    let record = ok(&fx, &["migrate", "rollout", &undo, "--json"]);
    let record: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    assert_eq!(record["rollout"]["kind"], "undo");
    assert_eq!(record["rollout"]["options"]["undo"], up.as_str());
    assert_eq!(record["rollout"]["options"]["canary"], 1);
    // Over: it cannot be resumed.
    fails(&fx, &["migrate", "undo", "--resume", &undo], "it is done");
    // Nor resumed by a command of another kind, which would run the opposite operation.
    fails(
        &fx,
        &["migrate", "--resume", &undo],
        &format!("is of kind `undo`; continue it with `tenantry migrate undo --resume {undo}`"),
    );
    fails(
        &fx,
        &["migrate", "down", "--resume", &up],
        "is of kind `up`; continue it with `tenantry migrate --resume",
    );
    assert_eq!(versions(&fx), at(20250101000008));
    fx.cleanup().await;
}
