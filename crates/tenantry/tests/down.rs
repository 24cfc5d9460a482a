//! Reverting migrations with their down scripts: newest first, each with its ledger row,
//! refused before any tenant changes when a version to revert has no down file, a failing
//! down script rolled back whole where DDL is transactional and left dirty with its statement
//! on MySQL, a shared pool only for all its tenants at once.

use tenantry::migrate::ledger::LedgerRow;
use tenantry::{Error, Outcome, RevertTarget, Status, Strategy, Tenant};
use tenantry_testkit::{Backend, Fixture, on_each_backend, on_transactional_backends};

on_each_backend!(
    one_step_down_removes_the_newest_change_and_migrate_applies_it_again,
    down_to_zero_reverts_every_migration,
    a_missing_down_file_refuses_before_any_tenant_changes,
    targets_above_a_tenant_or_outside_the_set_are_refused,
);

// A down script rolled back whole needs transactional DDL; MySQL: the test below.
on_transactional_backends!(a_failing_down_script_is_rolled_back_whole_and_the_others_are_reverted);

const BUDGET: &str = "20250101000009_add_budget";
const BUDGET_UP: &str = "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;";
const BUDGET_DOWN: &str = "ALTER TABLE campaigns DROP COLUMN budget_cents;";
const TAGS: &str = "20250101000010_create_tags";
const TAGS_UP: &str = "CREATE TABLE tags (\n    tenant_id VARCHAR(26) NOT NULL,\n    id VARCHAR(26) NOT NULL,\n    name VARCHAR(64) NOT NULL,\n    PRIMARY KEY (tenant_id, id)\n);";
const TAGS_DOWN: &str = "DROP TABLE tags;";

/// The example set's tables, in the order its versions create them.
const EXAMPLE_TABLES: [(&str, &str); 8] = [
    ("20250101000001_create_campaigns", "campaigns"),
    ("20250101000002_create_documents", "documents"),
    ("20250101000003_create_document_jobs", "document_jobs"),
    ("20250101000004_create_processors", "processors"),
    (
        "20250101000005_create_processor_executions",
        "processor_executions",
    ),
    ("20250101000006_create_credentials", "credentials"),
    ("20250101000007_create_usage_events", "usage_events"),
    ("20250101000008_create_audit_logs", "audit_logs"),
];

/// Writes `<stem>.up.sql` and, if given, `<stem>.down.sql`.
fn write_pair(fx: &Fixture, stem: &str, up: &str, down: Option<&str>) {
    fx.write_migration(&format!("{stem}.up.sql"), up);
    if let Some(down) = down {
        fx.write_migration(&format!("{stem}.down.sql"), down);
    }
}

/// `alpha` and `bravo` with their own databases; on PostgreSQL also a schema tenant and two
/// tenants of the shared pool.
async fn fleet(fx: &Fixture) -> Vec<Tenant> {
    fx.create("alpha").await.expect("alpha");
    fx.create("bravo").await.expect("bravo");
    if fx.backend == Backend::Postgres {
        fx.create_with("own-schema", Strategy::Schema)
            .await
            .expect("schema tenant");
        for slug in ["shared-a", "shared-b"] {
            fx.create_with(slug, Strategy::Shared)
                .await
                .expect("shared tenant");
        }
    }
    live(fx).await
}

/// Every live tenant, in catalog order.
async fn live(fx: &Fixture) -> Vec<Tenant> {
    fx.tenantry
        .catalog()
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .filter(|t| t.status.is_live())
        .collect()
}

async fn migrate_all(fx: &Fixture) {
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(report.is_success(), "{report:?}");
}

async fn down(
    fx: &Fixture,
    tenants: Vec<Tenant>,
    target: RevertTarget,
) -> tenantry::Result<tenantry::FleetReport> {
    let set = fx.tenantry.migrations().expect("migrations");
    fx.tenantry
        .migrate_down(&set, tenants, target, &|_| {})
        .await
}

