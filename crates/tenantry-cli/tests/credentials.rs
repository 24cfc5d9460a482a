//! Tenant credentials: sealed with the master key, checked by a server that checks passwords,
//! and repaired when they stop working. A missing, malformed or wrong key is a clear error.

mod common;

use common::{fails, ok, run, stderr, tenantry};
use tenantry::catalog::MASTER_KEY_FINGERPRINT;
use tenantry::crypto::MasterKey;
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

/// The fingerprint of the key in `file`, as the catalog records it.
fn fingerprint_of(file: &std::path::Path) -> String {
    MasterKey::find(file)
        .expect("read key")
        .expect("a key")
        .fingerprint()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_wrong_master_keys_are_clear_errors_and_never_replaced() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", "pg"]);
    let key_file = fx.data_dir().join("master.key");
    let key = std::fs::read_to_string(&key_file).expect("key");
    let expected = fingerprint_of(&key_file);
    assert_eq!(
        fx.tenantry
            .catalog()
            .setting(MASTER_KEY_FINGERPRINT)
            .await
            .expect("setting")
            .as_deref(),
        Some(expected.as_str()),
        "the catalog records the key's fingerprint"
    );

    // Wrong key: 32 other bytes. Named by fingerprint before anything is decrypted.
    let wrong = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let wrong_file = fx.dir.path().join("wrong.key");
    std::fs::write(&wrong_file, wrong).expect("write");
    let said = format!(
        "wrong master key: fingerprint {}, the catalog expects {expected}",
        fingerprint_of(&wrong_file)
    );
    for args in [&["sql", "acme", "SELECT 1 AS one"][..], &["init"]] {
        let out = tenantry(&fx)
            .env("TENANTRY_MASTER_KEY", wrong)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    }

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

    // Missing key while credentials sealed with it remain: say how to restore it, never
    // suggest generating one, and `init` refuses to.
    std::fs::remove_file(&key_file).expect("remove key");
    let restore = format!(
        "the catalog holds credentials sealed with the master key of fingerprint {expected}; \
         restore that key: put its file back at {}",
        key_file.display()
    );
    for args in [
        &["tenant", "create", "beta", "--server", "pg"][..],
        &["sql", "acme", "SELECT 1"],
        &["init"],
    ] {
        let err = fails(&fx, args, "no master key");
        assert!(err.contains(&restore), "{err}");
        assert!(err.contains("TENANTRY_MASTER_KEY"), "{err}");
        assert!(
            !err.contains("init"),
            "no suggestion to generate a key: {err}"
        );
    }
    assert!(!key_file.exists(), "no new key was generated");
    assert!(
        fx.tenantry
            .catalog()
            .find_tenant("beta")
            .await
            .expect("lookup")
            .is_none()
    );

    // The right key, back in place, works again.
    std::fs::write(&key_file, key).expect("restore key");
    let out = run(&fx, &["sql", "acme", "--json", "SELECT 1 AS one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ok(&fx, &["init"]).contains("(loaded)"));
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_with_nothing_sealed_may_get_a_new_key_from_init() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let Some(server) = tenantry_testkit::require_postgres().await else {
        return;
    };
    ok(&fx, &["tenant", "create", "local-one"]);
    let key_file = fx.data_dir().join("master.key");
    let old = fingerprint_of(&key_file);
    std::fs::remove_file(&key_file).expect("remove key");
    ok(&fx, &["server", "add", "pg", &server]);
    fails(
        &fx,
        &["tenant", "create", "remote", "--server", "pg"],
        "run `tenantry init` to generate one",
    );
    assert!(ok(&fx, &["init"]).contains("master key: generated"));
    let new = fingerprint_of(&key_file);
    assert_ne!(old, new);
    assert_eq!(
        fx.tenantry
            .catalog()
            .setting(MASTER_KEY_FINGERPRINT)
            .await
            .expect("setting"),
        Some(new)
    );
    ok(&fx, &["tenant", "create", "remote", "--server", "pg"]);
    fx.cleanup().await;
}
