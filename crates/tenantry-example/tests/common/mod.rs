//! The example service served over real TCP inside a test, and what its tests share: routing
//! settings with HS256 tokens, users, tokens, requests and refusal bodies.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tenantry::identity::NewUser;
use tenantry::routing::jwt::{JwtAlgorithm, JwtSettings, mint_hs256};
use tenantry::routing::{Resolver, RoutingSettings};
use tenantry::{Settings, Tenantry};
use tokio::task::JoinHandle;

/// The HS256 secret the service verifies tokens with.
pub const SECRET: &str = "an-http-test-secret-that-is-at-least-32-bytes";

/// The base domain under which `<slug>.app.test` names a tenant.
pub const BASE_DOMAIN: &str = "app.test";

/// Routing with bearer tokens (HS256, membership required), the given identifiers in order,
/// `app.test` as base domain, and the catalog's changes followed every 100 ms.
pub fn routing(identifiers: &[&str]) -> Settings {
    let mut jwt = JwtSettings::new(JwtAlgorithm::HS256);
    jwt.secret = Some(SECRET.into());
    Settings {
        routing: Some(RoutingSettings {
            identifiers: Some(identifiers.iter().map(|s| (*s).to_owned()).collect()),
            base_domains: Some(vec![BASE_DOMAIN.into()]),
            poll_interval_ms: Some(100),
            jwt: Some(jwt),
            ..RoutingSettings::default()
        }),
        ..Settings::default()
    }
}

/// The example service listening on a port of its own on 127.0.0.1; stops when dropped.
pub struct Service {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    task: JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `tenantry_example::app` on `tenantry`'s routing configuration.
pub async fn serve(tenantry: &Tenantry) -> Service {
    let resolver = Resolver::new(tenantry).expect("resolver");
    serve_router(tenantry_example::app(resolver)).await
}

/// Serves `app`.
pub async fn serve_router(app: axum::Router) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen on 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Service {
        addr,
        client: reqwest::Client::new(),
        task,
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }
}

/// A request's addressing: any of a Host header, an `X-Tenant` header and a bearer token.
#[derive(Debug, Clone, Default)]
pub struct As<'a> {
    pub host: Option<&'a str>,
    pub tenant: Option<&'a str>,
    pub token: Option<&'a str>,
}

impl As<'_> {
    pub fn apply(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(host) = self.host {
            request = request.header(reqwest::header::HOST, host);
        }
        if let Some(tenant) = self.tenant {
            request = request.header("X-Tenant", tenant);
        }
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        request
    }
}

/// `GET path` addressed as `who`.
pub async fn get(service: &Service, path: &str, who: &As<'_>) -> reqwest::Response {
    who.apply(service.get(path)).send().await.expect("GET")
}

/// `POST /documents` with `body`, addressed as `who`.
pub async fn post_document(service: &Service, who: &As<'_>, body: Value) -> reqwest::Response {
    who.apply(service.post("/documents"))
        .json(&body)
        .send()
        .await
        .expect("POST /documents")
}

/// The status and JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

/// The status and error code of a refusal, after checking the body's shape
/// (`{"error": {"code", "message", "status"}}`, the status repeated in it).
pub async fn refusal_of(response: reqwest::Response) -> (u16, String) {
    let (status, body) = json_of(response).await;
    refusal_in(status, &body)
}

/// The same for a body already read.
pub fn refusal_in(status: u16, body: &Value) -> (u16, String) {
    let error = &body["error"];
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("status {status}: no error code in {body}"));
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "status {status}: no message in {body}"
    );
    assert_eq!(error["status"], json!(status), "{body}");
    (status, code.to_owned())
}

/// Adds a user and returns their id.
pub async fn user(tenantry: &Tenantry, email: &str) -> String {
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

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("clock after 1970")
}

/// A token signed with the service's secret.
pub fn token(claims: Value) -> String {
    mint_hs256(SECRET.as_bytes(), &claims).expect("mint")
}

/// A valid token for `user`, for ten minutes.
pub fn token_for(user: &str) -> String {
    token(json!({ "sub": user, "exp": now() + 600 }))
}

/// Polls `check` until it gives a value, at most ten seconds.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Addressing by any of a Host header, an `X-Tenant` header and a bearer token.
pub fn who<'a>(host: Option<&'a str>, tenant: Option<&'a str>, token: Option<&'a str>) -> As<'a> {
    As {
        host,
        tenant,
        token,
    }
}
