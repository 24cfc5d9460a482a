//! Two `tenantry migrate --all` processes started together over the same 20 tenants: every
//! migration is applied exactly once per tenant, and neither runner reports a failure.

mod common;

use std::collections::BTreeMap;

use common::{stderr, stdout, tenantry};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(two_runners_apply_every_migration_exactly_once);

const TENANTS: usize = 20;

async fn two_runners_apply_every_migration_exactly_once(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for i in 0..TENANTS {
        fx.create(&format!("t{i:02}")).await.expect("create");
    }
    // Each new migration leaves a row behind, so a second application would show.
    fx.write_migration(
        "20250101000009_runs.sql",
        "CREATE TABLE runs (migration BIGINT NOT NULL);\nINSERT INTO runs VALUES (9);",
    );
    fx.write_migration(
        "20250101000010_run_ten.sql",
        "INSERT INTO runs VALUES (10);",
    );
    fx.write_migration(
        "20250101000011_run_eleven.sql",
        "INSERT INTO runs VALUES (11);",
    );

    let spawn = || {
        tenantry(&fx)
            .args([
                "--concurrency",
                "4",
                "--lock-wait",
                "60",
                "migrate",
                "--all",
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn runner")
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [
        a.wait_with_output().expect("runner a"),
        b.wait_with_output().expect("runner b"),
    ];

    let mut migrated: BTreeMap<String, usize> = BTreeMap::new();
    for out in &outputs {
        assert!(
            out.status.success(),
            "a runner failed:\n{}\n{}",
            stdout(out),
            stderr(out)
        );
        // One JSON line per tenant, then the rollout's summary line.
        let lines: Vec<serde_json::Value> = stdout(out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a json line"))
            .collect();
        let summary = lines.last().expect("a summary line");
        assert!(summary["rollout"].is_string(), "{summary}");
        for row in lines.iter().filter(|l| l.get("outcome").is_some()) {
            let outcome = row["outcome"].as_str().expect("outcome");
            assert!(
                matches!(outcome, "migrated" | "current"),
                "unexpected outcome {row}"
            );
            if outcome == "migrated" {
                *migrated
                    .entry(row["tenant"].as_str().expect("tenant").to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(
        migrated.len(),
        TENANTS,
        "every tenant migrated: {migrated:?}"
    );
    assert!(
        migrated.values().all(|n| *n == 1),
        "by exactly one runner: {migrated:?}"
    );

    for tenant in fx.tenantry.catalog().tenants().await.expect("tenants") {
        let ledger = fx.ledger(&tenant).await;
        let versions: Vec<i64> = ledger.iter().map(|r| r.version).collect();
        let mut unique = versions.clone();
        unique.dedup();
        assert_eq!(
            versions, unique,
            "{}: a version twice in the ledger",
            tenant.slug
        );
        assert_eq!(ledger.len(), 11, "{}: ledger {versions:?}", tenant.slug);
        assert_eq!(
            fx.scalar(&tenant, "SELECT COUNT(*) FROM runs").await,
            3,
            "{}: each new migration ran once",
            tenant.slug
        );
        assert_eq!(tenant.version, 20250101000011);
        assert!(tenant.last_error.is_none());
    }
    fx.cleanup().await;
}
