//! `tenantry key rotate` killed with SIGKILL at random moments, again and again, then run to
//! the end: every tenant (database, schema and shared, each with its own sealed password or
//! its pool's) still serves from a fresh process, every secret reads back, rollouts still
//! lock, the audit chain holds, and with the old key file removed nothing needs it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Moments, ok, run, stdout, tenantry};
use tenantry::{Settings, Strategy};
use tenantry_testkit::{Backend, Fixture};

const SECRETS: usize = 300;
const KILLS: usize = 6;

#[tokio::test]
async fn postgres_a_killed_rotation_finishes_and_the_old_key_is_not_needed() {
    killed_rotation(
        Backend::Postgres,
        &[Strategy::Database, Strategy::Schema, Strategy::Shared],
    )
    .await;
}

#[tokio::test]
async fn sqlite_a_killed_rotation_finishes_and_the_old_key_is_not_needed() {
    killed_rotation(Backend::Sqlite, &[Strategy::Database]).await;
}

async fn killed_rotation(backend: Backend, strategies: &[Strategy]) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let mut moments = Moments::from_env();
    let mut slugs = Vec::new();
    for (i, strategy) in strategies.iter().enumerate() {
        for j in 0..2 {
            let slug = format!("t{i}{j}");
            fx.create_with(&slug, *strategy).await.expect("create");
            slugs.push(slug);
        }
    }
    let t = &fx.tenantry;
    for n in 0..SECRETS {
        let slug = &slugs[n % slugs.len()];
        t.set_secret(slug, &format!("S{n:03}"), &format!("value-{n}-of-{slug}"))
            .await
            .expect("set");
    }
    let key_file = fx.config().master_key_file.clone();
    let original = std::fs::read_to_string(&key_file).expect("the key file");

    for _ in 0..KILLS {
        let mut child = tenantry(&fx)
            .args(["key", "rotate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a rotation");
        // Kill it a random moment after it started resealing (or once it ended on its own).
        let setting =
            "SELECT COUNT(*) FROM tenantry_settings WHERE name = 'master_key_rotating_to'";
        for _ in 0..5000 {
            if child.try_wait().expect("poll").is_some() {
                break;
            }
            if fx.catalog_count(setting).await > 0 {
                tokio::time::sleep(Duration::from_millis(moments.next(150))).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = child.kill();
        child.wait().expect("reap");
    }
    // Run to the end (a rotation that ended on its own before a kill is followed by a new
    // one here: rotating twice is rotating).
    let out = ok(&fx, &["key", "rotate", "--json"]);
    let rotation: serde_json::Value = serde_json::from_str(&out).expect("json");
    eprintln!("the run to the end: {rotation}");
    assert_ne!(rotation["from"], rotation["to"]);
    let rotated = std::fs::read_to_string(&key_file).expect("the key file");
    assert_ne!(rotated, original, "the key file holds the new key");
    let setting = "SELECT COUNT(*) FROM tenantry_settings WHERE name = 'master_key_rotating_to'";
    assert_eq!(
        fx.catalog_count(setting).await,
        0,
        "no rotation left under way"
    );

    // The old key is not needed.
    for leftover in [".old", ".new", ".partial"] {
        let mut path = key_file.clone().into_os_string();
        path.push(leftover);
        let _ = std::fs::remove_file(path);
    }
    for slug in &slugs {
        let out = run(&fx, &["sql", slug, "SELECT 1 AS one"]);
        assert!(
            out.status.success(),
            "{slug} serves: {}",
            common::stderr(&out)
        );
        assert!(stdout(&out).contains('1'));
    }
    let fresh = fx.reopen(Settings::default()).await;
    for slug in &slugs {
        let pool = fresh.tenant_pool(slug).await.expect("pool");
        let secrets = fresh.tenant_secrets(&pool).await.expect("secrets");
        for (name, value) in &secrets {
            let n: usize = name[1..].parse().expect("number");
            assert_eq!(value, &format!("value-{n}-of-{slug}"));
        }
        assert_eq!(
            secrets.len(),
            SECRETS / slugs.len()
                + usize::from(
                    slugs.iter().position(|s| s == slug).unwrap_or(0) < SECRETS % slugs.len()
                )
        );
    }
    // Locks still work across processes: a rollout runs.
    fx.write_migration(
        "20250101000009_after_rotation.sql",
        "CREATE TABLE after_rotation (id INTEGER, tenant_id VARCHAR(26) NOT NULL);",
    );
    let out = run(&fx, &["migrate", "--all", "--json"]);
    assert!(out.status.success(), "{}", stdout(&out));
    // And the original key no longer opens anything.
    std::fs::write(&key_file, &original).expect("put the old key back");
    let stale = fx.reopen(Settings::default()).await;
    match stale.tenant_pool(&slugs[0]).await {
        Ok(pool) => assert!(matches!(
            stale.tenant_secrets(&pool).await,
            Err(tenantry::Error::WrongMasterKey { .. })
        )),
        Err(e) => assert!(matches!(e, tenantry::Error::WrongMasterKey { .. }), "{e:?}"),
    }
    std::fs::write(&key_file, &rotated).expect("the new key again");
    let out = run(&fx, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stdout(&out));
    fx.cleanup().await;
}
