//! Where the fleet stands: a summary decided from the catalog alone (no tenant's storage
//! opened), and one tenant's migrations as its ledger records them.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Connection};
use tenantry::migrate::MigrationState;
use tenantry::{Error, Status, Strategy, Tenant};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    the_summary_counts_a_failed_tenant_and_never_opens_storage,
    one_tenants_status_lists_applied_and_pending_migrations,
    one_tenants_status_names_changed_and_missing_files,
);

const TAGS: &str = "20250101000009_add_tags.sql";
const TAGS_SQL: &str =
    "CREATE TABLE campaign_tags (tenant_id VARCHAR(26) NOT NULL, tag VARCHAR(64) NOT NULL);";

async fn the_summary_counts_a_failed_tenant_and_never_opens_storage(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo", "charlie"] {
        fx.create(slug).await.expect("create");
    }
    // bravo already has the table the next migration creates: it fails there only.
    let bravo = fx.tenant("bravo").await;
    fx.execute(&bravo, "CREATE TABLE campaign_tags (x INT)")
        .await;
    fx.write_migration(TAGS, TAGS_SQL);
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert_eq!(report.failed().count(), 1);

    let summary = fx.tenantry.migration_summary(&set).await.expect("summary");
    assert_eq!(summary.latest, 20250101000009);
    assert_eq!(summary.migrations, 9);
    assert_eq!(summary.tenants, 3);
    assert_eq!(summary.current, 2);
    assert_eq!(summary.pending, 1);
    assert_eq!(summary.failed, 1);
    // MySQL records the one-statement migration dirty before running it.
    let dirty = usize::from(backend == Backend::Mysql);
    assert_eq!(summary.dirty, dirty);
    assert_eq!(
        summary.versions,
        BTreeMap::from([(20250101000008, 1), (20250101000009, 2)])
    );
    assert_eq!(summary.statuses, BTreeMap::from([("active", 3)]));
    assert_eq!(summary.problems.len(), 1);
    assert_eq!(summary.problems[0].tenant, "bravo");
    assert_eq!(summary.problems[0].version, 20250101000008);
    assert!(
        summary.problems[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("20250101000009"),
        "{:?}",
        summary.problems[0]
    );

    // With alpha's storage gone behind Tenantry's back, the summary does not notice: it
    // reads the catalog only. Reading alpha's ledger does.
    let alpha = fx.tenant("alpha").await;
    drop_storage_behind_the_back(&fx, &alpha).await;
    let again = fx.tenantry.migration_summary(&set).await.expect("summary");
    assert_eq!(again, summary);
    let err = fx
        .tenantry
        .tenant_migrations("alpha", &set)
        .await
        .expect_err("no storage");
    assert!(err.to_string().contains("\"alpha\""), "{err}");
    fx.cleanup().await;
}

async fn one_tenants_status_lists_applied_and_pending_migrations(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    fx.write_migration(TAGS, TAGS_SQL);
    let set = fx.tenantry.migrations().expect("migrations");

    let status = fx
        .tenantry
        .tenant_migrations("acme", &set)
        .await
        .expect("status");
    assert_eq!(status.tenant, "acme");
    assert_eq!(status.ledger_of, "acme");
    assert!(!status.shared);
    assert_eq!(status.version, 20250101000008);
    assert_eq!(status.latest, 20250101000009);
    assert_eq!(status.migrations.len(), 9);
    for m in &status.migrations[..8] {
        assert_eq!(m.state, MigrationState::Applied, "{m:?}");
        assert_eq!(m.checksum_matches, Some(true), "{m:?}");
        assert!(m.applied_at.is_some() && m.execution_ms.is_some(), "{m:?}");
    }
    assert_eq!(status.migrations[0].description, "create campaigns");
    let tags = &status.migrations[8];
    assert_eq!(tags.version, 20250101000009);
    assert_eq!(tags.description, "add tags");
    assert_eq!(tags.state, MigrationState::Pending);
    assert_eq!(tags.applied_at, None);
    assert_eq!(tags.checksum_matches, None);
    assert_eq!(status.unsettled(), 1);

    // Once migrated, every version is applied.
    fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let status = fx
        .tenantry
        .tenant_migrations("acme", &set)
        .await
        .expect("status");
    assert_eq!(status.version, 20250101000009);
    assert_eq!(status.unsettled(), 0);

    let err = fx
        .tenantry
        .tenant_migrations("nobody", &set)
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::TenantNotFound { .. }), "{err}");
    fx.cleanup().await;
}

