//! Callers: bearer tokens through the resolver — membership and role, the membership-only
//! identifier, public routes, disabled users and revoked memberships (seen by another catalog
//! handle while the token is still valid), and tokens that must be refused.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tenantry::identity::NewUser;
use tenantry::routing::jwt::{JwtAlgorithm, JwtSettings, mint_hs256};
use tenantry::routing::{Access, Refusal, RequestParts, Resolution, Resolver, RoutingSettings};
use tenantry::{Settings, Tenantry};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(
    a_member_resolves_with_their_role,
    non_members_disabled_users_and_bad_tokens_are_refused,
    a_revoked_membership_is_refused_while_the_token_is_still_valid,
);

const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

fn settings() -> Settings {
    let mut jwt = JwtSettings::new(JwtAlgorithm::HS256);
    jwt.secret = Some(SECRET.into());
    Settings {
        routing: Some(RoutingSettings {
            identifiers: Some(vec!["header".into(), "jwt".into(), "membership".into()]),
            poll_interval_ms: Some(100),
            jwt: Some(jwt),
            ..RoutingSettings::default()
        }),
        ..Settings::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn token(claims: serde_json::Value) -> String {
    mint_hs256(SECRET.as_bytes(), &claims).expect("mint")
}

fn for_user(user: &str) -> String {
    token(serde_json::json!({ "sub": user, "exp": now() + 600 }))
}

fn request(tenant: Option<&str>, token: Option<&str>) -> RequestParts {
    let mut headers = Vec::new();
    if let Some(tenant) = tenant {
        headers.push(("X-Tenant".to_owned(), tenant.to_owned()));
    }
    if let Some(token) = token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    RequestParts {
        hosts: Vec::new(),
        headers,
        path: "/".into(),
    }
}

async fn user(tenantry: &Tenantry, email: &str) -> String {
    tenantry
        .add_user(NewUser {
            email: email.into(),
            display_name: email.into(),
            password: None,
        })
        .await
        .expect("add user")
        .id
}

async fn resolve(resolver: &Resolver, parts: RequestParts) -> Result<Resolution, Refusal> {
    resolver.resolve(&parts, Access::Configured).await
}

fn refused(result: Result<Resolution, Refusal>) -> (&'static str, u16) {
    match result {
        Ok(r) => panic!("expected a refusal, got tenant {}", r.tenant.slug),
        Err(e) => (e.code(), e.status()),
    }
}

async fn a_member_resolves_with_their_role(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    fx.tenantry
        .add_member(&alice, "acme", "manager")
        .await
        .expect("member");
    let tenantry = fx.reopen(settings()).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");

    let token = for_user(&alice);
    let by_header = resolve(&resolver, request(Some("acme"), Some(&token)))
        .await
        .expect("resolved");
    let caller = by_header.caller.expect("a caller");
    assert_eq!(caller.email, "alice@example.com");
    assert_eq!(caller.role.as_deref(), Some("manager"));
    assert!(tenantry.roles().at_least("manager", "employee"));

    // Her only membership names the tenant when nothing else does.
    let only = resolve(&resolver, request(None, Some(&token)))
        .await
        .expect("resolved");
    assert_eq!(
        (only.tenant.slug.as_str(), only.via.as_str()),
        ("acme", "membership")
    );

    // A tenant claim in the token is an identifier too, and must agree with the header.
    let claimed = token_with_tenant(&alice, "acme");
    let via_claim = resolve(&resolver, request(None, Some(&claimed)))
        .await
        .expect("resolved");
    assert_eq!(via_claim.via, "jwt");
    let clash = resolve(&resolver, request(Some("globex"), Some(&claimed))).await;
    assert_eq!(refused(clash), ("tenant_mismatch", 403));

    // A public route serves a non-member, with no role.
    let public = resolver
        .resolve(&request(Some("globex"), Some(&token)), Access::Public)
        .await
        .expect("resolved");
    assert_eq!(public.caller.expect("caller").role, None);
    fx.cleanup().await;
}

fn token_with_tenant(user: &str, tenant: &str) -> String {
    token(serde_json::json!({ "sub": user, "tenant": tenant, "exp": now() + 600 }))
}

async fn non_members_disabled_users_and_bad_tokens_are_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    let bob = user(&fx.tenantry, "bob@example.com").await;
    fx.tenantry
        .add_member(&alice, "acme", "owner")
        .await
        .expect("member");
    fx.tenantry
        .add_member(&bob, "globex", "viewer")
        .await
        .expect("member");
    let tenantry = fx.reopen(settings()).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");

    // Bob is a member of globex, not of acme.
    let bob_at_acme = resolve(&resolver, request(Some("acme"), Some(&for_user(&bob)))).await;
    assert_eq!(refused(bob_at_acme), ("not_a_member", 403));
    // No token where membership is required.
    assert_eq!(
        refused(resolve(&resolver, request(Some("acme"), None)).await),
        ("invalid_token", 401)
    );

    let alg_none = {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
            b64(serde_json::json!({"sub": alice, "exp": now() + 600}))
        )
    };
    let wrong_secret = mint_hs256(
        b"another-secret-that-is-at-least-32-bytes",
        &serde_json::json!({ "sub": alice, "exp": now() + 600 }),
    )
    .expect("mint");
    let bad_tokens = [
        (
            "expired",
            token(serde_json::json!({ "sub": alice, "exp": now() - 3600 })),
        ),
        (
            "not yet valid",
            token(serde_json::json!({ "sub": alice, "nbf": now() + 3600, "exp": now() + 7200 })),
        ),
        ("no exp", token(serde_json::json!({ "sub": alice }))),
        ("wrong signature", wrong_secret),
        ("alg none", alg_none),
        ("garbage", "not.a.token".to_owned()),
        ("unknown subject", for_user("01J0000000000000000000NOPE")),
    ];
    for (what, bad) in bad_tokens {
        let result = resolve(&resolver, request(Some("acme"), Some(&bad))).await;
        assert_eq!(refused(result), ("invalid_token", 401), "{what}");
    }

    // Two Authorization headers: which one counts is not guessed.
    let mut two = request(Some("acme"), Some(&for_user(&alice)));
    two.headers.push((
        "authorization".into(),
        format!("Bearer {}", for_user(&alice)),
    ));
    assert_eq!(
        refused(resolve(&resolver, two).await),
        ("invalid_token", 401)
    );

    // A disabled user's still-valid token is refused once the change is seen.
    let token = for_user(&alice);
    resolve(&resolver, request(Some("acme"), Some(&token)))
        .await
        .expect("served before");
    fx.tenantry
        .set_user_active(&alice, false)
        .await
        .expect("disable");
    let code = wait_for_refusal(&resolver, request(Some("acme"), Some(&token))).await;
    assert_eq!(code, "invalid_token");
    fx.cleanup().await;
}

async fn a_revoked_membership_is_refused_while_the_token_is_still_valid(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    fx.tenantry
        .add_member(&alice, "acme", "admin")
        .await
        .expect("member");
    let tenantry = fx.reopen(settings()).await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let parts = request(Some("acme"), Some(&for_user(&alice)));
    resolve(&resolver, parts.clone()).await.expect("served");

    let revoked_at = Instant::now();
    fx.tenantry
        .remove_member(&alice, "acme")
        .await
        .expect("revoke");
    assert_eq!(wait_for_refusal(&resolver, parts).await, "not_a_member");
    // The resolver follows the catalog every 100 ms here (250 ms by default).
    eprintln!(
        "membership revocation seen after {:?}",
        revoked_at.elapsed()
    );
    fx.cleanup().await;
}

/// Waits until the resolver refuses `parts`, returning the refusal's code; gives up after ten
/// seconds.
async fn wait_for_refusal(resolver: &Resolver, parts: RequestParts) -> &'static str {
    let start = Instant::now();
    loop {
        if let Err(refusal) = resolver.resolve(&parts, Access::Configured).await {
            return refusal.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the change never reached the resolver"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