/// The applied versions of a tenant's ledger.
async fn versions(fx: &Fixture, tenant: &Tenant) -> Vec<i64> {
    fx.ledger(tenant)
        .await
        .iter()
        .filter(|r| r.is_applied())
        .map(|r| r.version)
        .collect()
}

/// Whether `campaigns` has the `budget_cents` column in the tenant's storage.
async fn has_budget(fx: &Fixture, tenant: &Tenant) -> bool {
    let sql = match fx.backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('campaigns') WHERE name = 'budget_cents'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'campaigns' AND column_name = 'budget_cents'"
        }
        Backend::Mysql => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name = 'campaigns' AND column_name = 'budget_cents'"
        }
    };
    fx.scalar(tenant, sql).await == 1
}

/// The outcome reported for `slug`.
fn outcome(report: &tenantry::FleetReport, slug: &str) -> Outcome {
    report
        .tenants
        .iter()
        .find(|r| r.tenant == slug)
        .map(|r| r.outcome.clone())
        .unwrap_or_else(|| panic!("{slug} not in {report:?}"))
}

/// The newest `migrate.down` event of a tenant: its outcome and detail.
async fn down_event(fx: &Fixture, tenant: &Tenant) -> Option<(String, Option<String>)> {
    fx.tenantry
        .catalog()
        .events(Some(tenant), 50)
        .await
        .expect("events")
        .into_iter()
        .find(|e| e.action == "migrate.down")
        .map(|e| (e.outcome, e.detail))
}

async fn one_step_down_removes_the_newest_change_and_migrate_applies_it_again(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(&fx, BUDGET, BUDGET_UP, Some(BUDGET_DOWN));
    write_pair(&fx, TAGS, TAGS_UP, Some(TAGS_DOWN));
    migrate_all(&fx).await;
    for t in &tenants {
        let t = fx.tenant(t.slug.as_str()).await;
        assert_eq!(t.version, 20250101000010, "{}", t.slug);
        assert!(fx.tables(&t).await.contains("tags"), "{}", t.slug);
    }

    // The first tenant named twice is reverted once.
    let mut named = tenants.clone();
    named.push(tenants[0].clone());
    let report = down(&fx, named, RevertTarget::Steps(1))
        .await
        .expect("down");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.tenants.len(), tenants.len(), "{report:?}");
    assert_eq!(report.reverted(), tenants.len());
    for t in &tenants {
        let slug = t.slug.as_str();
        assert!(
            matches!(
                outcome(&report, slug),
                Outcome::Reverted { from: 20250101000010, to: 20250101000009, ref reverted }
                    if reverted == &[20250101000010]
            ),
            "{slug}: {report:?}"
        );
        let now = fx.tenant(slug).await;
        assert_eq!(now.version, 20250101000009, "{slug}");
        assert_eq!(now.status, t.status, "{slug}");
        assert!(now.last_error.is_none(), "{slug}: {:?}", now.last_error);
        assert!(now.dirty_version.is_none(), "{slug}");
        assert_eq!(
            versions(&fx, &now).await,
            (20250101000001..=20250101000009).collect::<Vec<_>>(),
            "{slug}: the ledger row of 10 is gone"
        );
        assert!(!fx.tables(&now).await.contains("tags"), "{slug}");
        assert!(has_budget(&fx, &now).await, "{slug}: 9 stays");
        let (outcome, detail) = down_event(&fx, &now).await.expect("a migrate.down event");
        assert_eq!(outcome, "ok", "{slug}");
        assert_eq!(
            detail.as_deref(),
            Some("20250101000010 -> 20250101000009 (reverted [20250101000010])"),
            "{slug}"
        );
    }
    if backend == Backend::Postgres {
        let pool = fx
            .tenantry
            .catalog()
            .shared_pool("pg")
            .await
            .expect("lookup")
            .expect("pool");
        assert_eq!(pool.version, 20250101000009, "the pool's row follows");
    }

    // One more step takes the column away.
    let report = down(&fx, live(&fx).await, RevertTarget::Steps(1))
        .await
        .expect("down");
    assert_eq!(report.reverted(), tenants.len(), "{report:?}");
    for t in &tenants {
        let now = fx.tenant(t.slug.as_str()).await;
        assert_eq!(now.version, 20250101000008, "{}", t.slug);
        assert!(!has_budget(&fx, &now).await, "{}", t.slug);
    }

    // A rollout applies both again, from the same files.
    migrate_all(&fx).await;
    for t in &tenants {
        let now = fx.tenant(t.slug.as_str()).await;
        assert_eq!(now.version, 20250101000010, "{}", t.slug);
        assert!(fx.tables(&now).await.contains("tags"), "{}", t.slug);
        assert!(has_budget(&fx, &now).await, "{}", t.slug);
    }
    fx.cleanup().await;
}

