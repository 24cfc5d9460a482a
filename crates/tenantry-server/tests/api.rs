//! The admin API over HTTP against real catalogs and servers: each endpoint's happy path and
//! its refusals, as problem documents with the status and code the document promises.

mod common;

use reqwest::Method;
use serde_json::json;
use tenantry::Scope;
use tenantry_testkit::{Backend, Fixture, on_each_backend};

use common::{Server, key};

on_each_backend!(
    a_tenant_lives_its_whole_life_over_http,
    a_rollout_runs_as_a_job_and_rolls_back,
    domains_users_members_servers_and_migrations_over_http
);

async fn a_tenant_lives_its_whole_life_over_http(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    let admin = key(t, "ops", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    let k = Some(admin.as_str());

    // Create: 201 with its Location; the same slug again is 409 naming the field.
    let body = json!({ "slug": "acme", "name": "Acme Inc", "server": fx.server });
    let response = server
        .call(Method::POST, "/v1/tenants", k, Some(body.clone()))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/v1/tenants/acme");
    let created: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        (created["slug"].as_str(), created["status"].as_str()),
        (Some("acme"), Some("active"))
    );
    let (status, problem) = server
        .json(Method::POST, "/v1/tenants", k, Some(body))
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        (problem["code"].as_str(), problem["field"].as_str()),
        (Some("slug_taken"), Some("slug"))
    );

    // Bad input: 422 naming the field, 400 for broken JSON, nothing created.
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants",
            k,
            Some(json!({ "slug": "Not A Slug" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("slug")));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants",
            k,
            Some(json!({ "slug": "x", "strategy": "sideways" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("strategy")));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants",
            k,
            Some(json!({ "slug": "x", "colour": "red" })),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let broken = server
        .client
        .post(format!("{}/v1/tenants", server.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"slug\":")
        .send()
        .await
        .expect("send");
    assert_eq!(broken.status(), 400);
    assert_eq!(broken.headers()["content-type"], "application/problem+json");
    assert!(t.catalog().find_tenant("x").await.expect("read").is_none());

    // Show, list with filters, labels, suspend and resume, events.
    let (status, shown) = server.json(Method::GET, "/v1/tenants/acme", k, None).await;
    assert_eq!((status, shown["name"].as_str()), (200, Some("Acme Inc")));
    let (status, _) = server
        .json(Method::GET, "/v1/tenants/nobody", k, None)
        .await;
    assert_eq!(status, 404);
    let (_, labels) = server
        .json(Method::PUT, "/v1/tenants/acme/labels/eu", k, None)
        .await;
    assert_eq!(labels, json!(["eu"]));
    let (_, page) = server
        .json(Method::GET, "/v1/tenants?label=eu&status=active", k, None)
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (_, page) = server
        .json(Method::GET, "/v1/tenants?status=suspended", k, None)
        .await;
    assert_eq!(page["items"], json!([]));
    let (status, suspended) = server
        .json(Method::POST, "/v1/tenants/acme/suspend", k, None)
        .await;
    assert_eq!(
        (status, suspended["status"].as_str()),
        (200, Some("suspended"))
    );
    let (status, problem) = server
        .json(Method::POST, "/v1/tenants/acme/suspend", k, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let (status, resumed) = server
        .json(Method::POST, "/v1/tenants/acme/resume", k, None)
        .await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("active")));
    let (_, events) = server
        .json(Method::GET, "/v1/tenants/acme/events?limit=2", k, None)
        .await;
    assert_eq!(events[0]["action"], "tenant.resume");
    assert_eq!(events[0]["actor"], "key:ops");
    let (status, repaired) = server
        .json(Method::POST, "/v1/tenants/acme/repair", k, None)
        .await;
    assert_eq!((status, repaired["status"].as_str()), (200, Some("active")));

    // Pages: two tenants one at a time.
    fx.create("globex").await.expect("create");
    let (_, first) = server
        .json(Method::GET, "/v1/tenants?limit=1", k, None)
        .await;
    let next = first["next"].as_str().expect("a next page").to_owned();
    let (_, second) = server
        .json(
            Method::GET,
            &format!("/v1/tenants?limit=1&after={next}"),
            k,
            None,
        )
        .await;
    assert_ne!(first["items"][0]["slug"], second["items"][0]["slug"]);
    let (status, problem) = server
        .json(Method::GET, "/v1/tenants?limit=0", k, None)
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("limit")));

    // Delete, then purge: the slug is free again.
    let (status, deleted) = server
        .json(Method::DELETE, "/v1/tenants/acme", k, None)
        .await;
    assert_eq!((status, deleted["status"].as_str()), (200, Some("deleted")));
    assert!(!fx.storage_exists(&fx.tenant("acme").await).await);
    let (status, _) = server
        .json(Method::DELETE, "/v1/tenants/acme?purge=true", k, None)
        .await;
    assert_eq!(status, 204);
    assert!(
        t.catalog()
            .find_tenant("acme")
            .await
            .expect("read")
            .is_none()
    );

    let (_, report) = server.json(Method::GET, "/v1/audit/verify", k, None).await;
    assert_eq!(report["first_break"], serde_json::Value::Null, "{report}");
    server.stop().await;
    fx.cleanup().await;
}

