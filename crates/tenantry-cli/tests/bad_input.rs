//! Every bad input gets a clear error on stderr, a non-zero exit code, and changes nothing.

mod common;

use common::{bare, fails, ok, run, stderr, stdout, tenants};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    invalid_slugs_are_refused,
    duplicate_slug_unknown_tenant_and_unknown_server,
    bad_migration_directories_are_refused_before_anything_changes,
    migrate_all_with_a_failing_tenant_exits_non_zero_and_names_it,
    a_failed_migration_names_its_own_line_and_statement_and_says_each_cause_once,
);

async fn invalid_slugs_are_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let long = "a".repeat(64);
    let cases: [(&str, &str); 10] = [
        ("", "it is empty"),
        (&long, "longer than 63"),
        ("1acme", "start with a lowercase letter"),
        ("Acme", "uppercase"),
        ("ac me", "only lowercase letters"),
        ("acme'", "only lowercase letters"),
        ("acme\"x", "only lowercase letters"),
        ("a;b", "only lowercase letters"),
        ("a..b", "only lowercase letters"),
        (
            "x'; DROP TABLE tenantry_tenants; --",
            "only lowercase letters",
        ),
    ];
    for (slug, reason) in cases {
        let err = fails(&fx, &["tenant", "create", slug], "invalid slug");
        assert!(err.contains(reason), "slug {slug:?}: {err}");
    }
    assert!(tenants(&fx).is_empty(), "no tenant was created");
    fx.cleanup().await;
}

async fn duplicate_slug_unknown_tenant_and_unknown_server(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", &fx.server]);
    fails(
        &fx,
        &["tenant", "create", "acme", "--server", &fx.server],
        "already exists",
    );
    assert_eq!(tenants(&fx).len(), 1);

    for cmd in ["show", "suspend", "resume", "delete", "repair"] {
        fails(&fx, &["tenant", cmd, "ghost"], "no tenant \"ghost\"");
    }
    fails(
        &fx,
        &["migrate", "--tenant", "ghost"],
        "no tenant \"ghost\"",
    );

    fails(
        &fx,
        &["tenant", "create", "beta", "--server", "nowhere"],
        "no server \"nowhere\"",
    );
    assert_eq!(
        tenants(&fx).len(),
        1,
        "nothing created for an unknown server"
    );

    let servers_before = ok(&fx, &["server", "list", "--json"]);
    fails(
        &fx,
        &[
            "server",
            "add",
            "down",
            "postgres://postgres@127.0.0.1:1/postgres",
        ],
        "unreachable",
    );
    fails(
        &fx,
        &["server", "add", "odd", "oracle://db.example/x"],
        "unknown scheme",
    );
    fails(
        &fx,
        &["server", "add", "Bad Name", "sqlite:elsewhere"],
        "invalid server name",
    );
    assert_eq!(ok(&fx, &["server", "list", "--json"]), servers_before);

    fails(
        &fx,
        &["--catalog", "oracle://x/y", "tenant", "list"],
        "unknown scheme",
    );
    fx.cleanup().await;
}

async fn bad_migration_directories_are_refused_before_anything_changes(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let create = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["tenant", "create", "acme", "--server", &fx.server]);
        run(&fx, &args)
    };

    let missing = fx.dir.path().join("no-such-dir");
    let out = create(&["--migrations", missing.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("does not exist"),
        "{}",
        common::stderr(&out)
    );

    let dup = fx.write_migration("20250101000008_second_eight.sql", "SELECT 1;");
    let err = fails(
        &fx,
        &["tenant", "create", "acme", "--server", &fx.server],
        "appears twice",
    );
    assert!(err.contains("20250101000008_second_eight.sql"), "{err}");
    std::fs::remove_file(dup).expect("remove");

    let binary = fx.migrations_dir().join("20250101000009_binary.sql");
    std::fs::write(&binary, [0xff, 0xfe, 0xfd]).expect("write");
    let err = fails(
        &fx,
        &["tenant", "create", "acme", "--server", &fx.server],
        "not valid UTF-8",
    );
    assert!(err.contains("20250101000009_binary.sql"), "{err}");
    fails(&fx, &["migrate", "--all"], "not valid UTF-8");
    std::fs::remove_file(binary).expect("remove");

    fx.write_migration("v9_bad_name.sql", "SELECT 1;");
    fails(
        &fx,
        &["tenant", "create", "acme", "--server", &fx.server],
        "v9_bad_name.sql",
    );

    assert!(tenants(&fx).is_empty(), "no tenant was created");
    fx.cleanup().await;
}