async fn down_to_zero_reverts_every_migration(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    for (stem, table) in EXAMPLE_TABLES {
        fx.write_migration(&format!("{stem}.down.sql"), &format!("DROP TABLE {table};"));
    }
    // One runs outside a transaction, its row dirty until it ran.
    fx.write_migration(
        "20250101000008_create_audit_logs.down.sql",
        "-- no-transaction\nDROP TABLE audit_logs;",
    );
    let report = down(&fx, tenants.clone(), RevertTarget::To(0))
        .await
        .expect("down");
    assert!(report.is_success(), "{report:?}");
    let all: Vec<i64> = (20250101000001..=20250101000008).rev().collect();
    for t in &tenants {
        let slug = t.slug.as_str();
        assert!(
            matches!(
                outcome(&report, slug),
                Outcome::Reverted { from: 20250101000008, to: 0, ref reverted } if reverted == &all
            ),
            "{slug}: {report:?}"
        );
        let now = fx.tenant(slug).await;
        assert_eq!(now.version, 0, "{slug}");
        assert!(fx.ledger(&now).await.is_empty(), "{slug}");
        assert_eq!(
            fx.tables(&now).await.into_iter().collect::<Vec<_>>(),
            ["_tenantry_migrations"],
            "{slug}"
        );
    }

    // Nothing left to revert: current at 0.
    let report = down(&fx, live(&fx).await, RevertTarget::To(0))
        .await
        .expect("down");
    assert_eq!(report.current(), tenants.len(), "{report:?}");

    migrate_all(&fx).await;
    for t in &tenants {
        let now = fx.tenant(t.slug.as_str()).await;
        assert_eq!(now.version, 20250101000008, "{}", t.slug);
        assert_eq!(fx.tables(&now).await.len(), 9, "{}", t.slug);
    }
    fx.cleanup().await;
}

