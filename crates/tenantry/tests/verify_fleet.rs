//! `migrate verify`: every ledger checked against the set and every schema compared with a
//! reference of the same engine and strategy, so a change made behind Tenantry's back is
//! reported with exactly what drifted, on that tenant only.

use tenantry::migrate::drift::{Change, Object};
use tenantry::migrate::{MigrationState, Selection, Verdict, VerifyReport, VerifyRequest};
use tenantry::{Error, Strategy};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    a_fresh_fleet_verifies_clean,
    a_schema_changed_behind_tenantrys_back_is_reported_with_its_drift,
    an_edited_ledger_checksum_is_reported_for_that_tenant_only,
);

async fn verify(fx: &Fixture, tenants: Selection, reference: Option<&str>) -> VerifyReport {
    let set = fx.tenantry.migrations().expect("migrations");
    let request = VerifyRequest {
        tenants,
        reference: reference.map(str::to_owned),
    };
    fx.tenantry
        .verify_migrations(&set, &request)
        .await
        .expect("verify")
}

/// The verdict on a unit, by name.
fn verdict<'a>(report: &'a VerifyReport, unit: &str) -> &'a Verdict {
    &report
        .units
        .iter()
        .find(|u| u.unit == unit)
        .unwrap_or_else(|| panic!("{unit} is not in {report:#?}"))
        .verdict
}

fn assert_clean(report: &VerifyReport, unit: &str, reference: &str) {
    match verdict(report, unit) {
        Verdict::Clean { reference: r } => assert_eq!(r.as_deref(), Some(reference)),
        other => panic!("{unit}: {other:#?}"),
    }
}

async fn a_fresh_fleet_verifies_clean(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo", "charlie"] {
        fx.create(slug).await.expect("create");
    }
    let report = verify(&fx, Selection::All, None).await;
    assert_eq!(report.latest, 20250101000008);
    assert_eq!(report.units.len(), 3);
    let units: Vec<&str> = report.units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(units, ["alpha", "bravo", "charlie"], "in catalog order");
    for unit in units {
        assert_clean(&report, unit, "alpha");
    }
    assert!(report.is_clean());
    assert_eq!(report.clean(), 3);
    fx.cleanup().await;
}

async fn a_schema_changed_behind_tenantrys_back_is_reported_with_its_drift(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo", "charlie"] {
        fx.create(slug).await.expect("create");
    }
    let bravo = fx.tenant("bravo").await;
    fx.execute(&bravo, "ALTER TABLE campaigns ADD COLUMN sneaky INTEGER")
        .await;
    let drop_index = match backend {
        Backend::Mysql => "DROP INDEX campaigns_status ON campaigns",
        Backend::Sqlite | Backend::Postgres => "DROP INDEX campaigns_status",
    };
    fx.execute(&bravo, drop_index).await;

    let report = verify(&fx, Selection::All, None).await;
    assert!(!report.is_clean());
    assert_eq!((report.clean(), report.drifted()), (2, 1));
    assert_clean(&report, "alpha", "alpha");
    assert_clean(&report, "charlie", "alpha");
    let Verdict::Drifted {
        reference,
        ledger,
        schema,
    } = verdict(&report, "bravo")
    else {
        panic!("bravo: {report:#?}");
    };
    assert_eq!(reference.as_deref(), Some("alpha"));
    assert!(ledger.is_empty(), "{ledger:?}");
    let drift: Vec<(&str, Object, &str, Change)> = schema
        .iter()
        .map(|d| (d.table.as_str(), d.object, d.name.as_str(), d.change))
        .collect();
    assert_eq!(
        drift,
        [
            ("campaigns", Object::Column, "sneaky", Change::Extra),
            (
                "campaigns",
                Object::Index,
                "campaigns_status",
                Change::Missing
            ),
        ]
    );
    let index = &schema[1];
    assert_eq!(index.expected.as_deref(), Some("(tenant_id, status)"));

    // Named as the reference, bravo makes the others drift the other way round.
    let report = verify(
        &fx,
        Selection::Slugs(vec!["charlie".into(), "bravo".into()]),
        Some("bravo"),
    )
    .await;
    let units: Vec<&str> = report.units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(units, ["charlie", "bravo"], "in the order asked");
    assert_clean(&report, "bravo", "bravo");
    let Verdict::Drifted { schema, .. } = verdict(&report, "charlie") else {
        panic!("charlie: {report:#?}");
    };
    let changes: Vec<(&str, Change)> = schema.iter().map(|d| (d.name.as_str(), d.change)).collect();
    assert_eq!(
        changes,
        [
            ("sneaky", Change::Missing),
            ("campaigns_status", Change::Extra)
        ]
    );

    let set = fx.tenantry.migrations().expect("migrations");
    let unknown = VerifyRequest {
        tenants: Selection::All,
        reference: Some("nobody".into()),
    };
    let err = fx
        .tenantry
        .verify_migrations(&set, &unknown)
        .await
        .expect_err("unknown reference");
    assert!(
        matches!(err, Error::TenantNotFound { ref slug } if slug == "nobody"),
        "{err}"
    );
    fx.cleanup().await;
}

