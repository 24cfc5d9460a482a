//! API keys at the door: scopes, a key bound to one tenant learning nothing of another, a
//! revocation from another process refused within a second, failed attempts slowed down,
//! bodies over the limit refused; and the OpenAPI document the server serves.

mod common;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenantry::{Scope, Settings};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

use common::{Server, key};

on_each_backend!(
    a_tenant_bound_key_sees_only_its_tenant,
    a_revoked_key_is_refused_within_a_second
);

async fn a_tenant_bound_key_sees_only_its_tenant(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("tenant-a").await.expect("create");
    fx.create("tenant-b").await.expect("create");
    let bound = key(
        t,
        "a-only",
        &[Scope::TenantsRead, Scope::TenantsWrite, Scope::AuditRead],
        Some("tenant-a"),
    )
    .await;
    let server = Server::start(t).await;
    let k = Some(bound.as_str());

    let (status, a) = server
        .json(Method::GET, "/v1/tenants/tenant-a", k, None)
        .await;
    assert_eq!((status, a["slug"].as_str()), (200, Some("tenant-a")));
    // B answers exactly as a tenant that does not exist.
    let (status_b, b) = server
        .json(Method::GET, "/v1/tenants/tenant-b", k, None)
        .await;
    let (status_none, none) = server
        .json(Method::GET, "/v1/tenants/tenant-zz", k, None)
        .await;
    assert_eq!((status_b, status_none), (404, 404));
    assert_eq!(b["code"], none["code"]);
    assert_eq!(
        b["detail"].as_str().map(|d| d.replace("tenant-b", "X")),
        none["detail"].as_str().map(|d| d.replace("tenant-zz", "X"))
    );
    for (method, path) in [
        (Method::POST, "/v1/tenants/tenant-b/suspend"),
        (Method::DELETE, "/v1/tenants/tenant-b"),
        (Method::PUT, "/v1/tenants/tenant-b/labels/x"),
        (Method::GET, "/v1/tenants/tenant-b/events"),
        (Method::GET, "/v1/audit?tenant=tenant-b"),
    ] {
        let (status, _) = server.json(method.clone(), path, k, None).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    assert_eq!(
        fx.tenant("tenant-b").await.status,
        tenantry::Status::Active,
        "B untouched"
    );
    assert!(
        t.tenant_labels("tenant-b")
            .await
            .expect("labels")
            .is_empty()
    );
    // Fleet-wide resources do not exist for it.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({ "slug": "tenant-c" })),
        ),
        (Method::GET, "/v1/keys", None),
        (Method::GET, "/v1/audit/verify", None),
        (Method::GET, "/v1/rollouts", None),
    ] {
        let (status, _) = server.json(method.clone(), path, k, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    // The list and the audit log show A only.
    let (_, page) = server.json(Method::GET, "/v1/tenants", k, None).await;
    let slugs: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["slug"].as_str())
        .collect();
    assert_eq!(slugs, vec!["tenant-a"]);
    let (_, audit) = server.json(Method::GET, "/v1/audit", k, None).await;
    let entries = audit["items"].as_array().expect("items");
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["tenant"] == "tenant-a"), "{audit}");
    // Its own tenant it may manage.
    let (status, _) = server
        .json(Method::POST, "/v1/tenants/tenant-a/suspend", k, None)
        .await;
    assert_eq!(status, 200);

    // A key without a scope is refused with 403, whatever it asks.
    let reader = key(t, "reader", &[Scope::TenantsRead], None).await;
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants/tenant-b/suspend",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, _) = server
        .json(Method::GET, "/v1/audit", Some(&reader), None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .json(Method::GET, "/v1/keys", Some(&reader), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(fx.tenant("tenant-b").await.status, tenantry::Status::Active);
    server.stop().await;
    fx.cleanup().await;
}

async fn a_revoked_key_is_refused_within_a_second(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    let secret = key(t, "soon-gone", &[Scope::TenantsRead], None).await;
    let server = Server::start(t).await;
    let (status, _) = server
        .json(Method::GET, "/v1/tenants", Some(&secret), None)
        .await;
    assert_eq!(status, 200);
    // Revoked through another handle on the catalog, as another process would.
    let other = fx.reopen(Settings::default()).await;
    other.revoke_api_key("soon-gone").await.expect("revoke");
    let revoked = Instant::now();
    let (status, problem) = server
        .json(Method::GET, "/v1/tenants", Some(&secret), None)
        .await;
    assert!(revoked.elapsed() < Duration::from_secs(1));
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized"))
    );
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn malformed_and_wrong_keys_are_refused_then_slowed_down() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    let good = key(t, "good", &[Scope::TenantsRead], None).await;
    let options = tenantry_server::Options {
        failure_budget: 3,
        ..Default::default()
    };
    let server = Server::start_with(t, options).await;
    // A wrong secret for a real key id, a malformed key, none at all: 401 alike.
    let (prefix, _) = good.rsplit_once('_').expect("key shape");
    let wrong = format!("{prefix}_{}", "0".repeat(64));
    for bad in [Some(wrong.as_str()), Some("tnt_nonsense"), None] {
        let response = server.call(Method::GET, "/v1/tenants", bad, None).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
    }
    // The budget is spent: even the right key waits now.
    let response = server
        .call(Method::GET, "/v1/tenants", Some(&good), None)
        .await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait));
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_nothing_is_created() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    let admin = key(t, "admin", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    let body = json!({ "slug": "huge", "name": "x".repeat(100_000) });
    let (status, problem) = server
        .json(Method::POST, "/v1/tenants", Some(&admin), Some(body))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (413, Some("body_too_large"))
    );
    assert!(
        t.catalog()
            .find_tenant("huge")
            .await
            .expect("read")
            .is_none()
    );
    // Not JSON at all: 415.
    let response = server
        .client
        .post(format!("{}/v1/tenants", server.base))
        .bearer_auth(&admin)
        .body("slug=huge")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 415);
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_over_http() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    let admin = key(t, "root", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    let k = Some(admin.as_str());
    let (status, minted) = server
        .json(
            Method::POST,
            "/v1/keys",
            k,
            Some(json!({ "name": "ci", "scopes": ["tenants:read"] })),
        )
        .await;
    assert_eq!(status, 201);
    let secret = minted["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("tnt_"));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/keys",
            k,
            Some(json!({ "name": "ci", "scopes": ["admin"] })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("api_key_exists"))
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/keys",
            k,
            Some(json!({ "name": "x", "scopes": ["root"] })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("scopes")));
    let (_, keys) = server.json(Method::GET, "/v1/keys", k, None).await;
    let listed = keys.to_string();
    assert!(
        listed.contains("\"ci\"") && !listed.contains(&secret[secret.len() - 64..]),
        "no secret listed"
    );
    let (status, revoked) = server.json(Method::DELETE, "/v1/keys/ci", k, None).await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = server
        .json(Method::GET, "/v1/tenants", Some(&secret), None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .json(Method::DELETE, "/v1/keys/nobody", k, None)
        .await;
    assert_eq!(status, 404);
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn the_document_describes_every_operation_with_its_key_and_problems() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let server = Server::start(&fx.tenantry).await;
    let (status, doc) = server.json(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/v1/tenants",
        "/v1/tenants/{slug}",
        "/v1/rollouts",
        "/v1/rollouts/{id}",
        "/v1/keys",
        "/v1/audit",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("item") {
            let responses = &operation["responses"];
            for status in ["401", "404", "422", "503"] {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} documents {status}"
                );
            }
            assert!(
                operation["security"].is_array(),
                "{method} {path} needs a key"
            );
        }
    }
    // Unknown paths are problems too.
    let (status, problem) = server.json(Method::GET, "/v2/nothing", None, None).await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)));
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn secrets_are_written_over_http_and_never_read_back() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("tenant-a").await.expect("create");
    fx.create("tenant-b").await.expect("create");
    let writer = key(t, "vault", &[Scope::SecretsWrite, Scope::TenantsRead], None).await;
    let bound = key(
        t,
        "a-vault",
        &[Scope::SecretsWrite, Scope::TenantsRead],
        Some("tenant-a"),
    )
    .await;
    let reader = key(t, "reader", &[Scope::TenantsRead], None).await;
    let server = Server::start(t).await;
    let body = Some(json!({ "value": "sk_live_123" }));
    let (status, info) = server
        .json(
            Method::PUT,
            "/v1/tenants/tenant-b/secrets/STRIPE_KEY",
            Some(&writer),
            body.clone(),
        )
        .await;
    assert_eq!((status, info["name"].as_str()), (200, Some("STRIPE_KEY")));
    let (_, listed) = server
        .json(
            Method::GET,
            "/v1/tenants/tenant-b/secrets",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(!listed.to_string().contains("sk_live"));
    let (status, _) = server
        .json(
            Method::PUT,
            "/v1/tenants/tenant-b/secrets/X",
            Some(&reader),
            body.clone(),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .json(
            Method::PUT,
            "/v1/tenants/tenant-b/secrets/X",
            Some(&bound),
            body.clone(),
        )
        .await;
    assert_eq!(
        status, 404,
        "another tenant's secrets do not exist for a bound key"
    );
    let (status, problem) = server
        .json(
            Method::PUT,
            "/v1/tenants/tenant-a/secrets/bad%20name",
            Some(&bound),
            body,
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("name")));
    let (status, problem) = server
        .json(
            Method::PUT,
            "/v1/tenants/tenant-a/secrets/EMPTY",
            Some(&bound),
            Some(json!({ "value": "" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("value")));
    let (status, _) = server
        .json(
            Method::DELETE,
            "/v1/tenants/tenant-b/secrets/STRIPE_KEY",
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, problem) = server
        .json(
            Method::DELETE,
            "/v1/tenants/tenant-b/secrets/STRIPE_KEY",
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("secret_not_found"))
    );
    server.stop().await;
    fx.cleanup().await;
}
