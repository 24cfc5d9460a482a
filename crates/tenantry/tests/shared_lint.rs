//! The shared-pool key lint: a migration that leaves a key on a tenant table not led by the
//! tenant column fails, names the table and the constraint, spells out the fix, and is
//! rolled back. It closes at their root the doors that row-level security leaves open: an
//! index scan visiting another tenant's rows (`EXPLAIN ANALYZE` with range conditions), a
//! unique key that tells whether another tenant has a value, a foreign key that pins
//! another tenant's row.

use tenantry::{Error, Settings, Strategy};
use tenantry_testkit::{Backend, Fixture};

const VERSION: i64 = 20250101000009;
const FILE: &str = "20250101000009_lint.sql";

/// One refused migration: its SQL, and what the error must name.
struct Case {
    sql: &'static str,
    table: &'static str,
    constraint: &'static str,
    fix: &'static str,
}

const REFUSED: &[Case] = &[
    Case {
        sql: "CREATE TABLE contacts (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
              email TEXT, PRIMARY KEY (tenant_id, id));\n\
              CREATE UNIQUE INDEX contacts_email ON contacts (email);",
        table: "contacts",
        constraint: "contacts_email",
        fix: "create it as UNIQUE INDEX ON contacts (tenant_id, email)",
    },
    Case {
        sql: "CREATE TABLE contacts (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
              email TEXT UNIQUE, PRIMARY KEY (tenant_id, id));",
        table: "contacts",
        constraint: "contacts_email_key",
        fix: "declare it UNIQUE (tenant_id, email)",
    },
    Case {
        sql: "CREATE TABLE notes (id VARCHAR(26) PRIMARY KEY, tenant_id VARCHAR(26) NOT NULL);",
        table: "notes",
        constraint: "notes_pkey",
        fix: "declare it PRIMARY KEY (tenant_id, id)",
    },
    Case {
        sql: "CREATE INDEX campaigns_by_name ON campaigns (name);",
        table: "campaigns",
        constraint: "campaigns_by_name",
        fix: "create it as INDEX ON campaigns (tenant_id, name)",
    },
    Case {
        sql: "CREATE INDEX campaigns_by_name ON campaigns (name, tenant_id);",
        table: "campaigns",
        constraint: "campaigns_by_name",
        fix: "create it as INDEX ON campaigns (tenant_id, name)",
    },
    Case {
        sql: "CREATE TABLE tags (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
              campaign_id VARCHAR(26) NOT NULL, PRIMARY KEY (tenant_id, id), \
              CONSTRAINT tags_campaign FOREIGN KEY (campaign_id, tenant_id) \
              REFERENCES campaigns (tenant_id, id));",
        table: "tags",
        constraint: "tags_campaign",
        fix: "declare it FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id)",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_do_not_lead_with_the_tenant_column_are_refused() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let shared = fx
        .create_with("shared-a", Strategy::Shared)
        .await
        .expect("the example set passes the lint");
    for case in REFUSED {
        fx.write_migration(FILE, case.sql);
        let set = fx.tenantry.migrations().expect("migrations");
        let report = fx.tenantry.migrate_all(&set, &|_| {}).await.expect("run");
        let failed: Vec<_> = report.failed().collect();
        assert_eq!(failed.len(), 1, "{}: {report:?}", case.sql);
        let error = failed[0].1;
        for needle in [case.table, case.constraint, case.fix] {
            assert!(
                error.contains(needle),
                "{}: {error:?} lacks {needle:?}",
                case.sql
            );
        }
        assert_eq!(
            fx.tenant("shared-a").await.version,
            VERSION - 1,
            "{}: the pool stays at its version",
            case.sql
        );
        let tables = fx.tables(&shared).await;
        assert!(
            !tables.contains("contacts") && !tables.contains("notes") && !tables.contains("tags"),
            "{}: rolled back: {tables:?}",
            case.sql
        );
    }
    // The library reports the lint as its own error, for a tenant created meanwhile too.
    fx.write_migration(FILE, REFUSED[0].sql);
    let err = fx
        .create_with("shared-b", Strategy::Shared)
        .await
        .expect_err("refused");
    let Error::MigrationRefused {
        version, reason, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*version, VERSION);
    assert!(
        matches!(**reason, Error::SharedKeyLint { .. }),
        "{reason:?}"
    );
    assert!(err.to_string().contains("contacts_email"), "{err}");
    fx.cleanup().await;
}

/// Keys led by the tenant column pass, and so does a foreign key to a global table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_led_by_the_tenant_column_and_references_to_global_tables_pass() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let tenantry = fx
        .reopen(Settings {
            shared_global_tables: Some(vec!["countries".into()]),
            ..Settings::default()
        })
        .await;
    fx.write_migration(
        FILE,
        "CREATE TABLE countries (code VARCHAR(2) PRIMARY KEY);\n\
         CREATE TABLE contacts (tenant_id VARCHAR(26) NOT NULL, id VARCHAR(26) NOT NULL, \
           email TEXT, country VARCHAR(2) REFERENCES countries (code), \
           campaign_id VARCHAR(26), PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email), \
           FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id));\n\
         CREATE INDEX contacts_by_country ON contacts (tenant_id, country);",
    );
    let t = tenantry
        .create_tenant(tenantry::NewTenant {
            slug: "shared-a".into(),
            server: Some(fx.server.clone()),
            strategy: Some(Strategy::Shared),
            ..Default::default()
        })
        .await
        .expect("passes the lint");
    assert_eq!(t.version, VERSION);
    fx.cleanup().await;
}