async fn an_edited_ledger_checksum_is_reported_for_that_tenant_only(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["alpha", "bravo"] {
        fx.create(slug).await.expect("create");
    }
    let bravo = fx.tenant("bravo").await;
    fx.execute(
        &bravo,
        "UPDATE _tenantry_migrations SET checksum = 'edited' WHERE version = 20250101000003",
    )
    .await;
    let report = verify(&fx, Selection::All, None).await;
    assert_clean(&report, "alpha", "alpha");
    let Verdict::Drifted { ledger, schema, .. } = verdict(&report, "bravo") else {
        panic!("bravo: {report:#?}");
    };
    assert!(schema.is_empty(), "{schema:?}");
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].version, 20250101000003);
    assert_eq!(ledger[0].state, MigrationState::ChangedFile);
    assert!(
        ledger[0].detail.contains("\"bravo\"") && ledger[0].detail.contains("20250101000003"),
        "{}",
        ledger[0].detail
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_compared_with_their_own_strategy_and_the_shared_pool_once() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    fx.create_with("own-db", Strategy::Database)
        .await
        .expect("database");
    for slug in ["schema-a", "schema-b"] {
        fx.create_with(slug, Strategy::Schema)
            .await
            .expect("schema");
    }
    for slug in ["shared-a", "shared-b"] {
        fx.create_with(slug, Strategy::Shared)
            .await
            .expect("shared");
    }
    let report = verify(&fx, Selection::All, None).await;
    let units: Vec<&str> = report.units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(
        units,
        ["own-db", "schema-a", "schema-b", "shared pool on pg"]
    );
    assert_clean(&report, "own-db", "own-db");
    assert_clean(&report, "schema-a", "schema-a");
    assert_clean(&report, "schema-b", "schema-a");
    assert_clean(&report, "shared pool on pg", "shared-a");
    let pool = report.units.last().expect("pool");
    assert_eq!(pool.tenants, ["shared-a", "shared-b"]);

    // A change inside one tenant's schema is that tenant's drift only.
    let schema_b = fx.tenant("schema-b").await;
    fx.execute(
        &schema_b,
        "ALTER TABLE documents ALTER COLUMN mime_type SET NOT NULL",
    )
    .await;
    let report = verify(&fx, Selection::All, None).await;
    assert_eq!(report.drifted(), 1, "{report:#?}");
    let Verdict::Drifted { schema, .. } = verdict(&report, "schema-b") else {
        panic!("schema-b: {report:#?}");
    };
    assert_eq!(schema.len(), 1, "{schema:?}");
    assert_eq!(schema[0].object, Object::Column);
    assert_eq!(schema[0].name, "mime_type");
    assert_eq!(schema[0].change, Change::Different);
    assert_eq!(
        schema[0].expected.as_deref(),
        Some("character varying(128) NULL")
    );
    assert_eq!(
        schema[0].found.as_deref(),
        Some("character varying(128) NOT NULL")
    );

    // Named as the reference, a database tenant serves every PostgreSQL unit.
    let report = verify(&fx, Selection::All, Some("own-db")).await;
    assert_clean(&report, "schema-a", "own-db");
    assert_clean(&report, "shared pool on pg", "own-db");
    assert_eq!(report.drifted(), 1, "{report:#?}");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_is_not_live_is_skipped_and_a_missing_one_refused() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    fx.create("alpha").await.expect("create");
    fx.write_migration("20250101000009_broken.sql", "SELEC 1;");
    fx.create("broken").await.expect_err("fails");
    std::fs::remove_file(fx.migrations_dir().join("20250101000009_broken.sql")).expect("remove");
    let report = verify(&fx, Selection::All, None).await;
    assert_clean(&report, "alpha", "alpha");
    assert!(
        matches!(verdict(&report, "broken"), Verdict::Skipped { reason } if reason.contains("tenant repair broken")),
        "{report:#?}"
    );
    assert!(report.is_clean(), "skipped is not drift");

    // Named, a deleted tenant is reported as such.
    fx.tenantry
        .delete_tenant("broken", false)
        .await
        .expect("delete");
    let report = verify(&fx, Selection::Slugs(vec!["broken".into()]), None).await;
    assert!(
        matches!(verdict(&report, "broken"), Verdict::Skipped { reason } if reason == "tenant is deleted; its storage was dropped"),
        "{report:#?}"
    );

    let set = fx.tenantry.migrations().expect("migrations");
    let request = VerifyRequest {
        tenants: Selection::Slugs(vec!["alpha".into(), "nobody".into()]),
        reference: None,
    };
    let err = fx
        .tenantry
        .verify_migrations(&set, &request)
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, Error::TenantNotFound { ref slug } if slug == "nobody"),
        "{err}"
    );
    fx.cleanup().await;
}