async fn a_missing_down_file_refuses_before_any_tenant_changes(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(&fx, BUDGET, BUDGET_UP, Some(BUDGET_DOWN));
    migrate_all(&fx).await;
    // Only bravo goes on to 20, which has no down file.
    write_pair(&fx, "20250101000020_create_tags", TAGS_UP, None);
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx
        .tenantry
        .migrate_slugs(&set, &["bravo".to_owned()], &|_| {})
        .await
        .expect("run");
    assert!(report.is_success(), "{report:?}");

    let mut before: Vec<(String, Vec<LedgerRow>)> = Vec::new();
    for t in &tenants {
        let t = fx.tenant(t.slug.as_str()).await;
        before.push((t.slug.to_string(), fx.ledger(&t).await));
    }
    let unchanged = || async {
        for (slug, rows) in &before {
            let now = fx.tenant(slug).await;
            let ledger = fx.ledger(&now).await;
            let rows_of = |rows: &[LedgerRow]| {
                rows.iter()
                    .map(|r| (r.version, r.state.clone(), r.checksum.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(rows_of(&ledger), rows_of(rows), "{slug}: ledger untouched");
            let expected = if slug == "bravo" {
                20250101000020
            } else {
                20250101000009
            };
            assert_eq!(now.version, expected, "{slug}");
            assert!(now.last_error.is_none(), "{slug}: {:?}", now.last_error);
            assert!(has_budget(&fx, &now).await, "{slug}");
            assert!(down_event(&fx, &now).await.is_none(), "{slug}");
        }
    };

    // alpha could go back to 8, but bravo cannot: nothing runs anywhere.
    let expected_file = fx
        .migrations_dir()
        .join("20250101000020_create_tags.down.sql");
    for target in [RevertTarget::To(20250101000008), RevertTarget::Steps(1)] {
        let err = down(&fx, tenants.clone(), target)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, Error::DownMissing { tenant, version: 20250101000020, file }
                if tenant == "bravo" && file == &expected_file),
            "{target:?}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&expected_file.display().to_string()),
            "{err}"
        );
        unchanged().await;
    }

    // A version added below bravo's that it never ran: the catalog no longer proves what
    // bravo's ledger holds, so the plan reads it, and refuses the same way.
    write_pair(
        &fx,
        "20250101000015_create_notes",
        "CREATE TABLE notes (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, PRIMARY KEY (tenant_id, id));",
        Some("DROP TABLE notes;"),
    );
    let err = down(&fx, tenants.clone(), RevertTarget::To(20250101000008))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::DownMissing { tenant, version: 20250101000020, .. } if tenant == "bravo"),
        "{err}"
    );
    unchanged().await;

    // Without bravo, every version to revert has its down file.
    let others: Vec<Tenant> = tenants
        .iter()
        .filter(|t| t.slug.as_str() != "bravo")
        .cloned()
        .collect();
    let report = down(&fx, others.clone(), RevertTarget::To(20250101000008))
        .await
        .expect("down");
    assert_eq!(report.reverted(), others.len(), "{report:?}");
    assert_eq!(fx.tenant("bravo").await.version, 20250101000020);
    fx.cleanup().await;
}

async fn targets_above_a_tenant_or_outside_the_set_are_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(&fx, BUDGET, BUDGET_UP, Some(BUDGET_DOWN));
    migrate_all(&fx).await;
    // 10 is in the set but applied nowhere.
    write_pair(&fx, TAGS, TAGS_UP, Some(TAGS_DOWN));

    let err = down(&fx, tenants.clone(), RevertTarget::To(20250101000010))
        .await
        .expect_err("above");
    assert!(
        matches!(&err, Error::RevertTargetAbove { tenant, version: 20250101000009, target: 20250101000010 }
            if tenant == "alpha"),
        "{err}"
    );
    let err = down(&fx, tenants.clone(), RevertTarget::To(20250101000042))
        .await
        .expect_err("unknown");
    assert!(
        matches!(
            &err,
            Error::RevertTargetUnknown {
                target: 20250101000042,
                ..
            }
        ),
        "{err}"
    );
    // Steps past the versions with down files: 8 has none.
    let err = down(&fx, tenants.clone(), RevertTarget::Steps(2))
        .await
        .expect_err("8 has no down file");
    assert!(
        matches!(&err, Error::DownMissing { tenant, version: 20250101000008, .. } if tenant == "alpha"),
        "{err}"
    );

    // At the target already: current, nothing recorded.
    let report = down(&fx, tenants.clone(), RevertTarget::To(20250101000009))
        .await
        .expect("current");
    assert_eq!(report.current(), tenants.len(), "{report:?}");
    for t in &tenants {
        assert!(matches!(
            outcome(&report, t.slug.as_str()),
            Outcome::Current {
                version: 20250101000009
            }
        ));
        let now = fx.tenant(t.slug.as_str()).await;
        assert_eq!(now.version, 20250101000009);
        assert!(down_event(&fx, &now).await.is_none());
    }

    // A tenant that is not live is skipped, as by `migrate`.
    fx.write_migration("20250101000011_broken.sql", "SELEC 1;");
    fx.create("broken").await.expect_err("fails");
    std::fs::remove_file(fx.migrations_dir().join("20250101000011_broken.sql")).expect("rm");
    let broken = fx.tenant("broken").await;
    assert_eq!(broken.status, Status::Failed);
    let report = down(&fx, vec![broken], RevertTarget::Steps(1))
        .await
        .expect("skipped");
    assert!(
        matches!(outcome(&report, "broken"), Outcome::Skipped { .. }),
        "{report:?}"
    );
    fx.cleanup().await;
}

