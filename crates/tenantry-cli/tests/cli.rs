//! The command line as a new user meets it: the demo, init, configuration layers, JSON.

mod common;

use std::process::Command;

use common::{ok, stdout};
use tenantry_testkit::{Backend, Fixture};

fn bare(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.current_dir(dir)
        .env_remove("TENANTRY_CATALOG_URL")
        .env_remove("TENANTRY_DATA_DIR")
        .env_remove("TENANTRY_MIGRATIONS")
        .env_remove("TENANTRY_CONFIG");
    cmd
}

/// Runs `tenantry demo <args>` twice in `dir` and checks each run's output.
fn demo_twice(dir: &std::path::Path, args: &[&str], needles: &[&str]) {
    for round in 0..2 {
        let out = bare(dir).arg("demo").args(args).output().expect("run demo");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for needle in needles {
            assert!(
                text.contains(needle),
                "round {round}: demo output lacks {needle:?}:\n{text}"
            );
        }
    }
}

#[test]
fn the_demo_tells_the_whole_story_in_an_empty_directory_and_can_run_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo_twice(
        dir.path(),
        &[],
        &[
            "3 migrated",
            "3 failed",
            "tenant umbrella is active at version 20250101000010",
            "campaigns.archived_at columns: 0",
            "4 tenant(s): 3 migrated, 1 already current, 0 skipped, 0 failed",
        ],
    );
    // The demo's data is left for exploring with the printed flags.
    let out = bare(dir.path())
        .args([
            "--data-dir",
            "tenantry-demo/data",
            "--migrations",
            "tenantry-demo/migrations/tenant",
            "migrate",
            "status",
            "--json",
        ])
        .output()
        .expect("status");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["tenants"], 4);
    assert_eq!(summary["latest"], 20250101000010_i64);
}

#[test]
fn the_demo_refuses_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("tenantry-demo")).expect("mkdir");
    std::fs::write(dir.path().join("tenantry-demo/precious.txt"), "keep").expect("write");
    let out = bare(dir.path()).arg("demo").output().expect("run demo");
    assert!(!out.status.success());
    assert!(dir.path().join("tenantry-demo/precious.txt").exists());
}

#[test]
fn init_with_defaults_creates_the_catalog_and_migrations_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path()).arg("init").output().expect("init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("tenantry-data/catalog.db").exists());
    assert!(dir.path().join("migrations/tenant").is_dir());
    let out = bare(dir.path())
        .args(["server", "list", "--json"])
        .output()
        .expect("list");
    let servers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(servers[0]["name"], "local");
    assert_eq!(servers[0]["engine"], "sqlite");
}

#[test]
fn configuration_comes_from_the_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    tenantry::example::write_tenant_migrations(&dir.path().join("sql")).expect("write");
    std::fs::write(
        dir.path().join("tenantry.toml"),
        "data_dir = \"from-file\"\nmigrations = \"sql\"\n",
    )
    .expect("write config");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Only `init` creates a catalog; each layer decides where.
    run(bare(dir.path()).args(["init"]));
    run(bare(dir.path()).args(["tenant", "create", "filed"]));
    assert!(dir.path().join("from-file/catalog.db").exists());

    run(bare(dir.path())
        .env("TENANTRY_DATA_DIR", "from-env")
        .args(["init"]));
    run(bare(dir.path())
        .env("TENANTRY_DATA_DIR", "from-env")
        .args(["tenant", "create", "envy"]));
    assert!(dir.path().join("from-env/catalog.db").exists());

    for command in [&["init"][..], &["tenant", "create", "flagged"]] {
        run(bare(dir.path())
            .env("TENANTRY_DATA_DIR", "from-env")
            .args(["--data-dir", "from-flag"])
            .args(command));
    }
    assert!(dir.path().join("from-flag/catalog.db").exists());

    std::fs::write(dir.path().join("tenantry.toml"), "datadir = \"typo\"\n").expect("write");
    let out = bare(dir.path())
        .args(["tenant", "list"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("datadir"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_has_the_documented_fields() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let created: serde_json::Value = serde_json::from_str(&ok(
        &fx,
        &["tenant", "create", "acme", "--name", "Acme Corp", "--json"],
    ))
    .expect("json");
    for field in [
        "id",
        "slug",
        "name",
        "status",
        "strategy",
        "server",
        "storage",
        "version",
        "last_error",
    ] {
        assert!(
            created.get(field).is_some(),
            "tenant JSON lacks {field}: {created}"
        );
    }
    assert_eq!(created["name"], "Acme Corp");
    assert_eq!(created["status"], "active");
    assert_eq!(created["strategy"], "database");
    assert_eq!(created["server"], "local");

    let shown: serde_json::Value =
        serde_json::from_str(&ok(&fx, &["tenant", "show", "acme", "--json"])).expect("json");
    assert_eq!(shown["id"], created["id"]);
    assert!(shown["events"].as_array().is_some_and(|e| !e.is_empty()));

    let human = stdout(&common::run(&fx, &["tenant", "list"]));
    assert!(human.contains("acme") && human.contains("SLUG"), "{human}");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_postgres_shows_a_mixed_fleet_and_leaves_nothing_behind_on_rerun() {
    let Some(admin) = tenantry_testkit::require_postgres().await else {
        return;
    };
    let (server, server_db) =
        tenantry_testkit::fresh_postgres_database(&admin, "tenantry_test_demo").await;
    let dir = tempfile::tempdir().expect("tempdir");
    demo_twice(
        dir.path(),
        &["--server", &server],
        &[
            "┆ database ┆ pg",
            "┆ schema   ┆ pg",
            "┆ shared   ┆ pg",
            "initech, after claiming hooli's id without its signature, sees: [{\"n\":0}]",
        ],
    );
    // Clean up what the second round made, through the demo's own catalog.
    let config = tenantry::Settings {
        data_dir: Some(dir.path().join("tenantry-demo/data")),
        migrations: Some(dir.path().join("tenantry-demo/migrations/tenant")),
        ..tenantry::Settings::default()
    }
    .resolve();
    let t = tenantry::Tenantry::open(config)
        .await
        .expect("open demo catalog");
    let tenants = t.catalog().tenants().await.expect("tenants");
    assert_eq!(
        tenants.len(),
        6,
        "the rerun replaced the first round's tenants"
    );
    for tenant in tenants {
        t.delete_tenant(tenant.slug.as_str(), true)
            .await
            .expect("delete");
    }
    t.remove_server("pg")
        .await
        .expect("remove the server and its shared pool");
    assert!(
        t.catalog()
            .shared_pool("pg")
            .await
            .expect("lookup")
            .is_none()
    );
    t.catalog().close().await;
    tenantry_testkit::drop_postgres_database(&admin, &server_db).await;
}
