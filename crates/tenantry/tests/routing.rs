//! Resolving requests to tenants: every identifier, their order, disagreement, hosts, status
//! codes, an application's own identifier, and changes made by another catalog handle — on
//! each catalog engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tenantry::routing::{
    Access, Ask, Identifier, Refusal, RequestParts, Resolution, Resolver, RoutingSettings,
    TenantRef,
};
use tenantry::{Error, Settings};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    each_identifier_resolves_and_reports_itself,
    the_configured_order_decides_via_and_disagreement_is_refused,
    unknown_suspended_and_deleted_tenants_get_their_codes,
    hosts_are_normalised_and_bad_hosts_refused,
    identity_records_are_validated_and_unique,
    a_change_made_elsewhere_reaches_the_resolver,
);

fn request(host: Option<&str>, headers: &[(&str, &str)], path: &str) -> RequestParts {
    RequestParts {
        hosts: host.map(|h| vec![h.to_owned()]).unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        path: path.to_owned(),
    }
}

fn routing(identifiers: &[&str]) -> Settings {
    Settings {
        routing: Some(RoutingSettings {
            identifiers: Some(identifiers.iter().map(|s| (*s).to_owned()).collect()),
            base_domains: Some(vec!["app.test".into()]),
            poll_interval_ms: Some(100),
            ..RoutingSettings::default()
        }),
        ..Settings::default()
    }
}

async fn resolve(resolver: &Resolver, parts: RequestParts) -> Result<Resolution, Refusal> {
    resolver.resolve(&parts, Access::Configured).await
}

fn slug_of(result: &Result<Resolution, Refusal>) -> (String, String) {
    match result {
        Ok(r) => (r.tenant.slug.to_string(), r.via.clone()),
        Err(e) => panic!("expected a resolution, got {} ({e})", e.code()),
    }
}

fn code_of(result: &Result<Resolution, Refusal>) -> &'static str {
    match result {
        Ok(r) => panic!("expected a refusal, got tenant {}", r.tenant.slug),
        Err(e) => e.code(),
    }
}

async fn each_identifier_resolves_and_reports_itself(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    fx.tenantry
        .add_domain("acme", "shop.acme.test", false)
        .await
        .expect("domain");
    let tenantry = fx
        .reopen(routing(&[
            "domain",
            "subdomain",
            "header",
            "path",
            "membership",
        ]))
        .await;
    let resolver = Resolver::new(&tenantry).expect("resolver");

    let cases = [
        (request(Some("shop.acme.test"), &[], "/"), "acme", "domain"),
        (
            request(Some("globex.app.test"), &[], "/"),
            "globex",
            "subdomain",
        ),
        (
            request(None, &[("X-Tenant", "globex")], "/"),
            "globex",
            "header",
        ),
        (
            request(None, &[("x-tenant", &acme.id.to_string())], "/"),
            "acme",
            "header",
        ),
        (request(None, &[], "/t/acme/documents"), "acme", "path"),
    ];
    for (parts, slug, via) in cases {
        let got = slug_of(&resolve(&resolver, parts.clone()).await);
        assert_eq!(got, (slug.to_owned(), via.to_owned()), "{parts:?}");
    }

    // An application's own identifier (a session lookup, say), asked first.
    struct Session;
    impl Identifier for Session {
        fn name(&self) -> &str {
            "session"
        }
        fn identify<'a>(
            &'a self,
            ask: &'a Ask<'a>,
        ) -> BoxFuture<'a, Result<Option<TenantRef>, Refusal>> {
            Box::pin(async move {
                Ok(match ask.request.header("cookie") {
                    Some("session=s1") => Some(TenantRef::Name("globex".into())),
                    _ => None,
                })
            })
        }
    }
    let resolver = resolver.with_identifier(0, Arc::new(Session));
    assert_eq!(resolver.identifiers()[0], "session");
    let got = slug_of(&resolve(&resolver, request(None, &[("Cookie", "session=s1")], "/")).await);
    assert_eq!(got, ("globex".to_owned(), "session".to_owned()));
    // …and like any other identifier, it may not disagree with the host.
    let clash = resolve(
        &resolver,
        request(Some("shop.acme.test"), &[("Cookie", "session=s1")], "/"),
    )
    .await;
    assert_eq!(code_of(&clash), "tenant_mismatch");
    fx.cleanup().await;
}

