//! The example service over real HTTP: each identifier reaches its tenant, every refusal
//! arrives as JSON with its stable code and status, changes made through the library reach
//! the service, and roles decide who writes — on each catalog engine.

mod common;

use base64::Engine as _;
use serde_json::{Value, json};
use tenantry_testkit::{Backend, Fixture, on_each_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{
    As, get, json_of, post_document, refusal_in, refusal_of, token, token_for, user, who,
};

on_each_backend!(
    each_identifier_reaches_its_tenant,
    refusals_carry_their_code_and_status,
    a_suspended_tenant_is_refused,
    a_revoked_membership_is_refused_while_the_token_is_valid,
    viewers_are_refused_writes_and_employees_write,
    two_tenant_headers_naming_different_tenants_are_refused,
    a_request_target_naming_another_host_is_refused,
);

const IDENTIFIERS: &[&str] = &["domain", "subdomain", "header"];

/// Makes `user` a member of acme and globex with `role`.
async fn member_of_both(fx: &Fixture, user: &str, role: &str) {
    for slug in ["acme", "globex"] {
        fx.tenantry
            .add_member(user, slug, role)
            .await
            .expect("member");
    }
}

/// `GET /me` as `who`: 200, and the tenant's slug, the caller's e-mail and role.
async fn me(service: &common::Service, who: &As<'_>) -> (String, String, String) {
    let (status, body) = json_of(get(service, "/me", who).await).await;
    assert_eq!(status, 200, "{who:?}: {body}");
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    (
        text(&body["tenant"]["slug"]),
        text(&body["user"]["email"]),
        text(&body["role"]),
    )
}

async fn each_identifier_reaches_its_tenant(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    let globex = fx.create("globex").await.expect("create globex");
    fx.tenantry
        .add_domain("acme", "shop.acme.test", true)
        .await
        .expect("domain");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    fx.tenantry
        .add_member(&alice, "acme", "manager")
        .await
        .expect("member");
    fx.tenantry
        .add_member(&alice, "globex", "viewer")
        .await
        .expect("member");
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let token = token_for(&alice);
    let globex_id = globex.id.to_string();

    let cases = [
        // A custom domain, as sent and in another spelling (case, port, trailing dot).
        (Some("shop.acme.test"), None, "acme", "manager"),
        (Some("SHOP.Acme.Test.:8443"), None, "acme", "manager"),
        // A subdomain of the base domain.
        (Some("globex.app.test"), None, "globex", "viewer"),
        // The header, by slug and by id (the Host is the service's IP address).
        (None, Some("acme"), "acme", "manager"),
        (None, Some(globex_id.as_str()), "globex", "viewer"),
    ];
    for (host, tenant, slug, role) in cases {
        let who = As {
            host,
            tenant,
            token: Some(&token),
        };
        assert_eq!(
            me(&service, &who).await,
            (slug.into(), "alice@example.com".into(), role.into()),
            "{who:?}"
        );
    }

    // /health is outside the layer: no tenant, and nothing about the request is checked.
    for who in [
        As::default(),
        As {
            host: Some("nobody.app.test"),
            tenant: Some("nope"),
            token: Some("not.a.token"),
        },
    ] {
        let response = get(&service, "/health", &who).await;
        assert_eq!(response.status().as_u16(), 200, "{who:?}");
        assert_eq!(response.text().await.expect("body"), "ok");
    }
    drop(service);
    fx.cleanup().await;
}

/// A bearer token with `alg: none` and no signature.
fn alg_none_token(user: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(json!({ "sub": user, "exp": common::now() + 600 }))
    )
}

/// Sends `request` as raw bytes and reads the whole answer (the request asks to close):
/// its status and JSON body.
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("read the answer");
    let answer = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {answer:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {body:?}"));
    (status, body)
}

