//! Lifecycle races: the catalog always tells the truth, and storage is never recreated or
//! changed behind an operation that excludes it.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Connection;

use tenantry::{Error, Outcome, Status, Strategy};
use tenantry_testkit::{Backend, Fixture};

/// Waits until `condition` holds (or fails the test after 20 s).
async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether this process holds `path` open.
fn open_here(path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// A fleet run that opened a tenant's storage and waits for its lock, and a delete of that
/// tenant: whichever gets the lock first, the run never recreates the deleted tenant's files,
/// never migrates it, and never writes onto its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_run_never_recreates_a_deleted_tenant() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    fx.write_migration(
        "20250101000009_more.sql",
        "CREATE TABLE more_things (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
         PRIMARY KEY (tenant_id, id));",
    );
    let dir = fx.data_dir().join("tenants");
    let file = std::fs::canonicalize(dir.join(format!("{}.db", acme.storage))).expect("file");
    // Another runner holds the tenant.
    let held = tenantry::engine::sqlite::try_lock(&dir.join(format!("{}.lock", acme.storage)))
        .expect("lock file")
        .expect("free");

    let runner = fx.tenantry.clone();
    let set = runner.migrations().expect("migrations");
    let run = tokio::spawn(async move {
        runner
            .migrate_slugs(&set, &["acme".to_owned()], &|_| {})
            .await
    });
    until("the run opened the tenant's file", async || {
        open_here(&file)
    })
    .await;
    let deleter = fx.tenantry.clone();
    let delete = tokio::spawn(async move { deleter.delete_tenant("acme", false).await });
    until("the delete started", async || {
        let status = fx.tenant("acme").await.status;
        status == Status::Deleting || status == Status::Deleted
    })
    .await;
    drop(held);

    let report = run.await.expect("join").expect("fleet run");
    let deleted = delete.await.expect("join").expect("delete");
    assert_eq!(deleted.map(|t| t.status), Some(Status::Deleted));
    assert!(
        matches!(report.tenants[0].outcome, Outcome::Skipped { .. }),
        "{report:?}"
    );
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(acme.storage.as_str()))
        .collect();
    assert!(left.is_empty(), "files recreated: {left:?}");
    let row = fx.tenant("acme").await;
    assert_eq!(
        row.version, 20250101000008,
        "no version written on the deleted row"
    );
    assert_eq!(row.last_error, None);
    fx.cleanup().await;
}

/// A tenant created after an applied migration file was edited is refused, exactly as
/// `migrate` refuses the tenants that ran it, and no row is left.
async fn creation_refuses_an_edited_applied_migration(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("first").await.expect("create");
    let path = fx
        .migrations_dir()
        .join("20250101000008_create_audit_logs.sql");
    let edited = std::fs::read_to_string(&path).expect("read") + "\n-- edited\n";
    std::fs::write(&path, edited).expect("edit");
    match fx.create("second").await {
        Err(Error::ChecksumMismatch {
            tenant,
            version,
            file,
        }) => {
            assert_eq!(tenant, "second");
            assert_eq!(version, 20250101000008);
            assert_eq!(file, path);
        }
        other => panic!("expected a checksum refusal, got {other:?}"),
    }
    assert!(
        fx.tenantry
            .catalog()
            .find_tenant("second")
            .await
            .expect("lookup")
            .is_none()
    );
    fx.cleanup().await;
}

/// A shared tenant whose provisioning fails leaves the failure on record: on itself, on the
/// pool and on the pool's live tenants (who share the failed ledger), never cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shared_provisioning_keeps_its_error() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("live", Strategy::Shared)
        .await
        .expect("live");
    fx.write_migration("20250101000009_broken.sql", "SELECT no_such_function();");
    let err = fx
        .create_with("new", Strategy::Shared)
        .await
        .expect_err("broken");
    assert!(err.to_string().contains("no_such_function"), "{err}");
    let new = fx.tenant("new").await;
    assert_eq!(new.status, Status::Failed);
    assert!(
        new.last_error
            .is_some_and(|e| e.contains("no_such_function"))
    );
    let live = fx.tenant("live").await;
    assert_eq!(live.status, Status::Active);
    assert!(
        live.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no_such_function")),
        "{live:?}"
    );
    let pool = fx
        .tenantry
        .catalog()
        .shared_pool(&fx.server)
        .await
        .expect("lookup")
        .expect("pool");
    assert!(
        pool.last_error
            .is_some_and(|e| e.contains("no_such_function"))
    );
    fx.cleanup().await;
}