async fn one_tenants_status_names_changed_and_missing_files(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    let jobs = fx
        .migrations_dir()
        .join("20250101000003_create_document_jobs.sql");
    let mut sql = std::fs::read_to_string(&jobs).expect("read");
    sql.push_str("\n-- edited after it was applied\n");
    std::fs::write(&jobs, sql).expect("write");
    std::fs::remove_file(
        fx.migrations_dir()
            .join("20250101000008_create_audit_logs.sql"),
    )
    .expect("remove");
    let set = fx.tenantry.migrations().expect("migrations");

    let status = fx
        .tenantry
        .tenant_migrations("acme", &set)
        .await
        .expect("status");
    let entry = |version: i64| {
        status
            .migrations
            .iter()
            .find(|m| m.version == version)
            .expect("listed")
    };
    assert_eq!(
        status.migrations.len(),
        8,
        "the set and the ledger together"
    );
    assert_eq!(entry(20250101000003).state, MigrationState::ChangedFile);
    assert_eq!(entry(20250101000003).checksum_matches, Some(false));
    let gone = entry(20250101000008);
    assert_eq!(gone.state, MigrationState::MissingFile);
    assert_eq!(gone.description, "create audit logs", "from the ledger");
    assert_eq!(gone.checksum_matches, None);
    assert_eq!(entry(20250101000002).state, MigrationState::Applied);
    assert_eq!(status.unsettled(), 2);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_mysql_migration_is_counted_dirty_and_listed_with_its_statement() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    fx.create("acme").await.expect("create");
    fx.create("other").await.expect("create");
    fx.write_migration(
        "20250101000009_tags.sql",
        "CREATE TABLE tags (id INT);\nCREATE TABLEE oops (id INT);",
    );
    // Only acme is migrated: other stays behind, pending and clean.
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx
        .tenantry
        .migrate_slugs(&set, &["acme".to_owned()], &|_| {})
        .await
        .expect("run");
    assert_eq!(report.failed().count(), 1);

    let summary = fx.tenantry.migration_summary(&set).await.expect("summary");
    assert_eq!(summary.dirty, 1);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.pending, 2);
    assert_eq!(summary.current, 0);
    assert_eq!(summary.problems.len(), 1);
    assert_eq!(summary.problems[0].tenant, "acme");
    assert_eq!(summary.problems[0].dirty_version, Some(20250101000009));

    let status = fx
        .tenantry
        .tenant_migrations("acme", &set)
        .await
        .expect("status");
    let tags = status.migrations.last().expect("listed");
    assert_eq!(tags.version, 20250101000009);
    assert_eq!(tags.state, MigrationState::Dirty);
    assert_eq!(
        tags.failed_statement.as_deref(),
        Some("CREATE TABLEE oops (id INT)")
    );
    assert_eq!(status.version, 20250101000008);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_tenants_status_is_its_pools_ledger_and_says_so() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("shared-a", Strategy::Shared)
        .await
        .expect("shared");
    fx.create_with("own-schema", Strategy::Schema)
        .await
        .expect("schema");
    let set = fx.tenantry.migrations().expect("migrations");
    let status = fx
        .tenantry
        .tenant_migrations("shared-a", &set)
        .await
        .expect("status");
    assert!(status.shared);
    assert_eq!(status.ledger_of, "shared pool on pg");
    assert_eq!(status.strategy, Strategy::Shared);
    assert_eq!(status.unsettled(), 0);
    assert_eq!(status.migrations.len(), 8);
    let schema = fx
        .tenantry
        .tenant_migrations("own-schema", &set)
        .await
        .expect("status");
    assert!(!schema.shared);
    assert_eq!(schema.ledger_of, "own-schema");
    assert_eq!(schema.unsettled(), 0);

    // A deleted tenant has no ledger to read.
    fx.tenantry
        .delete_tenant("own-schema", false)
        .await
        .expect("delete");
    let err = fx
        .tenantry
        .tenant_migrations("own-schema", &set)
        .await
        .expect_err("deleted");
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                status: Status::Deleted,
                ..
            }
        ),
        "{err}"
    );
    fx.cleanup().await;
}

/// Removes a database tenant's storage without telling the catalog.
async fn drop_storage_behind_the_back(fx: &Fixture, tenant: &Tenant) {
    let storage = tenant.storage.as_str();
    let (url, sql) = match fx.backend {
        Backend::Sqlite => {
            let file = fx.data_dir().join("tenants").join(format!("{storage}.db"));
            std::fs::remove_file(&file).expect("remove the tenant's file");
            return;
        }
        Backend::Postgres => (
            tenantry_testkit::postgres_url(),
            format!("DROP DATABASE \"{storage}\" WITH (FORCE)"),
        ),
        Backend::Mysql => (
            tenantry_testkit::mysql_url(),
            format!("DROP DATABASE `{storage}`"),
        ),
    };
    let mut admin = sqlx::AnyConnection::connect(&url)
        .await
        .expect("connect as admin");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .expect("drop the tenant's database");
    let _ = admin.close().await;
}