async fn a_failing_down_script_is_rolled_back_whole_and_the_others_are_reverted(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(
        &fx,
        BUDGET,
        &format!("{TAGS_UP}\n{BUDGET_UP}"),
        Some(&format!("{TAGS_DOWN}\n{BUDGET_DOWN}")),
    );
    migrate_all(&fx).await;
    // bravo's column was renamed behind Tenantry's back: its down script fails at line 2,
    // after its first statement dropped the table.
    let bravo = fx.tenant("bravo").await;
    fx.execute(
        &bravo,
        "ALTER TABLE campaigns RENAME COLUMN budget_cents TO budget",
    )
    .await;

    let report = down(&fx, tenants.clone(), RevertTarget::Steps(1))
        .await
        .expect("down");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let (slug, error) = failed[0];
    assert_eq!(slug, "bravo");
    assert!(
        error.contains("\"bravo\"")
            && error.contains("20250101000009")
            && error.contains(&format!("{BUDGET}.down.sql")),
        "{error}"
    );
    assert!(matches!(
        outcome(&report, "bravo"),
        Outcome::Failed {
            version: 20250101000009,
            ..
        }
    ));

    // bravo is wholly at 9: the table its first statement dropped is back, its ledger row too.
    let bravo = fx.tenant("bravo").await;
    assert_eq!(bravo.status, Status::Active);
    assert_eq!(bravo.version, 20250101000009);
    assert!(
        bravo
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(".down.sql")),
        "{:?}",
        bravo.last_error
    );
    assert!(fx.tables(&bravo).await.contains("tags"), "rolled back");
    assert_eq!(
        versions(&fx, &bravo).await,
        (20250101000001..=20250101000009).collect::<Vec<_>>()
    );
    let (outcome_text, _) = down_event(&fx, &bravo).await.expect("an event");
    assert_eq!(outcome_text, "failed");

    for t in tenants.iter().filter(|t| t.slug.as_str() != "bravo") {
        let slug = t.slug.as_str();
        assert!(
            matches!(
                outcome(&report, slug),
                Outcome::Reverted {
                    to: 20250101000008,
                    ..
                }
            ),
            "{slug}: {report:?}"
        );
        let now = fx.tenant(slug).await;
        assert_eq!(now.version, 20250101000008, "{slug}");
        assert!(!fx.tables(&now).await.contains("tags"), "{slug}");
        assert!(!has_budget(&fx, &now).await, "{slug}");
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_down_script_on_mysql_leaves_the_row_dirty_with_its_statement() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(
        &fx,
        BUDGET,
        &format!("{TAGS_UP}\n{BUDGET_UP}"),
        Some(&format!("{TAGS_DOWN}\n{BUDGET_DOWN}")),
    );
    migrate_all(&fx).await;
    let alpha = fx.tenant("alpha").await;
    fx.execute(
        &alpha,
        "ALTER TABLE campaigns RENAME COLUMN budget_cents TO budget",
    )
    .await;

    let report = down(&fx, tenants, RevertTarget::Steps(1))
        .await
        .expect("down");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let (slug, error) = failed[0];
    assert_eq!(slug, "alpha");
    assert!(
        error.contains(&format!("{BUDGET}.down.sql:2"))
            && error.contains("ALTER TABLE campaigns DROP COLUMN budget_cents")
            && error.contains("dirty")
            && error.contains("migrate resolve alpha 20250101000009"),
        "{error}"
    );
    assert!(
        matches!(
            outcome(&report, "bravo"),
            Outcome::Reverted {
                to: 20250101000008,
                ..
            }
        ),
        "{report:?}"
    );

    // The first statement ran; the row says where it stopped.
    let ledger = fx.ledger(&alpha).await;
    let row = ledger
        .iter()
        .find(|r| r.version == 20250101000009)
        .expect("the row stays");
    assert_eq!(row.state, "dirty");
    assert_eq!(
        row.failed_statement.as_deref(),
        Some("ALTER TABLE campaigns DROP COLUMN budget_cents")
    );
    assert!(!fx.tables(&alpha).await.contains("tags"));
    let alpha_now = fx.tenant("alpha").await;
    assert_eq!(alpha_now.status, Status::Active);
    assert_eq!(alpha_now.version, 20250101000008);
    assert_eq!(alpha_now.dirty_version, Some(20250101000009));
    assert!(alpha_now.last_error.is_some());

    // Both directions refuse until an operator has looked.
    let report = down(&fx, vec![alpha_now.clone()], RevertTarget::Steps(1))
        .await
        .expect("runs");
    let (_, error) = report.failed().next().expect("refused");
    assert!(error.contains("stopped halfway"), "{error}");
    let set = fx.tenantry.migrations().expect("migrations");
    let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
    assert!(!report.is_success());

    // The operator finishes the revert by hand and forgets the row; a rollout applies 9
    // again.
    fx.execute(&alpha, "ALTER TABLE campaigns DROP COLUMN budget")
        .await;
    fx.tenantry
        .resolve_dirty("alpha", 20250101000009, false)
        .await
        .expect("resolve");
    assert_eq!(fx.tenant("alpha").await.version, 20250101000008);
    migrate_all(&fx).await;
    let alpha_now = fx.tenant("alpha").await;
    assert_eq!(alpha_now.version, 20250101000009);
    assert!(has_budget(&fx, &alpha_now).await);
    assert!(fx.tables(&alpha_now).await.contains("tags"));
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_tenant_is_reverted_only_with_every_live_tenant_of_its_pool() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let tenants = fleet(&fx).await;
    write_pair(&fx, TAGS, TAGS_UP, Some(TAGS_DOWN));
    migrate_all(&fx).await;
    let shared_a = fx.tenant("shared-a").await;
    let before = fx.ledger(&shared_a).await.len();

    let err = down(&fx, vec![shared_a.clone()], RevertTarget::Steps(1))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::SharedPoolPartial { server, missing }
            if server == "pg" && missing == &["shared-b".to_owned()]),
        "{err}"
    );
    assert!(err.to_string().contains("\"pg\""), "{err}");
    assert_eq!(fx.ledger(&shared_a).await.len(), before);
    assert!(fx.tables(&shared_a).await.contains("tags"));

    // Together they go back, their pool once.
    let pair: Vec<Tenant> = tenants
        .iter()
        .filter(|t| t.strategy == Strategy::Shared)
        .cloned()
        .collect();
    let report = down(&fx, pair, RevertTarget::Steps(1)).await.expect("down");
    assert_eq!(report.reverted(), 2, "{report:?}");
    assert!(!fx.tables(&shared_a).await.contains("tags"));
    assert_eq!(fx.ledger(&shared_a).await.len(), before - 1);
    for slug in ["shared-a", "shared-b"] {
        assert_eq!(fx.tenant(slug).await.version, 20250101000008, "{slug}");
    }
    assert_eq!(fx.tenant("alpha").await.version, 20250101000010);
    fx.cleanup().await;
}
