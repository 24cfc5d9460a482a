//! The lifecycle's promises, on real SQLite files and a real PostgreSQL server.

use tenantry::example::TENANT_TABLES;
use tenantry::{Error, Status};
use tenantry_testkit::{Backend, Fixture, on_each_backend, on_transactional_backends};

on_each_backend!(
    create_makes_an_active_tenant_with_every_table_and_a_complete_ledger,
    a_duplicate_slug_is_refused_and_changes_nothing,
    suspend_resume_delete_and_purge,
    physical_names_derive_from_the_id_not_the_slug,
);

// On MySQL a failed migration is dirty instead: see tests/dirty.rs.
on_transactional_backends!(
    a_new_tenant_whose_migration_fails_is_failed_and_resumes_once_fixed,
    repair_resumes_a_failed_tenant,
);

async fn create_makes_an_active_tenant_with_every_table_and_a_complete_ledger(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    assert_eq!(acme.status, Status::Active);
    let set = fx.tenantry.migrations().expect("migrations");
    assert_eq!(acme.version, set.latest());

    let tables = fx.tables(&acme).await;
    for table in TENANT_TABLES {
        assert!(tables.contains(table), "table {table} missing: {tables:?}");
    }
    let ledger = fx.ledger(&acme).await;
    assert_eq!(ledger.len(), set.len());
    for (row, migration) in ledger.iter().zip(set.iter()) {
        assert_eq!(row.version, migration.version);
        assert_eq!(row.checksum, hex(&migration.checksum));
    }
    let events = fx
        .tenantry
        .catalog()
        .events(Some(&acme), 10)
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.action == "tenant.create" && e.outcome == "ok")
    );
    fx.cleanup().await;
}

async fn a_new_tenant_whose_migration_fails_is_failed_and_resumes_once_fixed(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let broken = fx.write_migration(
        "20250101000009_broken.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLEE oops (id INT);\n",
    );
    let err = fx.create("acme").await.expect_err("must fail");
    match &err {
        Error::MigrationFailed {
            tenant,
            version,
            file,
            ..
        } => {
            assert_eq!(tenant, "acme");
            assert_eq!(*version, 20250101000009);
            assert_eq!(file, &broken);
        }
        other => panic!("unexpected error: {other}"),
    }
    let acme = fx.tenant("acme").await;
    assert_eq!(
        acme.status,
        Status::Failed,
        "a tenant whose migration failed is never active"
    );
    assert_eq!(
        acme.version, 20250101000008,
        "the catalog follows the ledger"
    );
    assert!(
        acme.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("20250101000009")
    );
    assert!(
        !fx.tables(&acme).await.contains("tags"),
        "the failed migration was rolled back"
    );

    fx.write_migration(
        "20250101000009_broken.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLE oops (id INT);\n",
    );
    let acme = fx.create("acme").await.expect("creating again resumes");
    assert_eq!(acme.status, Status::Active);
    assert_eq!(acme.version, 20250101000009);
    assert!(acme.last_error.is_none());
    assert_eq!(fx.ledger(&acme).await.len(), 9);
    fx.cleanup().await;
}

async fn repair_resumes_a_failed_tenant(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.write_migration("20250101000009_broken.sql", "SELEC 1;");
    fx.create("acme").await.expect_err("must fail");
    fx.write_migration("20250101000009_broken.sql", "CREATE TABLE fixed (id INT);");
    let acme = fx.tenantry.repair_tenant("acme").await.expect("repair");
    assert_eq!(acme.status, Status::Active);
    assert!(fx.tables(&acme).await.contains("fixed"));
    fx.cleanup().await;
}

async fn a_duplicate_slug_is_refused_and_changes_nothing(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let first = fx.create("acme").await.expect("create");
    let err = fx.create("acme").await.expect_err("duplicate");
    assert!(
        matches!(err, Error::TenantExists { ref slug, status: Status::Active } if slug == "acme"),
        "{err}"
    );
    let tenants = fx.tenantry.catalog().tenants().await.expect("list");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].id, first.id);
    fx.cleanup().await;
}

async fn suspend_resume_delete_and_purge(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    let t = &fx.tenantry;
    assert_eq!(
        t.suspend_tenant("acme").await.expect("suspend").status,
        Status::Suspended
    );
    assert!(matches!(
        t.suspend_tenant("acme").await,
        Err(Error::InvalidTransition {
            status: Status::Suspended,
            ..
        })
    ));
    assert_eq!(
        t.resume_tenant("acme").await.expect("resume").status,
        Status::Active
    );

    assert!(fx.storage_exists(&acme).await);
    let deleted = t
        .delete_tenant("acme", false)
        .await
        .expect("delete")
        .expect("kept row");
    assert_eq!(deleted.status, Status::Deleted);
    assert!(deleted.deleted_at.is_some());
    assert!(!fx.storage_exists(&acme).await, "delete drops the storage");
    assert!(
        matches!(fx.create("acme").await, Err(Error::TenantExists { .. })),
        "slug held until purge"
    );

    assert!(
        t.delete_tenant("acme", true)
            .await
            .expect("purge")
            .is_none()
    );
    assert!(
        t.catalog()
            .find_tenant("acme")
            .await
            .expect("lookup")
            .is_none()
    );
    let again = fx.create("acme").await.expect("slug is free after purge");
    assert_ne!(again.id, acme.id);
    assert_ne!(again.storage, acme.storage);
    fx.cleanup().await;
}

async fn physical_names_derive_from_the_id_not_the_slug(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = fx.create("acme-co_1").await.expect("create");
    assert_eq!(t.storage, t.id.storage_name());
    assert!(!t.storage.as_str().contains("acme"));
    fx.cleanup().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deleting a tenant while it is being provisioned is refused: the running create could
/// otherwise re-create storage that no record would own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioning_tenant_cannot_be_deleted_until_repaired() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    let acme = fx.tenant("acme").await;
    // As a killed create leaves it.
    fx.tenantry
        .catalog()
        .transition(acme.id, &[Status::Active], Status::Provisioning, None)
        .await
        .expect("transition");
    let err = fx
        .tenantry
        .delete_tenant("acme", false)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("repair"), "{err}");
    assert!(fx.storage_exists(&acme).await);
    fx.tenantry.repair_tenant("acme").await.expect("repair");
    fx.tenantry
        .delete_tenant("acme", true)
        .await
        .expect("delete");
    assert!(!fx.storage_exists(&acme).await);
    fx.cleanup().await;
}