async fn the_configured_order_decides_via_and_disagreement_is_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    fx.tenantry
        .add_domain("acme", "acme.example", false)
        .await
        .expect("domain");
    // Seed 003's order: subdomain, then domain, then a request parameter (here a header).
    let tenantry = fx.reopen(routing(&["subdomain", "domain", "header"])).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    assert_eq!(resolver.identifiers(), ["subdomain", "domain", "header"]);
    let agree = request(Some("acme.example"), &[("X-Tenant", "acme")], "/");
    assert_eq!(
        slug_of(&resolve(&resolver, agree.clone()).await),
        ("acme".into(), "domain".into())
    );
    let tenantry = fx.reopen(routing(&["header", "domain"])).await;
    let header_first = Resolver::new(&tenantry).expect("resolver");
    assert_eq!(
        slug_of(&resolve(&header_first, agree).await),
        ("acme".into(), "header".into())
    );

    let disagreements = [
        request(Some("acme.example"), &[("X-Tenant", "globex")], "/"),
        request(Some("globex.app.test"), &[("X-Tenant", "acme")], "/"),
        request(Some("globex.app.test"), &[], "/t/acme/x"),
    ];
    let tenantry = fx
        .reopen(routing(&["domain", "subdomain", "header", "path"]))
        .await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    for parts in disagreements {
        let result = resolve(&resolver, parts.clone()).await;
        assert_eq!(code_of(&result), "tenant_mismatch", "{parts:?}");
        assert_eq!(result.expect_err("refused").status(), 403);
    }
    fx.cleanup().await;
}

async fn unknown_suspended_and_deleted_tenants_get_their_codes(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("gone").await.expect("create gone");
    let tenantry = fx.reopen(routing(&["header", "subdomain"])).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let by_header = |slug: &str| request(None, &[("X-Tenant", slug)], "/");

    let unknown = resolve(&resolver, by_header("nosuch")).await;
    assert_eq!(code_of(&unknown), "tenant_not_found");
    assert_eq!(unknown.expect_err("refused").status(), 404);
    let nothing = resolve(&resolver, request(Some("www.other.test"), &[], "/")).await;
    assert_eq!(code_of(&nothing), "tenant_not_found");

    fx.tenantry.suspend_tenant("acme").await.expect("suspend");
    resolver.directory().refresh().await.expect("refresh");
    let suspended = resolve(&resolver, by_header("acme")).await;
    assert_eq!(code_of(&suspended), "tenant_suspended");
    assert_eq!(suspended.expect_err("refused").status(), 403);
    fx.tenantry.resume_tenant("acme").await.expect("resume");
    resolver.directory().refresh().await.expect("refresh");
    assert_eq!(
        slug_of(&resolve(&resolver, by_header("acme")).await).0,
        "acme"
    );

    fx.tenantry
        .delete_tenant("gone", false)
        .await
        .expect("delete");
    resolver.directory().refresh().await.expect("refresh");
    assert_eq!(
        code_of(&resolve(&resolver, by_header("gone")).await),
        "tenant_not_found"
    );
    fx.cleanup().await;
}

async fn hosts_are_normalised_and_bad_hosts_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("books").await.expect("create books");
    let added = fx
        .tenantry
        .add_domain("acme", "Shop.ACME.test.", false)
        .await
        .expect("domain");
    assert_eq!(added.host, "shop.acme.test");
    let idn = fx
        .tenantry
        .add_domain("books", "bücher.example", false)
        .await
        .expect("idn domain");
    assert_eq!(idn.host, "xn--bcher-kva.example");
    // One host, one tenant, whatever its spelling.
    let taken = fx
        .tenantry
        .add_domain("books", "SHOP.acme.test:8443", false)
        .await;
    assert!(
        matches!(&taken, Err(Error::DomainTaken { host, tenant }) if host == "shop.acme.test" && tenant == "acme"),
        "{taken:?}"
    );
    let ip = fx.tenantry.add_domain("books", "10.0.0.1", false).await;
    assert!(matches!(ip, Err(Error::InvalidHost { .. })), "{ip:?}");

    let tenantry = fx.reopen(routing(&["domain", "subdomain"])).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    for host in ["SHOP.ACME.TEST", "shop.acme.test:8080", "shop.acme.test."] {
        let got = slug_of(&resolve(&resolver, request(Some(host), &[], "/")).await);
        assert_eq!(got.0, "acme", "{host}");
    }
    for host in ["BÜCHER.example", "xn--bcher-kva.example"] {
        let got = slug_of(&resolve(&resolver, request(Some(host), &[], "/")).await);
        assert_eq!(got.0, "books", "{host}");
    }
    let overlong = format!("{}.example", "a".repeat(260));
    for host in ["", " ", overlong.as_str(), "a..b", "shop.acme.test:99999"] {
        let result = resolve(&resolver, request(Some(host), &[], "/")).await;
        assert_eq!(code_of(&result), "invalid_host", "{host:?}");
        assert_eq!(result.expect_err("refused").status(), 400);
    }
    let two = RequestParts {
        hosts: vec!["shop.acme.test".into(), "evil.test".into()],
        ..RequestParts::default()
    };
    assert_eq!(code_of(&resolve(&resolver, two).await), "invalid_host");
    fx.cleanup().await;
}

