//! Tenant credentials: sealed with the master key, checked by a server that checks passwords,
//! and repaired when they stop working. A missing, malformed or wrong key is a clear error.

mod common;

use common::{fails, ok, run, stderr, tenantry};
use tenantry_testkit::{Backend, Fixture, TempCluster};

/// Against a private cluster with scram-sha-256: the shared services trust every loopback
/// login, so only a cluster of our own can prove a password is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_whose_password_stopped_working_is_a_clear_error_and_repair_fixes_it() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let Some(cluster) = TempCluster::start_with_password("s3cret-admin") else {
        return;
    };
    ok(&fx, &["server", "add", "checked", &cluster.url()]);
    let listed = ok(&fx, &["server", "list"]);
    assert!(
        !listed.contains("s3cret-admin"),
        "passwords are hidden: {listed}"
    );
    for strategy in ["database", "schema", "shared"] {
        let slug = format!("acme-{strategy}");
        ok(
            &fx,
            &[
                "tenant",
                "create",
                &slug,
                "--server",
                "checked",
                "--strategy",
                strategy,
            ],
        );
        ok(&fx, &["sql", &slug, "SELECT COUNT(*) AS n FROM campaigns"]);
    }

    let tenant = fx.tenant("acme-database").await;
    let role = tenant.role.clone().expect("a login role");
    let sealed = tenant.role_secret.clone().expect("a sealed password");
    assert!(!sealed.is_empty());

    // Someone changes the role's password behind Tenantry's back.
    let mut admin = sqlx::AnyConnection::connect(&cluster.url())
        .await
        .expect("admin");
    use sqlx::Connection;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE \"{role}\" PASSWORD 'changed'"
    )))
    .execute(&mut admin)
    .await
    .expect("alter role");
    let err = fails(
        &fx,
        &["sql", "acme-database", "SELECT 1 AS one"],
        "cannot log in",
    );
    assert!(
        err.contains("tenantry tenant repair acme-database"),
        "{err}"
    );

    ok(&fx, &["tenant", "repair", "acme-database"]);
    let out = ok(&fx, &["sql", "acme-database", "--json", "SELECT 1 AS one"]);
    assert!(out.contains("\"one\": 1"), "{out}");
    assert_eq!(
        fx.tenant("acme-database").await.role_secret,
        Some(sealed),
        "the sealed password was restored, not replaced"
    );

    // The shared pool's runtime role is every shared tenant's login, and any of them may
    // change its password from SQL: the next login restores the sealed one by itself.
    ok(
        &fx,
        &[
            "tenant",
            "create",
            "other-shared",
            "--server",
            "checked",
            "--strategy",
            "shared",
        ],
    );
    ok(
        &fx,
        &[
            "sql",
            "acme-shared",
            "ALTER ROLE CURRENT_USER PASSWORD 'changed-by-a-tenant'",
        ],
    );
    let out = ok(
        &fx,
        &[
            "sql",
            "other-shared",
            "--json",
            "SELECT COUNT(*) AS n FROM campaigns",
        ],
    );
    assert!(out.contains("\"n\": 0"), "{out}");
    // And so when the administrator changed it behind Tenantry's back.
    let pool = fx
        .tenantry
        .catalog()
        .shared_pool("checked")
        .await
        .expect("lookup")
        .expect("pool");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE \"{}\" PASSWORD 'changed'",
        pool.role
    )))
    .execute(&mut admin)
    .await
    .expect("alter role");
    ok(
        &fx,
        &["sql", "acme-shared", "SELECT COUNT(*) AS n FROM campaigns"],
    );
    fx.cleanup().await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_wrong_master_keys_are_clear_errors() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", "pg"]);
    let key_file = fx.data_dir().join("master.key");
    let key = std::fs::read_to_string(&key_file).expect("key");

    // Wrong key: 32 other bytes.
    let wrong = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let out = tenantry(&fx)
        .env("TENANTRY_MASTER_KEY", wrong)
        .args(["sql", "acme", "SELECT 1 AS one"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not decrypt"),
        "{}",
        stderr(&out)
    );

    // Malformed keys.
    for bad in ["not base64 at all!", "c2hvcnQ="] {
        let out = tenantry(&fx)
            .env("TENANTRY_MASTER_KEY", bad)
            .args(["sql", "acme", "SELECT 1 AS one"])
            .output()
            .expect("run");
        assert!(!out.status.success());
        assert!(stderr(&out).contains("master key"), "{}", stderr(&out));
    }

    // Missing key: no tenant is created, nothing is left behind.
    std::fs::remove_file(&key_file).expect("remove key");
    let err = fails(
        &fx,
        &["tenant", "create", "beta", "--server", "pg"],
        "no master key",
    );
    assert!(err.contains("tenantry init"), "{err}");
    assert!(
        fx.tenantry
            .catalog()
            .find_tenant("beta")
            .await
            .expect("lookup")
            .is_none()
    );
    fails(&fx, &["sql", "acme", "SELECT 1"], "no master key");

    // The right key, back in place, works again.
    std::fs::write(&key_file, key).expect("restore key");
    let out = run(&fx, &["sql", "acme", "--json", "SELECT 1 AS one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    fx.cleanup().await;
}
