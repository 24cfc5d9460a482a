//! The audit chain: every change appended with its actor; an entry edited, deleted, moved or
//! slipped in directly in the catalog database is named by `verify_audit` with its position;
//! concurrent writers in several handles keep one unbroken chain; a purge erases the
//! tenant's slug and details from its entries, keeping ids, and the chain still verifies.
//! Every catalog engine.

use tenantry::audit::{Break, act_as};
use tenantry::{NewApiKey, Scope, Settings};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    changes_are_chained_with_their_actors,
    an_edited_entry_is_named,
    a_deleted_entry_is_named,
    a_moved_entry_is_named,
    a_deleted_tail_is_named,
    a_row_slipped_in_is_named,
    concurrent_writers_keep_one_chain,
    a_purge_erases_the_tenants_fields_and_the_chain_holds,
    an_erased_entry_given_fields_again_is_named,
    an_entry_erased_without_a_purge_is_named,
    a_catalog_a_newer_tenantry_migrated_is_refused
);

/// A fixture whose chain ends with four entries: two tenant creations (started, ok), after
/// the fixture's own (a server registered, on PostgreSQL and MySQL).
async fn seeded(backend: Backend) -> Option<Fixture> {
    let fx = Fixture::new(backend).await?;
    let t = &fx.tenantry;
    let before = t.catalog().audit_head().await.expect("head").0;
    let expected_before = match backend {
        Backend::Sqlite => 0,
        _ => 1,
    };
    assert_eq!(before, expected_before, "the fixture's server.add");
    // Start the chain afresh for the positions below: the fixture's entries are its own.
    if before > 0 {
        fx.catalog_sql("DELETE FROM tenantry_events").await;
        fx.catalog_sql(&format!(
            "UPDATE tenantry_audit_head SET seq = 0, hash = '{}' WHERE id = 1",
            tenantry::catalog::GENESIS
        ))
        .await;
    }
    for slug in ["acme", "globex"] {
        fx.create(slug).await.expect("create");
    }
    let head = t.catalog().audit_head().await.expect("head").0;
    assert_eq!(head, 4, "two creations: started and ok each");
    let report = t.verify_audit().await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    Some(fx)
}

async fn broken_at(fx: Fixture, kind: Break, position: i64) {
    let report = fx.tenantry.verify_audit().await.expect("verify");
    let found = report.first_break.clone().expect("a break");
    assert_eq!((found.kind, found.position), (kind, position), "{report:?}");
    assert_eq!(report.checked, position - 1);
    fx.cleanup().await;
}

async fn changes_are_chained_with_their_actors(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    act_as("key:deployer", async {
        t.create_api_key(NewApiKey {
            name: "ops".into(),
            scopes: vec![Scope::TenantsRead],
            tenant: Some("acme".into()),
        })
        .await
        .expect("create key");
    })
    .await;
    t.revoke_api_key("ops").await.expect("revoke");
    let entries = t
        .catalog()
        .audit_page(&Default::default(), 0, 100)
        .await
        .expect("read");
    let seqs: Vec<i64> = entries.iter().filter_map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "each entry links to the one before"
        );
    }
    let create = &entries[4];
    assert_eq!(create.action, "apikey.create");
    assert_eq!(create.actor.as_deref(), Some("key:deployer"));
    assert_eq!(create.target.as_deref(), Some("apikey:ops"));
    assert_eq!(entries[5].action, "apikey.revoke");
    assert_eq!(entries[5].actor.as_deref(), Some("system"));
    assert_eq!(entries[0].target.as_deref(), Some("tenant:acme"));
    let report = t.verify_audit().await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.checked, report.head_seq), (6, 6));
    fx.cleanup().await;
}

async fn an_edited_entry_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    let changed = fx
        .catalog_sql("UPDATE tenantry_events SET detail = 'nothing to see' WHERE seq = 2")
        .await;
    assert_eq!(changed, 1);
    broken_at(fx, Break::Edited, 2).await;
}

async fn a_deleted_entry_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    assert_eq!(
        fx.catalog_sql("DELETE FROM tenantry_events WHERE seq = 3")
            .await,
        1
    );
    broken_at(fx, Break::Deleted, 3).await;
}

async fn a_moved_entry_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    // Swap the positions of entries 2 and 3.
    fx.catalog_sql("UPDATE tenantry_events SET seq = 1000 WHERE seq = 2")
        .await;
    fx.catalog_sql("UPDATE tenantry_events SET seq = 2 WHERE seq = 3")
        .await;
    fx.catalog_sql("UPDATE tenantry_events SET seq = 3 WHERE seq = 1000")
        .await;
    broken_at(fx, Break::Reordered, 2).await;
}

async fn a_deleted_tail_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    assert_eq!(
        fx.catalog_sql("DELETE FROM tenantry_events WHERE seq = 4")
            .await,
        1
    );
    broken_at(fx, Break::TailDeleted, 4).await;
}

async fn a_row_slipped_in_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    fx.catalog_sql(
        "INSERT INTO tenantry_events (id, at, action, outcome) \
         VALUES ('01ZZZZZZZZZZZZZZZZZZZZZZZZ', '2026-01-01T00:00:00.000Z', 'tenant.delete', 'ok')",
    )
    .await;
    broken_at(fx, Break::Unchained, 5).await;
}

