//! Fleet migrations: exactly once, refused when the files disagree with the ledger, going on
//! past a failing tenant, and leaving a failed tenant at its previous version.

use tenantry::{Error, Outcome, Status};
use tenantry_testkit::{Backend, Fixture, on_each_backend, on_transactional_backends};

on_each_backend!(
    an_edited_applied_migration_is_refused_naming_tenant_and_version,
    an_applied_migration_missing_from_the_directory_is_refused,
    migrate_all_goes_on_past_a_failing_tenant,
    suspended_tenants_are_kept_current_and_failed_ones_skipped,
    status_counts_pending_migrations,
);

// Rollback of a half-applied migration needs transactional DDL; MySQL: see tests/dirty.rs.
on_transactional_backends!(a_failed_migration_leaves_an_active_tenant_serving_its_previous_version);

const BUDGET: &str = "20250101000009_add_budget.sql";
const BUDGET_SQL: &str = "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;";

async fn an_edited_applied_migration_is_refused_naming_tenant_and_version(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    let edited = fx
        .migrations_dir()
        .join("20250101000003_create_document_jobs.sql");
    let mut sql = std::fs::read_to_string(&edited).expect("read");
    sql.push_str("\n-- an innocent-looking edit\n");
    std::fs::write(&edited, sql).expect("write");
    fx.write_migration(BUDGET, BUDGET_SQL);

    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1);
    let (tenant, error) = failed[0];
    assert_eq!(tenant, "acme");
    assert!(error.contains("\"acme\""), "{error}");
    assert!(error.contains("20250101000003"), "{error}");
    assert!(
        error.contains("20250101000003_create_document_jobs.sql"),
        "{error}"
    );
    let acme = fx.tenant("acme").await;
    assert_eq!(acme.version, 20250101000008, "nothing newer was applied");
    assert_eq!(fx.ledger(&acme).await.len(), 8);
    fx.cleanup().await;
}

async fn an_applied_migration_missing_from_the_directory_is_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    std::fs::remove_file(
        fx.migrations_dir()
            .join("20250101000008_create_audit_logs.sql"),
    )
    .expect("remove");
    let err = fx
        .tenantry
        .repair_tenant("acme")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, Error::MigrationMissing { ref tenant, version: 20250101000008, .. } if tenant == "acme"),
        "{err}"
    );
    assert_eq!(fx.tenant("acme").await.status, Status::Active);
    assert_eq!(fx.ledger(&acme).await.len(), 8);
    fx.cleanup().await;
}

async fn migrate_all_goes_on_past_a_failing_tenant(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo", "charlie"] {
        fx.create(slug).await.expect("create");
    }
    // bravo already has a table the next migration creates: it fails there only.
    let bravo = fx.tenant("bravo").await;
    fx.execute(&bravo, "CREATE TABLE campaign_tags (x INT)")
        .await;
    fx.write_migration(
        "20250101000009_add_tags.sql",
        "CREATE TABLE campaign_tags (tenant_id VARCHAR(26) NOT NULL, tag VARCHAR(64) NOT NULL);",
    );

    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(!report.is_success());
    assert_eq!(report.migrated(), 2);
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "bravo");
    assert!(failed[0].1.contains("20250101000009"), "{}", failed[0].1);

    for slug in ["alpha", "charlie"] {
        assert_eq!(
            fx.tenant(slug).await.version,
            20250101000009,
            "{slug} migrated"
        );
    }
    let bravo = fx.tenant("bravo").await;
    assert_eq!(bravo.status, Status::Active);
    assert_eq!(bravo.version, 20250101000008);
    assert!(bravo.last_error.is_some());
    fx.cleanup().await;
}

async fn a_failed_migration_leaves_an_active_tenant_serving_its_previous_version(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    fx.execute(
        &acme,
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('c1', 'acme', 'Spring')",
    )
    .await;
    fx.write_migration(
        "20250101000009_half_broken.sql",
        "ALTER TABLE campaigns ADD COLUMN archived_at TIMESTAMP;\n\
         UPDATE campaigns SET name = 'changed';\n\
         CREATE TABLEE nope (id INT);\n",
    );
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(matches!(
        report.tenants[0].outcome,
        Outcome::Failed {
            version: 20250101000008,
            ..
        }
    ));

    let acme = fx.tenant("acme").await;
    assert_eq!(acme.status, Status::Active);
    assert_eq!(acme.version, 20250101000008);
    assert!(
        acme.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("20250101000009")
    );
    let column = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('campaigns') WHERE name = 'archived_at'"
        }
        Backend::Postgres | Backend::Mysql => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'campaigns' AND column_name = 'archived_at'"
        }
    };
    assert_eq!(
        fx.scalar(&acme, column).await,
        0,
        "the ALTER TABLE was rolled back"
    );
    assert_eq!(
        fx.scalar(
            &acme,
            "SELECT COUNT(*) FROM campaigns WHERE name = 'Spring'"
        )
        .await,
        1,
        "the UPDATE was rolled back"
    );

    fx.write_migration(
        "20250101000009_half_broken.sql",
        "ALTER TABLE campaigns ADD COLUMN archived_at TIMESTAMP;",
    );
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success());
    let acme = fx.tenant("acme").await;
    assert_eq!(acme.version, 20250101000009);
    assert!(
        acme.last_error.is_none(),
        "a successful run clears the last error"
    );
    fx.cleanup().await;
}

async fn suspended_tenants_are_kept_current_and_failed_ones_skipped(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("paused").await.expect("create");
    fx.tenantry.suspend_tenant("paused").await.expect("suspend");
    fx.write_migration("20250101000009_broken.sql", "SELEC 1;");
    fx.create("broken").await.expect_err("fails");
    fx.write_migration("20250101000009_broken.sql", "CREATE TABLE later (id INT);");

    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let outcome = |slug: &str| {
        report
            .tenants
            .iter()
            .find(|r| r.tenant == slug)
            .map(|r| r.outcome.clone())
            .expect("in report")
    };
    assert!(matches!(
        outcome("paused"),
        Outcome::Migrated {
            to: 20250101000009,
            ..
        }
    ));
    assert!(matches!(outcome("broken"), Outcome::Skipped { .. }));
    assert_eq!(fx.tenant("paused").await.status, Status::Suspended);
    assert_eq!(fx.tenant("broken").await.status, Status::Failed);
    fx.cleanup().await;
}

async fn status_counts_pending_migrations(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    fx.write_migration(BUDGET, BUDGET_SQL);
    fx.write_migration("20250101000010_more.sql", "CREATE TABLE more (id INT);");
    let rows = fx.tenantry.status().await.expect("status");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].pending, 2);
    assert_eq!(rows[0].tenant.version, 20250101000008);
    fx.cleanup().await;
}
