//! Backups, restores, server placement and adoption over HTTP: the same library calls as the
//! CLI, with their refusals as problem documents.

mod common;

use reqwest::Method;
use serde_json::json;
use tenantry::Scope;
use tenantry_testkit::{Backend, Fixture, on_each_backend};

use common::{Server, key};

on_each_backend!(a_backup_is_taken_listed_and_restored_over_http);

async fn a_backup_is_taken_listed_and_restored_over_http(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("acme").await.expect("create");
    fx.create("other").await.expect("create");
    let admin = key(t, "ops", &[Scope::Admin], None).await;
    let bound = key(
        t,
        "acme-app",
        &[Scope::TenantsWrite, Scope::TenantsRead],
        Some("acme"),
    )
    .await;
    let server = Server::start(t).await;
    let k = Some(admin.as_str());

    let (status, backup) = server
        .json(Method::POST, "/v1/tenants/acme/backups", k, Some(json!({})))
        .await;
    assert_eq!(status, 201, "{backup}");
    let id = backup["id"].as_str().expect("id").to_owned();
    assert_eq!(backup["method"], "archive");
    let (status, listed) = server
        .json(Method::GET, "/v1/tenants/acme/backups", k, None)
        .await;
    assert_eq!((status, listed[0]["id"].as_str()), (200, Some(id.as_str())));

    // In place, then as a new tenant; an unknown backup is 404 naming the field.
    let (status, restored) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/restore",
            k,
            Some(json!({ "backup": id })),
        )
        .await;
    assert_eq!(
        (status, restored["status"].as_str()),
        (200, Some("active")),
        "{restored}"
    );
    let (status, clone) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/restore",
            k,
            Some(json!({ "backup": id, "as": "acme-staging" })),
        )
        .await;
    assert_eq!(
        (status, clone["slug"].as_str()),
        (200, Some("acme-staging")),
        "{clone}"
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/restore",
            k,
            Some(json!({ "backup": "nope" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (404, Some("backup_not_found"), Some("backup"))
    );

    // A key bound to acme: its own backups, not another tenant's, and no new tenant.
    let b = Some(bound.as_str());
    let (status, _) = server
        .json(Method::GET, "/v1/tenants/acme/backups", b, None)
        .await;
    assert_eq!(status, 200);
    let (status, problem) = server
        .json(Method::GET, "/v1/tenants/other/backups", b, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("tenant_not_found"))
    );
    let (status, _) = server
        .json(
            Method::POST,
            "/v1/tenants/acme/restore",
            b,
            Some(json!({ "backup": id, "as": "acme-copy" })),
        )
        .await;
    assert_eq!(status, 404, "a bound key creates no tenant");
    assert!(
        t.catalog()
            .find_tenant("acme-copy")
            .await
            .expect("lookup")
            .is_none()
    );

    // Placement: a full server refuses a new tenant with 409 server_full.
    let server_name = fx.server.clone();
    let (status, placed) = server
        .json(
            Method::PATCH,
            &format!("/v1/servers/{server_name}"),
            k,
            Some(json!({ "capacity": 1, "region": "eu-west-1", "add_labels": ["ssd"] })),
        )
        .await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(
        (placed["capacity"].as_i64(), placed["region"].as_str()),
        (Some(1), Some("eu-west-1"))
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants",
            k,
            Some(json!({ "slug": "one-more", "region": "eu-west-1" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("no_server_fits")),
        "{problem}"
    );
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/tenants",
            k,
            Some(json!({ "slug": "one-more", "server": server_name })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("server_full")),
        "{problem}"
    );
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_database_is_adopted_over_http() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("acme").await.expect("create");
    let admin = key(t, "ops", &[Scope::Admin], None).await;
    let bound = key(t, "acme-app", &[Scope::TenantsWrite], Some("acme")).await;
    // An empty file is an empty SQLite database: none of the set's migrations applied.
    let dir = fx.data_dir().join("tenants");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("shop.db"), b"").expect("file");
    let server = Server::start(t).await;
    let k = Some(admin.as_str());
    let adopt =
        |slug: &str| json!({ "slug": slug, "server": "local", "database": "shop", "baseline": 0 });

    let (status, _) = server
        .json(
            Method::POST,
            "/v1/adoptions",
            Some(bound.as_str()),
            Some(adopt("shop")),
        )
        .await;
    assert_eq!(status, 404, "a bound key adopts nothing");
    let (status, problem) = server
        .json(
            Method::POST,
            "/v1/adoptions",
            k,
            Some(
                json!({ "slug": "shop", "server": "local", "database": "shop", "schema": "shop" }),
            ),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (422, Some("invalid"), Some("database")),
        "{problem}"
    );
    assert!(
        t.catalog()
            .find_tenant("shop")
            .await
            .expect("lookup")
            .is_none()
    );

    let (status, adopted) = server
        .json(Method::POST, "/v1/adoptions", k, Some(adopt("shop")))
        .await;
    assert_eq!(status, 201, "{adopted}");
    assert_eq!(
        (
            adopted["tenant"]["status"].as_str(),
            adopted["tenant"]["storage"].as_str(),
            adopted["baseline"].as_i64(),
            adopted["source"].as_str()
        ),
        (Some("active"), Some("shop"), Some(0), Some("given"))
    );
    // The same storage again, under another slug: refused, nothing written.
    let (status, problem) = server
        .json(Method::POST, "/v1/adoptions", k, Some(adopt("shop-two")))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("adopt_refused")),
        "{problem}"
    );
    assert!(
        t.catalog()
            .find_tenant("shop-two")
            .await
            .expect("lookup")
            .is_none()
    );
    fx.cleanup().await;
}
