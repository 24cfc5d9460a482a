//! Per-tenant backups on each engine and strategy: restored in place (later changes undone,
//! the tenant serving again), restored as a new tenant (the source untouched), native copies
//! taken under writes that restore exactly what their manifest says, a damaged backup
//! refused before anything changes, an interrupted restore never served, and backups listed
//! after a purge until purged with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sqlx::AssertSqlSafe;
use tenantry::{Error, NewTenant, Settings, Status, Strategy, Tenant};
use tenantry_testkit::{Backend, Fixture};

const ITEMS: &str = "CREATE TABLE items (
    tenant_id VARCHAR(26) NOT NULL,
    id        INTEGER NOT NULL,
    label     VARCHAR(80),
    PRIMARY KEY (tenant_id, id)
);";

const PLACES: [(&str, Strategy); 5] = [
    ("local", Strategy::Database),
    ("pg", Strategy::Database),
    ("pg", Strategy::Schema),
    ("pg", Strategy::Shared),
    ("my", Strategy::Database),
];

async fn fleet() -> Option<Fixture> {
    let fx = Fixture::mixed().await?;
    fx.use_migration("20250401000001_items.sql", ITEMS);
    Some(fx)
}

async fn create(fx: &Fixture, slug: &str, (server, strategy): (&str, Strategy)) -> Tenant {
    fx.tenantry
        .create_tenant(NewTenant {
            slug: slug.into(),
            server: Some(server.into()),
            strategy: Some(strategy),
            ..NewTenant::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"))
}

async fn exec(fx: &Fixture, tenant: &Tenant, sql: &str) {
    let mut conn = fx.tenantry.connect_storage(tenant).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{} on {}: {e}", sql, tenant.slug));
}

/// The tenant's items, as its own application connection reads them.
async fn items(fx: &Fixture, slug: &str) -> Vec<(i64, Option<String>)> {
    let pool = fx.tenantry.tenant_pool(slug).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let rows = tx
        .run_script("SELECT id, label FROM items ORDER BY id")
        .await
        .expect("read items");
    rows.iter()
        .map(|r| {
            let id = match &r["id"] {
                serde_json::Value::String(s) => s.parse().expect("id"),
                other => other.as_i64().expect("id"),
            };
            (id, r["label"].as_str().map(str::to_owned))
        })
        .collect()
}

fn seeded() -> Vec<(i64, Option<String>)> {
    vec![
        (1, Some("one".into())),
        (2, None),
        (3, Some("trois ✓".into())),
    ]
}

async fn seed(fx: &Fixture, t: &Tenant) {
    let id = t.id;
    exec(
        fx,
        t,
        &format!(
            "INSERT INTO items VALUES ('{id}', 1, 'one'), ('{id}', 2, NULL), ('{id}', 3, 'trois ✓')"
        ),
    )
    .await;
}

/// Later changes to the tenant's rows (through the administrative connection, which in a
/// shared pool sees every tenant's: hence the tenant column in every condition).
async fn change(fx: &Fixture, t: &Tenant) {
    let id = t.id;
    exec(
        fx,
        t,
        &format!(
            "DELETE FROM items WHERE tenant_id = '{id}' AND id = 1; \
             UPDATE items SET label = 'changed' WHERE tenant_id = '{id}' AND id = 3; \
             INSERT INTO items VALUES ('{id}', 4, 'new')"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_in_place_and_as_a_new_tenant_on_every_engine_and_strategy() {
    let Some(fx) = fleet().await else {
        return;
    };
    for (i, place) in PLACES.iter().enumerate() {
        let slug = format!("t{i}");
        let t = create(&fx, &slug, *place).await;
        seed(&fx, &t).await;
        // Another shared tenant's rows must survive this one's restore.
        let neighbour = create(&fx, &format!("n{i}"), *place).await;
        seed(&fx, &neighbour).await;

        // Native copies of a tenant's own storage: SQLite's `VACUUM INTO`, PostgreSQL's
        // `pg_dump` of a database or schema, `mysqldump`.
        let native = place.1 != Strategy::Shared;
        let mut kinds = vec![false];
        if native {
            kinds.push(true);
        }
        for native in kinds {
            let backup = fx
                .tenantry
                .backup_tenant(&slug, native)
                .await
                .unwrap_or_else(|e| panic!("backup {place:?}: {e}"));
            assert_eq!(backup.rows(), 3);
            change(&fx, &t).await;
            assert_ne!(items(&fx, &slug).await, seeded());

            let restored = fx
                .tenantry
                .restore_tenant(&slug, &backup.id, None)
                .await
                .unwrap_or_else(|e| panic!("restore {place:?} native={native}: {e}"));
            assert_eq!(restored.status, Status::Active, "{place:?}");
            assert_eq!(
                items(&fx, &slug).await,
                seeded(),
                "{place:?} native={native}"
            );
            assert_eq!(
                items(&fx, &format!("n{i}")).await,
                seeded(),
                "{place:?}: the neighbour"
            );

            if !native {
                let clone = format!("c{i}");
                change(&fx, &t).await;
                let copy = fx
                    .tenantry
                    .restore_tenant(&slug, &backup.id, Some(&clone))
                    .await
                    .unwrap_or_else(|e| panic!("restore as {place:?}: {e}"));
                assert_eq!(copy.status, Status::Active);
                assert_eq!(items(&fx, &clone).await, seeded(), "{place:?}: the clone");
                assert_ne!(
                    items(&fx, &slug).await,
                    seeded(),
                    "{place:?}: the source untouched"
                );
                // Back to the seeded rows for the next kind of backup.
                fx.tenantry
                    .restore_tenant(&slug, &backup.id, None)
                    .await
                    .expect("restore again");
            } else {
                let err = fx
                    .tenantry
                    .restore_tenant(&slug, &backup.id, Some("native-clone"))
                    .await
                    .expect_err("a native backup restores in place only");
                assert!(matches!(err, Error::ArchiveRefused { .. }), "{err}");
            }
        }
        let listed = fx.tenantry.backups(&slug).await.expect("list");
        assert_eq!(listed.len(), if native { 2 } else { 1 });
        if !native {
            let err = fx
                .tenantry
                .backup_tenant(&slug, true)
                .await
                .expect_err("no native backup here");
            assert!(
                matches!(err, Error::ArchiveRefused { .. }),
                "{place:?}: {err}"
            );
        }
    }
    fx.cleanup().await;
}

/// Inserts `items` rows 1000, 1001, … through the tenant's own pool until `stop`, counting
/// the committed ones in `done`.
fn writer(
    fx: &Fixture,
    t: &Tenant,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicI64>,
) -> tokio::task::JoinHandle<()> {
    let tenantry = fx.tenantry.clone();
    let (slug, id) = (t.slug.to_string(), t.id);
    tokio::spawn(async move {
        let pool = tenantry.tenant_pool(&slug).await.expect("pool");
        while !stop.load(Ordering::SeqCst) {
            let n = 1000 + done.load(Ordering::SeqCst);
            let mut tx = pool.begin().await.expect("begin");
            tx.run_script(&format!(
                "INSERT INTO items VALUES ('{id}', {n}, 'written {n}')"
            ))
            .await
            .expect("insert");
            tx.commit().await.expect("commit");
            done.fetch_add(1, Ordering::SeqCst);
        }
    })
}

/// Waits until the writer has committed `more` rows past `from`.
async fn writes_past(done: &AtomicI64, from: i64, more: i64) {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while done.load(Ordering::SeqCst) < from + more {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the writer kept writing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_backup_taken_under_writes_restores_exactly_what_it_recorded() {
    let Some(fx) = fleet().await else {
        return;
    };
    for (i, place) in [PLACES[2], PLACES[4]].into_iter().enumerate() {
        let slug = format!("w{i}");
        let t = create(&fx, &slug, place).await;
        seed(&fx, &t).await;
        if place.0 == "my" {
            // A table of the tenant's own, outside the migrations: bytes that need escaping, and
            // doubles that only survive with all their digits.
            exec(
                &fx,
                &t,
                "CREATE TABLE raw (id INT PRIMARY KEY, data LONGBLOB, ratio DOUBLE, doc JSON, \
                 at TIMESTAMP(6) NULL); \
                 INSERT INTO raw VALUES \
                 (1, UNHEX(CONCAT('00FF0A0D5C27225C00', REPEAT('E29C93', 3))), 0.1e0 + 0.2e0, \
                  '{\"k\": [1, \"é\", null]}', '2026-11-23 12:34:56.789012'), \
                 (2, '', 1.7976931348623157e308, NULL, NULL)",
            )
            .await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicI64::new(0));
        let writing = writer(&fx, &t, stop.clone(), done.clone());
        writes_past(&done, 0, 20).await;
        let backup = fx
            .tenantry
            .backup_tenant(&slug, true)
            .await
            .unwrap_or_else(|e| panic!("native backup {place:?} under writes: {e}"));
        // Writes go on after the backup: the tenant was never left locked.
        let after = done.load(Ordering::SeqCst);
        writes_past(&done, after, 20).await;
        stop.store(true, Ordering::SeqCst);
        writing.await.expect("writer");

        let recorded = backup
            .tables
            .iter()
            .find(|table| table.name == "items")
            .expect("items in the manifest")
            .rows;
        assert!(
            recorded > 3,
            "{place:?}: the backup holds rows written while it ran"
        );
        let restored = fx
            .tenantry
            .restore_tenant(&slug, &backup.id, None)
            .await
            .unwrap_or_else(|e| panic!("restore {place:?}: {e}"));
        assert_eq!(restored.status, Status::Active);
        let rows = items(&fx, &slug).await;
        assert_eq!(rows.len() as u64, recorded, "{place:?}");
        assert_eq!(&rows[..3], &seeded()[..], "{place:?}");
        // The rows written are 1000, 1001, … with none missing.
        let written: Vec<i64> = rows[3..].iter().map(|(id, _)| *id).collect();
        let expected: Vec<i64> = (1000..1000 + written.len() as i64).collect();
        assert_eq!(written, expected, "{place:?}");
        if place.0 == "my" {
            let mut conn = fx
                .tenantry
                .connect_storage(&restored)
                .await
                .expect("connect");
            let (hex, ratio, doc, at): (String, f64, String, String) = sqlx::query_as(
                "SELECT HEX(data), ratio, CAST(doc AS CHAR), CAST(at AS CHAR) FROM raw WHERE id = 1",
            )
            .fetch_one(&mut conn)
            .await
            .expect("read raw");
            assert_eq!(hex, format!("00FF0A0D5C27225C00{}", "E29C93".repeat(3)));
            assert_eq!(ratio, 0.1 + 0.2);
            assert!(doc.contains("\"é\""), "{doc}");
            assert_eq!(at, "2026-11-23 12:34:56.789012");
            let max: f64 = sqlx::query_scalar("SELECT ratio FROM raw WHERE id = 2")
                .fetch_one(&mut conn)
                .await
                .expect("read max");
            assert_eq!(max, f64::MAX);
        }
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_tenant_owning_large_objects_is_refused_a_native_backup() {
    let Some(fx) = fleet().await else {
        return;
    };
    create(&fx, "blobs", PLACES[2]).await;
    let pool = fx.tenantry.tenant_pool("blobs").await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    tx.run_script("SELECT lo_from_bytea(0, '\\xdeadbeef'::bytea)")
        .await
        .expect("a large object of its own");
    tx.commit().await.expect("commit");
    let err = fx
        .tenantry
        .backup_tenant("blobs", true)
        .await
        .expect_err("a schema's dump would leave it out");
    assert!(
        matches!(&err, Error::ArchiveRefused { detail, .. } if detail.contains("1 large objects")),
        "{err}"
    );
    assert!(fx.tenantry.backups("blobs").await.expect("list").is_empty());
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_refused_before_the_tenant_is_touched() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "acme", PLACES[1]).await;
    seed(&fx, &t).await;
    let backup = fx
        .tenantry
        .backup_tenant("acme", false)
        .await
        .expect("backup");
    change(&fx, &t).await;
    let changed = items(&fx, "acme").await;
    let mut bytes = std::fs::read(backup.path()).expect("read");
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(backup.path(), bytes).expect("write");
    let err = fx
        .tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect_err("damaged");
    assert!(
        matches!(&err, Error::ArchiveInvalid { detail, .. } if detail.contains("SHA-256")),
        "{err}"
    );
    assert_eq!(fx.tenant("acme").await.status, Status::Active);
    assert_eq!(items(&fx, "acme").await, changed, "nothing was restored");
    let err = fx
        .tenantry
        .restore_tenant("acme", "01nosuchbackup", None)
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::BackupNotFound { .. }), "{err}");

    // A manifest pointing its data file elsewhere is no backup at all.
    let manifest = backup.dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("\"data.tnt.gz\"", "\"../../../other.db\""),
    )
    .expect("write");
    assert!(fx.tenantry.backups("acme").await.expect("list").is_empty());
    let err = fx
        .tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect_err("not a backup");
    assert!(matches!(err, Error::BackupNotFound { .. }), "{err}");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_keeps_the_tenant_suspended_until_it_is_run_again() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "acme", PLACES[1]).await;
    let id = t.id;
    let values: Vec<String> = (1..=20_000)
        .map(|n| format!("('{id}', {n}, 'row {n}')"))
        .collect();
    exec(
        &fx,
        &t,
        &format!("INSERT INTO items VALUES {}", values.join(", ")),
    )
    .await;
    let backup = fx
        .tenantry
        .backup_tenant("acme", false)
        .await
        .expect("backup");

    let other = fx.reopen(Settings::default()).await;
    let backup_id = backup.id.clone();
    let task = tokio::spawn(async move { other.restore_tenant("acme", &backup_id, None).await });
    loop {
        let op = fx.tenantry.catalog().operation(id).await.expect("op");
        if op.is_some() {
            break;
        }
        assert!(
            !task.is_finished(),
            "the restore ended before it could be interrupted"
        );
        tokio::task::yield_now().await;
    }
    task.abort();
    let _ = task.await;

    assert_eq!(fx.tenant("acme").await.status, Status::Suspended);
    // Whatever step it stopped at, the tenant's login is shut.
    let server = fx.tenantry.catalog().server("pg").await.expect("server");
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&server.url)
        .await
        .expect("pg");
    let can_login: Option<bool> =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(format!("t_{}", id.to_string().to_ascii_lowercase()))
            .fetch_optional(&mut admin)
            .await
            .expect("role");
    assert_ne!(
        can_login,
        Some(true),
        "the role of a half-restored tenant can log in"
    );
    let err = fx
        .tenantry
        .resume_tenant("acme")
        .await
        .expect_err("unfinished");
    assert!(
        matches!(err, Error::RestoreUnfinished { backup: ref named, .. } if *named == backup.id),
        "{err}"
    );
    let err = fx
        .tenantry
        .repair_tenant("acme")
        .await
        .expect_err("unfinished");
    assert!(matches!(err, Error::RestoreUnfinished { .. }), "{err}");

    let restored = fx
        .tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect("restore again");
    // It was active when the first attempt began: finishing the job resumes it.
    assert_eq!(restored.status, Status::Active);
    assert_eq!(items(&fx, "acme").await.len(), 20_000);
    assert!(
        fx.tenantry
            .catalog()
            .operation(id)
            .await
            .expect("op")
            .is_none()
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_outlive_a_purge_unless_purged_with_it() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    for slug in ["kept", "gone"] {
        fx.create(slug).await.expect("create");
        fx.tenantry
            .backup_tenant(slug, false)
            .await
            .expect("backup");
        fx.tenantry
            .backup_tenant(slug, true)
            .await
            .expect("native backup");
    }
    fx.tenantry
        .delete_tenant("kept", true)
        .await
        .expect("purge");
    let kept = fx.tenantry.backups("kept").await.expect("list");
    assert_eq!(kept.len(), 2, "listed by the purged tenant's slug");
    fx.tenantry
        .purge_tenant_with_backups("gone")
        .await
        .expect("purge with backups");
    assert!(fx.tenantry.backups("gone").await.expect("list").is_empty());
    let dir = fx.config().backup_dir.clone();
    assert_eq!(
        std::fs::read_dir(dir).expect("dir").count(),
        1,
        "only kept's directory is left"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_running_elsewhere_is_left_alone() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "acme", PLACES[1]).await;
    seed(&fx, &t).await;
    let backup = fx
        .tenantry
        .backup_tenant("acme", false)
        .await
        .expect("backup");
    // Another process holds the tenant's operation lock, as a running restore does.
    let other = fx.reopen(Settings::default()).await;
    let (held, release) = tokio::sync::oneshot::channel::<()>();
    let (taken, wait_taken) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        let lock = other
            .hold_operation_lock("acme")
            .await
            .expect("lock")
            .expect("free");
        let _ = taken.send(());
        let _ = release.await;
        drop(lock);
    });
    wait_taken.await.expect("taken");
    let err = fx
        .tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect_err("running elsewhere");
    assert!(
        matches!(&err, Error::OperationRunning { kind, .. } if kind == "restore"),
        "{err}"
    );
    assert_eq!(fx.tenant("acme").await.status, Status::Active, "untouched");
    let _ = held.send(());
    holder.await.expect("holder");
    fx.tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect("restore once it is free");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_tenant_is_not_emptied_for_a_backup_of_another_version() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "acme", PLACES[3]).await;
    seed(&fx, &t).await;
    let backup = fx
        .tenantry
        .backup_tenant("acme", false)
        .await
        .expect("backup");
    fx.write_migration(
        "20250401000002_notes.sql",
        "ALTER TABLE items ADD COLUMN note VARCHAR(20);",
    );
    let set = fx.tenantry.migrations().expect("set");
    let report = fx
        .tenantry
        .migrate_all(&set, &|_| {})
        .await
        .expect("migrate");
    assert!(report.is_success(), "{report:?}");
    let err = fx
        .tenantry
        .restore_tenant("acme", &backup.id, None)
        .await
        .expect_err("another version");
    assert!(
        matches!(&err, Error::ArchiveRefused { detail, .. } if detail.contains("shared pool")),
        "{err}"
    );
    assert_eq!(fx.tenant("acme").await.status, Status::Active);
    assert_eq!(items(&fx, "acme").await, seeded(), "its rows are untouched");
    assert!(
        fx.tenantry
            .catalog()
            .operation(t.id)
            .await
            .expect("op")
            .is_none()
    );
    fx.cleanup().await;
}