async fn refusals_carry_their_code_and_status(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    fx.tenantry
        .add_domain("acme", "shop.acme.test", true)
        .await
        .expect("domain");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    let bob = user(&fx.tenantry, "bob@example.com").await;
    member_of_both(&fx, &alice, "owner").await;
    fx.tenantry
        .add_member(&bob, "globex", "owner")
        .await
        .expect("member");
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let alice_token = token_for(&alice);
    let bob_token = token_for(&bob);
    let alice_as = |host, tenant| who(host, tenant, Some(&alice_token));
    let at_acme = |token| who(None, Some("acme"), token);

    let expired = token(json!({ "sub": alice, "exp": common::now() - 3600 }));
    let wrong_signature = tenantry::routing::jwt::mint_hs256(
        b"another-secret-that-is-at-least-32-bytes-long",
        &json!({ "sub": alice, "exp": common::now() + 600 }),
    )
    .expect("mint");
    let alg_none = alg_none_token(&alice);
    let overlong = format!("{}app.test", "abcdefghij.".repeat(25));

    let cases = [
        (
            "unknown slug",
            alice_as(None, Some("nope")),
            404,
            "tenant_not_found",
        ),
        (
            "unknown subdomain",
            alice_as(Some("nope.app.test"), None),
            404,
            "tenant_not_found",
        ),
        (
            "nothing names a tenant",
            alice_as(None, None),
            404,
            "tenant_not_found",
        ),
        (
            "a member of globex only, at acme",
            at_acme(Some(&bob_token)),
            403,
            "not_a_member",
        ),
        (
            "acme's domain, globex's header",
            alice_as(Some("shop.acme.test"), Some("globex")),
            403,
            "tenant_mismatch",
        ),
        (
            "globex's subdomain, acme's header",
            alice_as(Some("globex.app.test"), Some("acme")),
            403,
            "tenant_mismatch",
        ),
        ("no token", at_acme(None), 401, "invalid_token"),
        (
            "expired token",
            at_acme(Some(&expired)),
            401,
            "invalid_token",
        ),
        (
            "wrong signature",
            at_acme(Some(&wrong_signature)),
            401,
            "invalid_token",
        ),
        ("alg none", at_acme(Some(&alg_none)), 401, "invalid_token"),
        (
            "overlong host",
            alice_as(Some(&overlong), Some("acme")),
            400,
            "invalid_host",
        ),
        (
            "empty host",
            alice_as(Some(""), Some("acme")),
            400,
            "invalid_host",
        ),
    ];
    for (what, who, status, code) in &cases {
        for path in ["/me", "/documents"] {
            let response = get(&service, path, who).await;
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().expect("ASCII").to_owned());
            assert_eq!(
                refusal_of(response).await,
                (*status, (*code).to_owned()),
                "{what}: GET {path}"
            );
            let expected = (*status == 401).then(|| "Bearer".to_owned());
            assert_eq!(challenge, expected, "{what}: GET {path}");
        }
        let response = post_document(&service, who, json!({ "path": "s3://x/1" })).await;
        assert_eq!(
            refusal_of(response).await,
            (*status, (*code).to_owned()),
            "{what}: POST"
        );
    }

    // Two Host headers, as raw bytes: a client cannot make the service choose one.
    let (status, body) = raw(
        service.addr,
        &format!(
            "GET /me HTTP/1.1\r\nHost: shop.acme.test\r\nHost: globex.app.test\r\n\
             Authorization: Bearer {alice_token}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(
        refusal_in(status, &body),
        (400, "invalid_host".to_owned()),
        "{body}"
    );

    // Nothing was written by any refused POST.
    for slug in ["acme", "globex"] {
        let (status, docs) =
            json_of(get(&service, "/documents", &alice_as(None, Some(slug))).await).await;
        assert_eq!((status, docs), (200, json!([])), "{slug}");
    }
    drop(service);
    fx.cleanup().await;
}

async fn a_suspended_tenant_is_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    member_of_both(&fx, &alice, "employee").await;
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let token = token_for(&alice);
    let at = |slug| As {
        host: None,
        tenant: Some(slug),
        token: Some(token.as_str()),
    };
    let (status, _) =
        json_of(post_document(&service, &at("acme"), json!({ "path": "s3://acme/1" })).await).await;
    assert_eq!(status, 201);

    fx.tenantry.suspend_tenant("acme").await.expect("suspend");
    // Its data is out of reach at once, whatever the service's cache still says about it.
    assert_eq!(
        refusal_of(get(&service, "/documents", &at("acme")).await).await,
        (403, "tenant_suspended".to_owned())
    );
    // And the service refuses the tenant itself once it has seen the change.
    let refused = common::wait_for("the suspension to reach the service", || async {
        let response = get(&service, "/me", &at("acme")).await;
        (response.status().as_u16() != 200).then_some(response)
    })
    .await;
    assert_eq!(
        refusal_of(refused).await,
        (403, "tenant_suspended".to_owned())
    );
    let response = post_document(&service, &at("acme"), json!({ "path": "s3://acme/2" })).await;
    assert_eq!(
        refusal_of(response).await,
        (403, "tenant_suspended".to_owned())
    );
    // The other tenant is served as before.
    assert_eq!(
        me(&service, &at("globex")).await,
        (
            "globex".into(),
            "alice@example.com".into(),
            "employee".into()
        )
    );
    drop(service);
    fx.cleanup().await;
}

async fn a_revoked_membership_is_refused_while_the_token_is_valid(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    member_of_both(&fx, &alice, "admin").await;
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let token = token_for(&alice);
    let at = |slug| As {
        host: None,
        tenant: Some(slug),
        token: Some(token.as_str()),
    };
    assert_eq!(me(&service, &at("acme")).await.2, "admin");

    fx.tenantry
        .remove_member(&alice, "acme")
        .await
        .expect("revoke");
    let refused = common::wait_for("the revocation to reach the service", || async {
        let response = get(&service, "/me", &at("acme")).await;
        (response.status().as_u16() != 200).then_some(response)
    })
    .await;
    assert_eq!(refusal_of(refused).await, (403, "not_a_member".to_owned()));
    for response in [
        get(&service, "/documents", &at("acme")).await,
        post_document(&service, &at("acme"), json!({ "path": "s3://acme/1" })).await,
    ] {
        assert_eq!(refusal_of(response).await, (403, "not_a_member".to_owned()));
    }
    // The same token still serves her in the tenant she is still a member of.
    assert_eq!(
        me(&service, &at("globex")).await,
        ("globex".into(), "alice@example.com".into(), "admin".into())
    );
    drop(service);
    fx.cleanup().await;
}