async fn a_rollout_runs_as_a_job_and_rolls_back(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    for slug in ["a1", "a2", "a3"] {
        fx.create(slug).await.expect("create");
    }
    let base = t.migrations().expect("set").latest();
    let next = base + 1;
    fx.write_migration(
        &format!("{next}_notes.up.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY);",
    );
    fx.write_migration(&format!("{next}_notes.down.sql"), "DROP TABLE notes;");
    let runner = key(
        t,
        "deployer",
        &[Scope::MigrationsRun, Scope::TenantsRead, Scope::AuditRead],
        None,
    )
    .await;
    let k = Some(runner.as_str());
    let server = Server::start(t).await;

    let response = server
        .call(
            Method::POST,
            "/v1/rollouts",
            k,
            Some(json!({ "canary": 1 })),
        )
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let done = wait_done(&server, &location, k).await;
    assert_eq!(done["counts"]["migrated"], 3, "{done}");
    assert_eq!(done["started_by"], "key:deployer");
    assert_eq!(fx.versions(&["a1", "a2", "a3"]).await, vec![next; 3]);

    // Roll back to the version before.
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/rollouts",
            k,
            Some(json!({ "kind": "down" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("to")));
    let response = server
        .call(
            Method::POST,
            "/v1/rollouts",
            k,
            Some(json!({ "kind": "down", "to": base })),
        )
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let done = wait_done(&server, &location, k).await;
    assert_eq!(done["counts"]["reverted"], 3, "{done}");
    assert_eq!(fx.versions(&["a1", "a2", "a3"]).await, vec![base; 3]);

    let (status, _) = server
        .json(
            Method::GET,
            "/v1/rollouts/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            k,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // A key without migrations:run may read but not start.
    let reader = key(t, "reader", &[Scope::TenantsRead], None).await;
    let (status, problem) = server
        .json(Method::POST, "/v1/rollouts", Some(&reader), Some(json!({})))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("insufficient_scope"))
    );

    let (_, audit) = server
        .json(Method::GET, "/v1/audit?limit=1000", k, None)
        .await;
    let migrated = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "migrate" && e["actor"] == "key:deployer")
        .count();
    assert!(migrated >= 3, "{audit}");
    server.stop().await;
    fx.cleanup().await;
}

