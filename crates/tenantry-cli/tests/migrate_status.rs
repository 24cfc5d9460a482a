//! `migrate status` and `migrate verify` as documented: the summary's JSON fields, the
//! per-tenant table behind `--tenants`, one tenant's ledger behind `--tenant`, and verify's
//! exit code.

mod common;

use common::{fails, ok, run, stderr, stdout};
use serde_json::{Value, json};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    status_prints_the_summary_as_an_object_and_each_tenant_on_request,
    verify_exits_non_zero_naming_the_drift_and_zero_on_a_clean_fleet,
);

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn status_prints_the_summary_as_an_object_and_each_tenant_on_request(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo"] {
        ok(&fx, &["tenant", "create", slug, "--server", &fx.server]);
    }
    let bravo = fx.tenant("bravo").await;
    fx.execute(&bravo, "CREATE TABLE flags (x INT)").await;
    fx.write_migration(
        "20250101000009_flags.sql",
        "CREATE TABLE flags (name VARCHAR(64));",
    );
    assert_eq!(run(&fx, &["migrate", "--all"]).status.code(), Some(1));

    let summary = parsed(&ok(&fx, &["migrate", "status", "--json"]));
    let dirty = u64::from(backend == Backend::Mysql);
    let expected = json!({
        "latest": 20250101000009_i64,
        "migrations": 9,
        "tenants": 2,
        "statuses": {"active": 2},
        "versions": {"20250101000008": 1, "20250101000009": 1},
        "current": 1,
        "pending": 1,
        "failed": 1,
        "dirty": dirty,
    });
    for (field, value) in expected.as_object().expect("object") {
        assert_eq!(&summary[field], value, "{field} in {summary:#}");
    }
    let problems = summary["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{summary:#}");
    assert_eq!(problems[0]["tenant"], "bravo");
    assert_eq!(problems[0]["status"], "active");
    assert_eq!(problems[0]["version"], 20250101000008_i64);
    assert!(
        problems[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("20250101000009")),
        "{summary:#}"
    );
    let expected_dirty = match backend {
        Backend::Mysql => json!(20250101000009_i64),
        Backend::Sqlite | Backend::Postgres => Value::Null,
    };
    assert_eq!(problems[0]["dirty_version"], expected_dirty);

    let text = ok(&fx, &["migrate", "status"]);
    assert!(
        text.contains(&format!(
            "2 tenant(s) (2 active): 1 current, 1 pending, 1 failed, {dirty} dirty"
        )),
        "{text}"
    );
    assert!(text.contains("20250101000009 (latest)"), "{text}");
    assert!(
        text.contains("bravo (active, version 20250101000008)"),
        "{text}"
    );

    // --tenants: the per-tenant rows as before.
    let rows = parsed(&ok(&fx, &["migrate", "status", "--tenants", "--json"]));
    let rows = rows.as_array().expect("array");
    let pending: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["slug"].as_str().unwrap_or_default(),
                r["pending"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(pending, [("alpha", 0), ("bravo", 1)]);

    // --tenant: one tenant's ledger.
    let ledger = parsed(&ok(
        &fx,
        &["migrate", "status", "--tenant", "bravo", "--json"],
    ));
    assert_eq!(ledger["tenant"], "bravo");
    assert_eq!(ledger["shared"], false);
    assert_eq!(ledger["version"], 20250101000008_i64);
    let migrations = ledger["migrations"].as_array().expect("migrations");
    assert_eq!(migrations.len(), 9);
    assert_eq!(migrations[0]["state"], "applied");
    assert_eq!(migrations[0]["checksum_matches"], true);
    let flags = &migrations[8];
    assert_eq!(flags["version"], 20250101000009_i64);
    let state = match backend {
        Backend::Mysql => "dirty",
        Backend::Sqlite | Backend::Postgres => "pending",
    };
    assert_eq!(flags["state"], state, "{ledger:#}");
    let text = ok(&fx, &["migrate", "status", "--tenant", "alpha"]);
    assert!(text.contains("alpha (database on "), "{text}");
    assert!(text.contains("create campaigns"), "{text}");
    assert!(text.contains("CHECKSUM"), "{text}");

    fails(
        &fx,
        &["migrate", "status", "--tenant", "nobody"],
        "no tenant \"nobody\"",
    );
    let clash = run(
        &fx,
        &["migrate", "status", "--tenant", "alpha", "--tenants"],
    );
    assert_eq!(clash.status.code(), Some(2), "{}", stderr(&clash));
    fx.cleanup().await;
}

async fn verify_exits_non_zero_naming_the_drift_and_zero_on_a_clean_fleet(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo"] {
        ok(&fx, &["tenant", "create", slug, "--server", &fx.server]);
    }
    let text = ok(&fx, &["migrate", "verify", "--all"]);
    assert!(text.contains("2 clean, 0 drifted, 0 failed"), "{text}");

    let bravo = fx.tenant("bravo").await;
    fx.execute(&bravo, "ALTER TABLE campaigns ADD COLUMN sneaky INTEGER")
        .await;
    let out = run(&fx, &["migrate", "verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("drifted: bravo"), "{text}");
    assert!(text.contains("column campaigns.sneaky: extra"), "{text}");
    assert!(
        stderr(&out).contains("1 unit(s) drifted"),
        "{}",
        stderr(&out)
    );

    let out = run(&fx, &["migrate", "verify", "--tenant", "bravo", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = parsed(&stdout(&out));
    assert_eq!(report["latest"], 20250101000008_i64);
    let units = report["units"].as_array().expect("units");
    assert_eq!(units.len(), 1);
    let unit = &units[0];
    assert_eq!(unit["unit"], "bravo");
    assert_eq!(unit["tenants"], json!(["bravo"]));
    assert_eq!(unit["strategy"], "database");
    assert_eq!(unit["outcome"], "drifted");
    assert_eq!(unit["reference"], "alpha");
    assert_eq!(unit["ledger"], json!([]));
    let found = match backend {
        Backend::Sqlite => "INTEGER NULL",
        Backend::Postgres => "integer NULL",
        Backend::Mysql => "int(11) NULL",
    };
    assert_eq!(
        unit["schema"],
        json!([{
            "table": "campaigns",
            "object": "column",
            "name": "sneaky",
            "change": "extra",
            "expected": null,
            "found": found,
        }])
    );

    // Against bravo, alpha is missing the column; bravo alone is clean against itself.
    let out = run(
        &fx,
        &[
            "migrate",
            "verify",
            "--all",
            "--reference",
            "bravo",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = parsed(&stdout(&out));
    assert_eq!(report["units"][0]["unit"], "alpha");
    assert_eq!(report["units"][0]["schema"][0]["change"], "missing");
    assert_eq!(report["units"][1]["outcome"], "clean");
    let ok_out = run(
        &fx,
        &[
            "migrate",
            "verify",
            "--tenant",
            "bravo",
            "--reference",
            "bravo",
        ],
    );
    assert_eq!(ok_out.status.code(), Some(0), "{}", stdout(&ok_out));

    // Which tenants must be said; an unknown one is refused before anything is opened.
    let none = run(&fx, &["migrate", "verify"]);
    assert_eq!(none.status.code(), Some(2));
    fails(
        &fx,
        &["migrate", "verify", "--tenant", "nobody"],
        "no tenant \"nobody\"",
    );
    fx.cleanup().await;
}
