//! Tenant secrets on every catalog engine: sealed, listed by name only, never written to the
//! audit log, handed only to the tenant's own context while it is active, gone with the
//! tenant; bad names and values refused with nothing stored.

use tenantry::catalog::AuditFilter;
use tenantry::{Error, Status};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(secrets_reach_only_their_tenant);

const VALUE_A: &str = "sk_live_a-secret-value-of-acme";

async fn secrets_reach_only_their_tenant(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    let a = fx.create("acme").await.expect("create");
    fx.create("globex").await.expect("create");
    t.set_secret("acme", "STRIPE_KEY", VALUE_A)
        .await
        .expect("set");
    t.set_secret("acme", "webhook.key", "whsec-1")
        .await
        .expect("set");
    t.set_secret("acme", "webhook.key", "whsec-2")
        .await
        .expect("replace");
    t.set_secret("globex", "STRIPE_KEY", "sk_live_globex")
        .await
        .expect("set");

    let names: Vec<String> = t
        .secret_names("acme")
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["STRIPE_KEY", "webhook.key"]);

    // Only acme's context gets acme's values.
    let pool = t.tenant_pool("acme").await.expect("pool");
    let secrets = t.tenant_secrets(&pool).await.expect("secrets");
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets["STRIPE_KEY"], VALUE_A);
    assert_eq!(secrets["webhook.key"], "whsec-2");
    let other = t.tenant_pool("globex").await.expect("pool");
    assert_eq!(
        t.tenant_secrets(&other).await.expect("secrets")["STRIPE_KEY"],
        "sk_live_globex"
    );

    // Never stored or logged in the clear.
    let audit = t
        .catalog()
        .audit_page(&AuditFilter::default(), 0, 1000)
        .await
        .expect("audit");
    let text = serde_json::to_string(&audit).expect("json");
    assert!(text.contains("secret.set") && !text.contains(VALUE_A) && !text.contains("whsec"));
    let sealed_rows = fx
        .catalog_sql(&format!(
            "UPDATE tenantry_secrets SET name = name WHERE sealed = '{VALUE_A}'"
        ))
        .await;
    assert_eq!(sealed_rows, 0, "no value is stored as given");

    // Bad input: refused, nothing stored.
    for (name, value, field) in [
        ("bad name", "x", "name"),
        ("", "x", "name"),
        ("EMPTY", "", "value"),
    ] {
        match t.set_secret("acme", name, value).await {
            Err(Error::InvalidSecret { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    assert_eq!(t.secret_names("acme").await.expect("list").len(), 2);
    assert!(matches!(
        t.remove_secret("acme", "NOPE").await,
        Err(Error::SecretNotFound { .. })
    ));

    // A suspended tenant's context gets nothing.
    t.suspend_tenant("acme").await.expect("suspend");
    assert!(matches!(
        t.tenant_secrets(&pool).await,
        Err(Error::InvalidTransition {
            status: Status::Suspended,
            ..
        })
    ));
    t.resume_tenant("acme").await.expect("resume");

    t.remove_secret("acme", "webhook.key")
        .await
        .expect("remove");
    assert_eq!(t.secret_names("acme").await.expect("list").len(), 1);

    // Deleting the tenant deletes its secrets; the other's stay.
    drop(pool);
    t.delete_tenant("acme", true).await.expect("delete");
    let left = fx
        .catalog_sql(&format!(
            "UPDATE tenantry_secrets SET name = name WHERE tenant_id = '{}'",
            a.id
        ))
        .await;
    assert_eq!(left, 0);
    assert_eq!(t.secret_names("globex").await.expect("list").len(), 1);
    fx.cleanup().await;
}