async fn identity_records_are_validated_and_unique(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("acme").await.expect("create");
    let alice = t
        .add_user(tenantry::identity::NewUser {
            email: "Alice@Example.com".into(),
            display_name: "Alice".into(),
            password: Some("correct horse battery".into()),
        })
        .await
        .expect("add user");
    let again = t
        .add_user(tenantry::identity::NewUser {
            email: "alice@EXAMPLE.com".into(),
            display_name: "Alice 2".into(),
            password: None,
        })
        .await;
    assert!(matches!(again, Err(Error::UserExists { .. })), "{again:?}");
    for email in ["no-at-sign", "a b@c.d", "@x.y", ""] {
        let bad = t
            .add_user(tenantry::identity::NewUser {
                email: email.into(),
                ..Default::default()
            })
            .await;
        assert!(matches!(bad, Err(Error::InvalidEmail { .. })), "{email:?}");
    }
    assert!(
        t.check_password("ALICE@example.com", "correct horse battery")
            .await
            .expect("check")
    );
    assert!(!t.check_password(&alice.id, "wrong").await.expect("check"));

    let bad_role = t.add_member(&alice.id, "acme", "emperor").await;
    assert!(
        matches!(bad_role, Err(Error::UnknownRole { .. })),
        "{bad_role:?}"
    );
    let member = t
        .add_member("alice@example.com", "acme", "manager")
        .await
        .expect("member");
    assert_eq!(member.role, "manager");
    let member = t
        .set_member_role(&alice.id, "acme", "viewer")
        .await
        .expect("role");
    assert_eq!(member.role, "viewer");
    assert_eq!(t.members(Some("acme"), None).await.expect("list").len(), 1);

    t.add_domain("acme", "a.acme.test", false)
        .await
        .expect("domain a");
    t.add_domain("acme", "b.acme.test", true)
        .await
        .expect("domain b");
    let domains = t.domains(Some("acme")).await.expect("domains");
    let primary: Vec<_> = domains
        .iter()
        .filter(|d| d.primary)
        .map(|d| d.host.as_str())
        .collect();
    assert_eq!(primary, ["b.acme.test"]);
    t.remove_domain("B.ACME.TEST").await.expect("remove");
    let domains = t.domains(Some("acme")).await.expect("domains");
    assert!(domains.iter().all(|d| d.host == "a.acme.test" && d.primary));

    // Deleting the tenant removes its domains and memberships, and says so in the log.
    t.delete_tenant("acme", false).await.expect("delete");
    assert!(t.domains(None).await.expect("domains").is_empty());
    assert!(t.members(None, None).await.expect("members").is_empty());
    let acme = fx.tenant("acme").await;
    let events = t.catalog().events(Some(&acme), 20).await.expect("events");
    for action in ["domain.remove", "member.remove"] {
        assert!(
            events.iter().any(|e| e.action == action),
            "{action} missing"
        );
    }
    fx.cleanup().await;
}

async fn a_change_made_elsewhere_reaches_the_resolver(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.tenantry
        .add_domain("acme", "acme.example", false)
        .await
        .expect("domain");
    // A separate handle: its own cache, following the catalog's change counter.
    let tenantry = fx.reopen(routing(&["domain", "header"])).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let parts = request(Some("acme.example"), &[], "/");
    assert_eq!(slug_of(&resolve(&resolver, parts.clone()).await).0, "acme");
    // Served from the cache now; the change is written through the other handle.
    fx.tenantry
        .remove_domain("acme.example")
        .await
        .expect("remove");
    let code = wait_for_refusal(&resolver, &parts).await;
    assert_eq!(code, "tenant_not_found");

    let by_header = request(None, &[("X-Tenant", "acme")], "/");
    assert_eq!(
        slug_of(&resolve(&resolver, by_header.clone()).await).0,
        "acme"
    );
    fx.tenantry.suspend_tenant("acme").await.expect("suspend");
    assert_eq!(
        wait_for_refusal(&resolver, &by_header).await,
        "tenant_suspended"
    );
    fx.cleanup().await;
}

/// Waits until the resolver refuses `parts` (its cache followed the catalog), returning the
/// refusal's code; gives up after ten seconds.
async fn wait_for_refusal(resolver: &Resolver, parts: &RequestParts) -> &'static str {
    let start = Instant::now();
    loop {
        if let Err(refusal) = resolver.resolve(parts, Access::Configured).await {
            return refusal.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the change never reached the resolver"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