/// Once a server's removal has started it takes no new tenant, and a server with a tenant
/// cannot start being removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_being_removed_takes_no_new_tenant() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let catalog = fx.tenantry.catalog();
    catalog
        .begin_server_removal(&fx.server)
        .await
        .expect("no tenant yet");
    match fx.create_with("late", Strategy::Shared).await {
        Err(Error::ServerRemoving { name }) => assert_eq!(name, fx.server),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(catalog.find_tenant("late").await.expect("lookup").is_none());
    fx.cleanup().await;

    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("early", Strategy::Shared)
        .await
        .expect("create");
    assert!(matches!(
        fx.tenantry.remove_server(&fx.server).await,
        Err(Error::ServerInUse { tenants: 1, .. })
    ));
    assert!(
        fx.tenantry
            .catalog()
            .server_accepts_tenants(&fx.server)
            .await
            .expect("status"),
        "a refused removal leaves the server taking tenants"
    );
    fx.create_with("later", Strategy::Shared)
        .await
        .expect("still takes tenants");
    fx.cleanup().await;
}

/// A pool whose catalog row was written but whose setup never ran (a process killed in
/// between) is set up by the next caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pool_setup_is_completed_by_the_next_caller() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let key = fx.tenantry.master_key().expect("key");
    let id = ulid::Ulid::new();
    let half = tenantry::SharedPool {
        id,
        server: tenantry::ServerName::new(&fx.server).expect("name"),
        role: tenantry::ident::RoleName::for_pool(id),
        role_secret: key.seal(tenantry::crypto::Password::generate().as_str()),
        context_key: key.seal(&hex::encode(tenantry::crypto::random_key())),
        version: 0,
        last_error: None,
    };
    fx.tenantry
        .catalog()
        .insert_shared_pool(&half)
        .await
        .expect("row only");
    let acme = fx
        .create_with("acme", Strategy::Shared)
        .await
        .expect("the pool is completed");
    let pool = fx.tenantry.tenant_pool("acme").await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('c1', '{}', 'x')",
        acme.id
    ))
    .await
    .expect("write");
    tx.commit().await.expect("commit");
    fx.cleanup().await;
}

/// `resume` checks the tenant's storage as `repair` does: a suspended tenant whose table
/// went missing stays suspended, with the reason.
async fn resume_checks_storage(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    fx.tenantry.suspend_tenant("acme").await.expect("suspend");
    fx.execute(&acme, "DROP TABLE audit_logs").await;
    match fx.tenantry.resume_tenant("acme").await {
        Err(Error::VerifyFailed { tenant, detail }) => {
            assert_eq!(tenant, "acme");
            assert!(detail.contains("audit_logs"), "{detail}");
        }
        other => panic!("expected a verification failure, got {other:?}"),
    }
    assert_eq!(fx.tenant("acme").await.status, Status::Suspended);
    assert!(matches!(
        fx.tenantry.tenant_pool("acme").await,
        Err(Error::InvalidTransition {
            status: Status::Suspended,
            ..
        })
    ));
    fx.cleanup().await;
}

tenantry_testkit::on_each_backend!(
    creation_refuses_an_edited_applied_migration,
    resume_checks_storage
);

/// Another process holding the catalog's migration lock longer than a statement may run is
/// an error that says so, not a run that goes on unlocked (MySQL's `GET_LOCK` returns 0
/// when it gives up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_catalog_lock_is_an_error_after_the_wait() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    let catalog_url = fx.catalog_url.clone().expect("a MySQL catalog");
    let mut holder = sqlx::MySqlConnection::connect(&catalog_url)
        .await
        .expect("connect");
    // The catalog's lock key, as the catalog takes it.
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT CAST(GET_LOCK(CAST(? AS CHAR), 0) AS SIGNED)")
            .bind(0x7465_6e61_6e74_7279_i64)
            .fetch_one(&mut holder)
            .await
            .expect("take the lock");
    assert_eq!(taken, Some(1));
    let settings = tenantry::Settings {
        data_dir: Some(fx.data_dir()),
        migrations: Some(fx.migrations_dir()),
        catalog: Some(catalog_url),
        statement_timeout_secs: Some(1),
        ..tenantry::Settings::default()
    };
    match tenantry::Tenantry::open(settings.resolve()).await {
        Err(Error::CatalogBusy { waited_secs, .. }) => assert_eq!(waited_secs, 1),
        other => panic!("expected the catalog to be busy, got {other:?}"),
    }
    drop(holder);
    fx.cleanup().await;
}
