//! The catalog lists tenants a page at a time: across several pages every tenant comes back
//! exactly once, in id order, and a rollout planned over them covers each one. Every catalog
//! engine.

use std::collections::BTreeSet;

use tenantry::catalog::{Status, Tenant};
use tenantry::{Selection, TenantId};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(every_tenant_is_listed_once_across_pages);

/// More than two pages of 500.
const ROWS: usize = 1_234;

async fn every_tenant_is_listed_once_across_pages(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    let real = fx.create("real").await.expect("create");
    // Rows only (deleted tenants have no storage), on the same server.
    let mut inserted = BTreeSet::from([real.id.to_string()]);
    for i in 0..ROWS {
        let id = TenantId::generate();
        let row = Tenant {
            id,
            slug: tenantry::Slug::new(&format!("gone-{i}")).expect("slug"),
            name: format!("gone {i}"),
            status: Status::Deleted,
            storage: id.storage_name(),
            role: None,
            role_secret: None,
            version: 0,
            last_error: None,
            ledger_digest: None,
            dirty_version: None,
            deleted_at: Some(real.created_at.clone()),
            ..real.clone()
        };
        t.catalog().insert_tenant(&row).await.expect("insert");
        inserted.insert(id.to_string());
    }
    let listed: Vec<String> = t
        .catalog()
        .tenants()
        .await
        .expect("list")
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(listed.len(), ROWS + 1, "each tenant once");
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), inserted);
    // A rollout over all of them plans the one tenant that is not deleted.
    let set = t.migrations().expect("set");
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &Default::default(), "test")
        .await
        .expect("plan");
    let items = t.catalog().rollout_items(&id).await.expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].tenant.as_deref(), Some("real"));
    fx.cleanup().await;
}
