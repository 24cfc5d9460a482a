//! MySQL/MariaDB DDL is not transactional: a migration that stops halfway is recorded as
//! dirty with the statement that failed, never as applied, and an operator settles it.

use tenantry::{Error, Status};
use tenantry_testkit::{Backend, Fixture};

const BROKEN: &str = "CREATE TABLE tags (id INT);\nINSERT INTO tags VALUES (1);\nCREATE TABLEE oops (id INT);\nCREATE TABLE after_oops (id INT);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_applied_migration_is_dirty_with_its_statement_and_resolve_retry_reapplies_it() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    fx.write_migration("20250101000009_tags.sql", BROKEN);

    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let (_, error) = report.failed().next().expect("acme failed");
    assert!(error.contains("CREATE TABLEE oops"), "{error}");
    assert!(error.contains("dirty"), "{error}");

    let ledger = fx.ledger(&acme).await;
    let row = ledger
        .iter()
        .find(|r| r.version == 20250101000009)
        .expect("dirty row");
    assert_eq!(row.state, "dirty", "never recorded as applied");
    assert_eq!(
        row.failed_statement.as_deref(),
        Some("CREATE TABLEE oops (id INT)")
    );
    let acme_now = fx.tenant("acme").await;
    assert_eq!(acme_now.version, 20250101000008);
    assert_eq!(acme_now.status, Status::Active);
    let tables = fx.tables(&acme).await;
    assert!(
        tables.contains("tags") && !tables.contains("after_oops"),
        "{tables:?}"
    );

    // Running again refuses: the operator has to look first.
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    let (_, error) = report.failed().next().expect("still failed");
    assert!(
        error.contains("stopped halfway") && error.contains("CREATE TABLEE oops"),
        "{error}"
    );

    // The operator undoes the partial migration, fixes the file, and retries.
    fx.execute(&acme, "DROP TABLE tags").await;
    fx.write_migration(
        "20250101000009_tags.sql",
        "CREATE TABLE tags (id INT);\nINSERT INTO tags VALUES (1);\nCREATE TABLE oops (id INT);",
    );
    fx.tenantry
        .resolve_dirty("acme", 20250101000009, false)
        .await
        .expect("resolve");
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success(), "{report:?}");
    let acme_now = fx.tenant("acme").await;
    assert_eq!(acme_now.version, 20250101000009);
    assert!(acme_now.last_error.is_none());
    assert_eq!(fx.scalar(&acme_now, "SELECT COUNT(*) FROM tags").await, 1);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_who_finished_a_dirty_migration_by_hand_marks_it_applied() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create");
    fx.write_migration("20250101000009_tags.sql", BROKEN);
    let set = fx.tenantry.migrations().expect("migrations");
    fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");

    // Fix the file to what was meant, and finish the remaining statements by hand.
    let fixed = "CREATE TABLE tags (id INT);\nINSERT INTO tags VALUES (1);\nCREATE TABLE oops (id INT);\nCREATE TABLE after_oops (id INT);";
    fx.write_migration("20250101000009_tags.sql", fixed);
    fx.execute(
        &acme,
        "CREATE TABLE oops (id INT); CREATE TABLE after_oops (id INT)",
    )
    .await;
    let acme_now = fx
        .tenantry
        .resolve_dirty("acme", 20250101000009, true)
        .await
        .expect("resolve");
    assert_eq!(acme_now.version, 20250101000009);
    let ledger = fx.ledger(&acme).await;
    assert!(ledger.iter().all(|r| r.is_applied()));
    assert!(
        fx.tenantry.repair_tenant("acme").await.is_ok(),
        "verifies clean"
    );

    // Resolving a migration that is not dirty is refused.
    let err = fx
        .tenantry
        .resolve_dirty("acme", 20250101000009, true)
        .await
        .expect_err("not dirty");
    assert!(matches!(err, Error::VerifyFailed { .. }), "{err}");
    fx.cleanup().await;
}