async fn viewers_are_refused_writes_and_employees_write(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create acme");
    let vera = user(&fx.tenantry, "vera@example.com").await;
    let emma = user(&fx.tenantry, "emma@example.com").await;
    fx.tenantry
        .add_member(&vera, "acme", "viewer")
        .await
        .expect("member");
    fx.tenantry
        .add_member(&emma, "acme", "employee")
        .await
        .expect("member");
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let (vera_token, emma_token) = (token_for(&vera), token_for(&emma));
    let viewer = As {
        host: Some("acme.app.test"),
        tenant: None,
        token: Some(&vera_token),
    };
    let employee = As {
        token: Some(&emma_token),
        ..viewer.clone()
    };

    let response = post_document(&service, &viewer, json!({ "path": "s3://acme/by-vera" })).await;
    assert_eq!(
        refusal_of(response).await,
        (403, "insufficient_role".to_owned())
    );
    let response = post_document(&service, &employee, json!({ "path": "" })).await;
    assert_eq!(
        refusal_of(response).await,
        (422, "invalid_document".to_owned())
    );

    let (status, created) =
        json_of(post_document(&service, &employee, json!({ "path": "s3://acme/by-emma" })).await)
            .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tenant_id"], json!(acme.id.to_string()));
    assert_eq!(created["storage_path"], json!("s3://acme/by-emma"));
    assert_eq!(created["status"], json!("uploaded"));

    // Both see exactly the one row that was written.
    for who in [&viewer, &employee] {
        let (status, listed) = json_of(get(&service, "/documents", who).await).await;
        assert_eq!((status, listed), (200, json!([created])), "{who:?}");
    }
    drop(service);
    fx.cleanup().await;
}

/// `X-Tenant` sent twice: two values naming different tenants are a disagreement, refused like
/// any other (never settled by taking the first); two spellings of one tenant are served.
async fn two_tenant_headers_naming_different_tenants_are_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let acme = fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    member_of_both(&fx, &alice, "employee").await;
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let token = token_for(&alice);
    let acme_id = acme.id.to_string();
    let twice = |first: &str, second: &str| {
        service
            .get("/me")
            .bearer_auth(&token)
            .header("X-Tenant", first)
            .header("x-tenant", second)
    };

    for (first, second) in [("acme", "globex"), ("globex", "acme")] {
        let response = twice(first, second).send().await.expect("GET");
        assert_eq!(
            refusal_of(response).await,
            (403, "tenant_mismatch".to_owned()),
            "{first}, {second}"
        );
    }
    let response = twice("acme", "nope").send().await.expect("GET");
    assert_eq!(
        refusal_of(response).await,
        (404, "tenant_not_found".to_owned())
    );
    for (first, second) in [("acme", "acme"), ("acme", acme_id.as_str())] {
        let (status, body) = json_of(twice(first, second).send().await.expect("GET")).await;
        assert_eq!(
            (status, &body["tenant"]["slug"]),
            (200, &json!("acme")),
            "{first}, {second}: {body}"
        );
    }
    drop(service);
    fx.cleanup().await;
}

/// A request target in absolute form (`GET http://host/path`) names a host too; when it and
/// the Host header name different hosts the request is refused, never served for one of them.
async fn a_request_target_naming_another_host_is_refused(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fx.create("acme").await.expect("create acme");
    fx.create("globex").await.expect("create globex");
    fx.tenantry
        .add_domain("acme", "shop.acme.test", true)
        .await
        .expect("domain");
    let alice = user(&fx.tenantry, "alice@example.com").await;
    member_of_both(&fx, &alice, "employee").await;
    let tenantry = fx.reopen(common::routing(IDENTIFIERS)).await;
    let service = common::serve(&tenantry).await;
    let token = token_for(&alice);
    let request = |target: &str, host: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        )
    };

    for (target, host) in [
        ("http://globex.app.test/me", "shop.acme.test"),
        ("http://shop.acme.test/me", "globex.app.test"),
        ("http://shop.acme.test/me", "other.test"),
    ] {
        let (status, body) = raw(service.addr, &request(target, host)).await;
        assert_eq!(
            refusal_in(status, &body),
            (400, "invalid_host".to_owned()),
            "{target} with Host {host}: {body}"
        );
    }
    // The same host spelt two ways is one host.
    let (status, body) = raw(
        service.addr,
        &request("http://SHOP.acme.test:80/me", "shop.acme.test"),
    )
    .await;
    assert_eq!(
        (status, &body["tenant"]["slug"]),
        (200, &json!("acme")),
        "{body}"
    );
    drop(service);
    fx.cleanup().await;
}