async fn migrate_all_with_a_failing_tenant_exits_non_zero_and_names_it(backend: Backend) {
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

    let out = run(&fx, &["migrate", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("1 migrated"), "{text}");
    assert!(text.contains("1 failed"), "{text}");
    assert!(text.contains("failed: bravo"), "{text}");
    assert!(common::stderr(&out).contains("1 tenant(s) failed"));

    let json: serde_json::Value = serde_json::from_str(&stdout(&run(
        &fx,
        &["migrate", "status", "--tenants", "--json"],
    )))
    .expect("json");
    let rows = json.as_array().expect("array");
    let row = |slug: &str| {
        rows.iter()
            .find(|r| r["slug"] == slug)
            .expect("row")
            .clone()
    };
    assert_eq!(row("alpha")["version"], 20250101000009_i64);
    assert_eq!(row("alpha")["pending"], 0);
    assert_eq!(row("bravo")["version"], 20250101000008_i64);
    assert_eq!(row("bravo")["pending"], 1);
    assert_eq!(row("bravo")["status"], "active");
    assert!(
        row("bravo")["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("20250101000009")
    );
    for field in [
        "id", "slug", "name", "status", "strategy", "server", "storage", "version",
    ] {
        assert!(
            row("alpha").get(field).is_some(),
            "status row lacks {field}"
        );
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_unavailable_strategies_are_refused_saying_what_is_supported() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    fails(
        &fx,
        &["tenant", "create", "acme", "--strategy", "sharded"],
        "unknown strategy",
    );
    for strategy in ["schema", "shared"] {
        let err = fails(
            &fx,
            &["tenant", "create", "acme", "--strategy", strategy],
            "not available",
        );
        assert!(err.contains("need a PostgreSQL server"), "{err}");
    }
    std::fs::write(
        fx.dir.path().join("tenantry.toml"),
        "default_strategy = \"sharded\"\n",
    )
    .expect("write config");
    fails(&fx, &["tenant", "list"], "unknown strategy");
    std::fs::remove_file(fx.dir.path().join("tenantry.toml")).expect("remove");
    assert!(tenants(&fx).is_empty(), "no tenant was created");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_mysql_migration_is_settled_from_the_command_line() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", "my"]);
    fx.write_migration(
        "20250101000009_tags.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLEE oops (id INT);",
    );
    let out = run(&fx, &["migrate", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("CREATE TABLEE oops"),
        "{}",
        stdout(&out)
    );
    let status = ok(&fx, &["migrate", "status"]);
    assert!(status.contains("20250101000009"), "{status}");
    fails(
        &fx,
        &["migrate", "resolve", "acme", "20250101000009"],
        "--applied",
    );
    fails(
        &fx,
        &["migrate", "resolve", "acme", "20250101000008", "--retry"],
        "not dirty",
    );

    let acme = fx.tenant("acme").await;
    fx.execute(&acme, "DROP TABLE tags").await;
    fx.write_migration("20250101000009_tags.sql", "CREATE TABLE tags (id INT);");
    let said = ok(
        &fx,
        &["migrate", "resolve", "acme", "20250101000009", "--retry"],
    );
    assert!(said.contains("forgotten"), "{said}");
    let out = ok(&fx, &["migrate", "--tenant", "acme"]);
    assert!(out.contains("1 migrated"), "{out}");
    assert_eq!(fx.tenant("acme").await.version, 20250101000009);
    fx.cleanup().await;
}

/// Runs `tenantry <args>` in `dir`, expecting exit code 1 and `needle` on stderr.
fn refused(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str], needle: &str) {
    let out = bare(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "tenantry {args:?}: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(needle),
        "tenantry {args:?}: stderr lacks {needle:?}:\n{}",
        stderr(&out)
    );
}

#[test]
fn a_mistyped_catalog_or_configuration_file_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/dir/cat.db");
    let url = format!("sqlite://{}", missing.display());
    let said = format!(
        "no catalog at {}; run `tenantry init` to create one",
        missing.display()
    );
    for command in [
        &["tenant", "list"][..],
        &["server", "list"],
        &["migrate", "status"],
        &["events"],
        &["tenant", "create", "acme"],
    ] {
        let mut args = vec!["--catalog", url.as_str()];
        args.extend(command);
        refused(dir.path(), &[], &args, &said);
    }
    assert!(!dir.path().join("no").exists(), "no directory was created");

    // The default catalog in the data directory: the same.
    refused(
        dir.path(),
        &[],
        &["tenant", "list"],
        "no catalog at tenantry-data/catalog.db",
    );
    assert!(!dir.path().join("tenantry-data").exists());

    // A configuration file that was named must exist; the implicit ./tenantry.toml may not.
    refused(
        dir.path(),
        &[],
        &["--config", "nosuch.toml", "init"],
        "nosuch.toml: no such file",
    );
    refused(
        dir.path(),
        &[("TENANTRY_CONFIG", "nosuch.toml")],
        &["init"],
        "nosuch.toml: no such file",
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert!(entries.is_empty(), "nothing was created: {entries:?}");

    // `init` creates the catalog it is pointed at; then the other commands find it.
    let out = bare(dir.path())
        .args(["--catalog", &url, "init"])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(missing.is_file());
    let out = bare(dir.path())
        .args(["--catalog", &url, "tenant", "list"])
        .output()
        .expect("list");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no tenants yet"), "{}", stdout(&out));
}

async fn a_failed_migration_names_its_own_line_and_statement_and_says_each_cause_once(
    backend: Backend,
) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    // The failing statement starts on line 3 of the file; on MySQL the error is on its
    // second line, line 4.
    let (sql, said) = match backend {
        Backend::Postgres => (
            "CREATE TABLE tags (id INT);\n\nCREATE TABLEE oops (id INT);\n",
            "20250101000009_broken.sql:3) failed: syntax error at or near \"TABLEE\" in `CREATE TABLEE oops (id INT)`",
        ),
        Backend::Sqlite => (
            "CREATE TABLE tags (id INT);\n\nCREATE TABLEE oops (id INT);\n",
            "20250101000009_broken.sql:3) failed: near \"TABLEE\": syntax error in `CREATE TABLEE oops (id INT)`",
        ),
        Backend::Mysql => (
            "CREATE TABLE tags (id INT);\n\nCREATE TABLE oops (id INT,\n  x INT ,, y INT);\n",
            "20250101000009_broken.sql:4) failed at statement \"CREATE TABLE oops (id INT,\\n  x INT ,, y INT)\": You have an error in your SQL syntax",
        ),
    };
    fx.write_migration("20250101000009_broken.sql", sql);
    let out = run(&fx, &["tenant", "create", "acme", "--server", &fx.server]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(said), "{err}");
    assert!(
        !err.contains("at line"),
        "no line of the server's source: {err}"
    );
    let once = match backend {
        Backend::Mysql => "You have an error",
        _ => "syntax error",
    };
    assert_eq!(err.matches(once).count(), 1, "said once: {err}");
    assert_ne!(fx.tenant("acme").await.status, tenantry::Status::Active);

    // A server that refuses connections: the cause is said once.
    let err = fails(
        &fx,
        &[
            "server",
            "add",
            "down",
            "postgres://postgres@127.0.0.1:1/postgres",
        ],
        "unreachable",
    );
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    fx.cleanup().await;
}