/// Polls a rollout until it is no longer running.
async fn wait_done(server: &Server, location: &str, key: Option<&str>) -> serde_json::Value {
    for _ in 0..600 {
        let (status, body) = server.json(Method::GET, location, key, None).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] != "running" {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("rollout {location} did not finish");
}

async fn domains_users_members_servers_and_migrations_over_http(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("acme").await.expect("create");
    fx.create("globex").await.expect("create");
    let admin = key(t, "ops", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    let k = Some(admin.as_str());

    // Domains: a host routes to one tenant only.
    let (status, domain) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/domains",
            k,
            Some(json!({ "host": "Acme.Example.COM." })),
        )
        .await;
    assert_eq!(
        (status, domain["host"].as_str()),
        (201, Some("acme.example.com"))
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants/globex/domains",
            k,
            Some(json!({ "host": "acme.example.com" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (409, Some("host_taken"), Some("host"))
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants/globex/domains",
            k,
            Some(json!({ "host": "bad host!" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("host")));
    // Not globex's to remove.
    let (status, _) = server
        .json(
            Method::DELETE,
            "/v1/tenants/globex/domains/acme.example.com",
            k,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(t.domains(Some("acme")).await.expect("domains").len(), 1);
    let (status, _) = server
        .json(
            Method::DELETE,
            "/v1/tenants/acme/domains/acme.example.com",
            k,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Users and members.
    let (status, user) = server
        .json(
            Method::POST,
            "/v1/users",
            k,
            Some(json!({ "email": "Ana@Example.com", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/users",
            k,
            Some(json!({ "email": "ana@example.com" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("email_taken"))
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/users",
            k,
            Some(json!({ "email": "not an email" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("email")));
    let (status, member) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/members",
            k,
            Some(json!({ "user": "ana@example.com", "role": "employee" })),
        )
        .await;
    assert_eq!((status, member["role"].as_str()), (201, Some("employee")));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/members",
            k,
            Some(json!({ "user": "ana@example.com", "role": "emperor" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("role")));
    let (status, member) = server
        .json(
            Method::PUT,
            "/v1/tenants/acme/members/ana@example.com",
            k,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!((status, member["role"].as_str()), (200, Some("admin")));
    let (_, members) = server
        .json(Method::GET, "/v1/tenants/acme/members", k, None)
        .await;
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    let (status, _) = server
        .json(
            Method::DELETE,
            "/v1/tenants/acme/members/ana@example.com",
            k,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, disabled) = server
        .json(Method::POST, "/v1/users/ana@example.com/disable", k, None)
        .await;
    assert_eq!(
        (status, disabled["status"].as_str()),
        (200, Some("disabled"))
    );

    // Rename: the new slug answers, the old one is gone, a taken one is refused.
    let (status, renamed) = server
        .json(
            Method::PATCH,
            "/v1/tenants/acme",
            k,
            Some(json!({ "slug": "acme-corp", "name": "Acme Corp" })),
        )
        .await;
    assert_eq!(
        (status, renamed["slug"].as_str(), renamed["name"].as_str()),
        (200, Some("acme-corp"), Some("Acme Corp"))
    );
    let (status, _) = server.json(Method::GET, "/v1/tenants/acme", k, None).await;
    assert_eq!(status, 404);
    let (status, problem) = server
        .json(
            Method::PATCH,
            "/v1/tenants/acme-corp",
            k,
            Some(json!({ "slug": "globex" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("slug_taken"))
    );
    assert_eq!(fx.tenant("globex").await.name, "globex", "globex untouched");

    // Migrations and servers.
    let (status, summary) = server
        .json(Method::GET, "/v1/migrations/status", k, None)
        .await;
    assert_eq!(
        (
            status,
            summary["tenants"].as_u64(),
            summary["current"].as_u64()
        ),
        (200, Some(2), Some(2))
    );
    let (status, history) = server
        .json(Method::GET, "/v1/tenants/globex/migrations", k, None)
        .await;
    assert_eq!(status, 200, "{history}");
    assert!(
        history["migrations"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );
    let (_, servers) = server.json(Method::GET, "/v1/servers", k, None).await;
    assert!(
        servers
            .as_array()
            .expect("servers")
            .iter()
            .any(|s| s["name"] == fx.server.as_str())
    );
    assert!(!servers.to_string().contains("password"));
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/servers",
            k,
            Some(json!({ "name": "odd", "url": "oracle://db" })),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("url")));
    let (status, problem) = server
        .json(
            Method::DELETE,
            &format!("/v1/servers/{}", fx.server),
            k,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("server_in_use"))
    );
    let (status, events) = server
        .json(Method::GET, "/v1/events?limit=5", k, None)
        .await;
    assert_eq!((status, events.as_array().map(Vec::len)), (200, Some(5)));
    server.stop().await;
    fx.cleanup().await;
}
