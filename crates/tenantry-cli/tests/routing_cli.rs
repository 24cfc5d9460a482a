//! Identity and routing from the command line: `domain`, `user`, `member`, `token mint` and
//! `tenantry resolve` as the README documents them, their refusals, and a change made by one
//! process reaching a resolver in another.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{fails, stdout, tenantry};
use tenantry::Settings;
use tenantry::routing::{Access, RequestParts, Resolver, RoutingSettings};
use tenantry_testkit::{Backend, Fixture};

const SECRET: &str = "0123456789abcdef0123456789abcdef-cli-test";

/// `tenantry.toml` of the fixture: base domain, tokens with the secret from the environment.
fn configure(fx: &Fixture) {
    std::fs::write(
        fx.dir.path().join("tenantry.toml"),
        "[routing]\nbase_domains = [\"app.test\"]\npoll_interval_ms = 100\n\n[routing.jwt]\nalgorithm = \"HS256\"\n",
    )
    .expect("write tenantry.toml");
}

fn run(fx: &Fixture, args: &[&str]) -> Output {
    tenantry(fx)
        .env("TENANTRY_JWT_SECRET", SECRET)
        .args(args)
        .output()
        .expect("run tenantry")
}

fn ok(fx: &Fixture, args: &[&str]) -> String {
    let out = run(fx, args);
    assert!(
        out.status.success(),
        "tenantry {args:?} failed:\n{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn json(fx: &Fixture, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(fx, args)).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_answers_as_documented() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    configure(&fx);
    ok(&fx, &["tenant", "create", "acme"]);
    ok(&fx, &["tenant", "create", "globex"]);
    let domain = json(
        &fx,
        &["domain", "add", "acme", "Shop.Acme.TEST:443", "--json"],
    );
    assert_eq!(domain["host"], "shop.acme.test");
    assert_eq!(domain["primary"], true);
    let alice = json(
        &fx,
        &[
            "user",
            "add",
            "Alice@Example.com",
            "--name",
            "Alice",
            "--json",
        ],
    );
    let alice_id = alice["id"].as_str().expect("id").to_owned();
    assert_eq!(alice["status"], "active");
    let member = json(
        &fx,
        &[
            "member",
            "add",
            "alice@example.com",
            "acme",
            "--role",
            "manager",
            "--json",
        ],
    );
    assert_eq!(
        (member["tenant"].as_str(), member["role"].as_str()),
        (Some("acme"), Some("manager"))
    );
    let listed = json(&fx, &["member", "list", "--tenant", "acme", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let token = ok(&fx, &["token", "mint", "--user", "alice@example.com"])
        .trim()
        .to_owned();

    // Resolved: tenant, identifier, user, role.
    let got = json(
        &fx,
        &[
            "resolve",
            "--host",
            "SHOP.acme.test",
            "--bearer",
            &token,
            "--json",
        ],
    );
    assert_eq!(got["tenant"]["slug"], "acme");
    assert_eq!(got["via"], "domain");
    assert_eq!(got["caller"]["user_id"], alice_id.as_str());
    assert_eq!(got["caller"]["role"], "manager");
    let text = ok(
        &fx,
        &["resolve", "--host", "acme.app.test", "--bearer", &token],
    );
    assert!(text.contains("via     subdomain"), "{text}");
    assert!(text.contains("role    manager"), "{text}");

    // Refused: the code and the HTTP status, exit status 1.
    let refusals: [(&[&str], &str, u16); 5] = [
        (
            &["--host", "globex.app.test", "--bearer", &token],
            "not_a_member",
            403,
        ),
        (
            &[
                "--host",
                "shop.acme.test",
                "--header",
                "X-Tenant: globex",
                "--bearer",
                &token,
            ],
            "tenant_mismatch",
            403,
        ),
        (
            &["--host", "nosuch.app.test", "--bearer", &token],
            "tenant_not_found",
            404,
        ),
        (
            &["--host", "shop.acme.test", "--bearer", "not-a-token"],
            "invalid_token",
            401,
        ),
        (
            &["--host", "a.test", "--host", "b.test", "--bearer", &token],
            "invalid_host",
            400,
        ),
    ];
    for (args, code, status) in refusals {
        let mut all = vec!["resolve", "--json"];
        all.extend_from_slice(args);
        let out = run(&fx, &all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let body: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON refusal");
        assert_eq!(body["error"]["code"], code, "{args:?}");
        assert_eq!(body["error"]["status"], status, "{args:?}");
    }
    let text = run(
        &fx,
        &["resolve", "--host", "globex.app.test", "--bearer", &token],
    );
    assert!(
        stdout(&text).starts_with("refused not_a_member (403)"),
        "{}",
        stdout(&text)
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identity_input_is_refused_and_changes_nothing() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    configure(&fx);
    ok(&fx, &["tenant", "create", "acme"]);
    ok(&fx, &["tenant", "create", "globex"]);
    ok(&fx, &["domain", "add", "acme", "acme.example"]);
    ok(&fx, &["user", "add", "bob@example.com"]);
    fails(
        &fx,
        &["domain", "add", "globex", "ACME.example."],
        "already routes to tenant \"acme\"",
    );
    fails(&fx, &["domain", "add", "globex", "a..b"], "invalid host");
    fails(&fx, &["domain", "add", "globex", "10.0.0.1"], "IP address");
    fails(
        &fx,
        &["domain", "add", "nosuch", "n.example"],
        "no tenant \"nosuch\"",
    );
    fails(
        &fx,
        &["domain", "remove", "never.example"],
        "no tenant has the domain",
    );
    fails(&fx, &["user", "add", "BOB@example.com"], "already exists");
    fails(&fx, &["user", "add", "not-an-email"], "invalid e-mail");
    fails(
        &fx,
        &[
            "member",
            "add",
            "bob@example.com",
            "acme",
            "--role",
            "emperor",
        ],
        "unknown role",
    );
    fails(
        &fx,
        &[
            "member",
            "add",
            "carol@example.com",
            "acme",
            "--role",
            "viewer",
        ],
        "no user",
    );
    fails(
        &fx,
        &["member", "remove", "bob@example.com", "acme"],
        "not a member",
    );
    let domains = json(&fx, &["domain", "list", "--json"]);
    assert_eq!(domains.as_array().map(Vec::len), Some(1));
    assert_eq!(domains[0]["tenant"], "acme");
    assert_eq!(
        json(&fx, &["user", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        json(&fx, &["member", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    fx.cleanup().await;
}

/// The resolver lives in this process; the change is made by a `tenantry` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_by_another_process_reaches_a_running_resolver() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme", "--server", &fx.server]);
    let tenantry = fx
        .reopen(Settings {
            routing: Some(RoutingSettings {
                identifiers: Some(vec!["header".into()]),
                poll_interval_ms: Some(250),
                ..RoutingSettings::default()
            }),
            ..Settings::default()
        })
        .await;
    let resolver = Resolver::new(&tenantry).expect("resolver");
    let parts = RequestParts {
        headers: vec![("X-Tenant".into(), "acme".into())],
        ..RequestParts::default()
    };
    resolver
        .resolve(&parts, Access::Configured)
        .await
        .expect("served while active");
    ok(&fx, &["tenant", "suspend", "acme"]);
    let suspended = Instant::now();
    loop {
        match resolver.resolve(&parts, Access::Configured).await {
            Err(refusal) => {
                assert_eq!(refusal.code(), "tenant_suspended");
                break;
            }
            Ok(_) => assert!(
                suspended.elapsed() < Duration::from_secs(10),
                "the suspension never reached the resolver"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("suspension seen after {:?}", suspended.elapsed());
    drop(resolver);
    fx.cleanup().await;
}