/// Three handles on one catalog (as three processes would be), appending at once.
async fn concurrent_writers_keep_one_chain(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    const WRITERS: usize = 3;
    const EACH: usize = 12;
    let mut handles = vec![fx.tenantry.clone()];
    for _ in 1..WRITERS {
        handles.push(fx.reopen(Settings::default()).await);
    }
    let mut tasks = Vec::new();
    for (w, t) in handles.into_iter().enumerate() {
        for half in 0..2 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH / 2 {
                    t.create_api_key(NewApiKey {
                        name: format!("k{w}-{half}-{i}"),
                        scopes: vec![Scope::AuditRead],
                        tenant: None,
                    })
                    .await
                    .expect("create key");
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let report = fx.tenantry.verify_audit().await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    let total = (4 + WRITERS * EACH) as i64;
    assert_eq!((report.checked, report.head_seq), (total, total));
    fx.cleanup().await;
}

/// The entries still carrying `needle` in a personal field.
async fn naming(fx: &Fixture, needle: &str) -> i64 {
    fx.catalog_count(&format!(
        "SELECT COUNT(*) FROM tenantry_events WHERE tenant_slug LIKE '%{needle}%' \
         OR target LIKE '%{needle}%' OR detail LIKE '%{needle}%' OR error LIKE '%{needle}%'"
    ))
    .await
}

async fn a_purge_erases_the_tenants_fields_and_the_chain_holds(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    let acme = fx.tenant("acme").await;
    t.suspend_tenant("acme").await.expect("suspend");
    assert!(naming(&fx, "acme").await >= 3, "its entries name it");
    t.delete_tenant("acme", true).await.expect("purge");

    assert_eq!(naming(&fx, "acme").await, 0, "no entry names it any more");
    let entries = t
        .catalog()
        .audit_page(&Default::default(), 0, 100)
        .await
        .expect("read");
    let of_acme: Vec<_> = entries
        .iter()
        .filter(|e| e.tenant_id.as_deref() == Some(acme.id.to_string().as_str()))
        .collect();
    // create (started, ok), suspend, delete (started, ok), erased; then the purge's own
    // entry, written after them with the id alone.
    let Some((purge, before)) = of_acme.split_last() else {
        panic!("no entries of acme");
    };
    assert_eq!(before.len(), 5, "{before:?}");
    for entry in before {
        assert!(entry.is_erased(), "{entry:?}");
        assert!(entry.seal.is_some() && entry.hash.is_some());
    }
    assert_eq!(
        (purge.action.as_str(), purge.outcome.as_str()),
        ("tenant.purge", "ok")
    );
    assert_eq!((&purge.tenant, &purge.target), (&None, &None));
    assert_eq!(
        purge.detail.as_deref(),
        Some("nothing of it remains; 5 audit entries erased to ids")
    );
    // globex's entries are untouched.
    let globex = entries
        .iter()
        .filter(|e| e.tenant.as_deref() == Some("globex"))
        .count();
    assert_eq!(globex, 2);
    let report = t.verify_audit().await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.checked, report.head_seq);
    assert_eq!(report.erased, 5);
    fx.cleanup().await;
}

async fn an_erased_entry_given_fields_again_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    fx.tenantry
        .delete_tenant("acme", true)
        .await
        .expect("purge");
    assert!(fx.tenantry.verify_audit().await.expect("verify").is_valid());
    // Entry 1 is acme's creation, erased: writing a slug back breaks its seal.
    let changed = fx
        .catalog_sql("UPDATE tenantry_events SET tenant_slug = 'initech' WHERE seq = 1")
        .await;
    assert_eq!(changed, 1);
    broken_at(fx, Break::Edited, 1).await;
}

async fn an_entry_erased_without_a_purge_is_named(backend: Backend) {
    let Some(fx) = seeded(backend).await else {
        return;
    };
    // Entry 3 is globex's creation: globex is live, so its fields may not be gone.
    let changed = fx
        .catalog_sql(
            "UPDATE tenantry_events SET tenant_slug = NULL, target = NULL, detail = NULL, \
             error = NULL, seal_salt = NULL WHERE seq = 3",
        )
        .await;
    assert_eq!(changed, 1);
    broken_at(fx, Break::Edited, 3).await;
}

/// An older Tenantry would misread sealed entries (and erase nothing on a purge): it refuses
/// a catalog migrated past what it knows.
async fn a_catalog_a_newer_tenantry_migrated_is_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.catalog_sql(
        "INSERT INTO tenantry_catalog_migrations (version, description, applied_at) \
         VALUES (999, 'from the future', '2030-01-01T00:00:00.000Z')",
    )
    .await;
    let settings = Settings {
        data_dir: Some(fx.data_dir()),
        migrations: Some(fx.migrations_dir()),
        catalog: fx.catalog_url.clone(),
        ..Settings::default()
    };
    let Err(err) = tenantry::Tenantry::open(settings.resolve()).await else {
        panic!("a catalog a newer Tenantry migrated was opened");
    };
    assert!(
        matches!(err, tenantry::Error::CatalogNewer { found: 999, .. }),
        "{err}"
    );
    fx.catalog_sql("DELETE FROM tenantry_catalog_migrations WHERE version = 999")
        .await;
    fx.cleanup().await;
}
