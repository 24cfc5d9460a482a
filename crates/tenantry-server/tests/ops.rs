//! The operations endpoints, without a key: `/healthz`; `/readyz` with the catalog and each
//! server, turning 503 with `Retry-After` when a server stops answering and 200 again when it
//! is back; `/metrics` with tenants, rollouts, pools and requests.

mod common;

use reqwest::Method;
use tenantry::Scope;
use tenantry_testkit::{Backend, Fixture, TempCluster};

use common::{Server, key};

#[tokio::test]
async fn readiness_follows_a_server_that_goes_away_and_comes_back() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let Some(cluster) = TempCluster::start() else {
        return;
    };
    let t = &fx.tenantry;
    t.add_server("flaky", &cluster.url())
        .await
        .expect("add server");
    let server = Server::start(t).await;
    let (status, body) = server.json(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, ready) = server.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, ready["ready"].as_bool()),
        (200, Some(true)),
        "{ready}"
    );
    let names: Vec<&str> = ready["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"flaky") && names.contains(&"local"));
    assert!(ready["catalog"]["millis"].is_number());

    cluster.stop();
    let response = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let ready: serde_json::Value = response.json().await.expect("json");
    let flaky = ready["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["name"] == "flaky")
        .cloned()
        .expect("flaky");
    assert_eq!(flaky["ok"], false);
    assert!(
        flaky["error"].as_str().is_some_and(|e| e.contains("flaky")),
        "{flaky}"
    );
    // The health of the process itself does not depend on it.
    let (status, _) = server.json(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);

    cluster.resume();
    let (status, ready) = server.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, ready["ready"].as_bool()),
        (200, Some(true)),
        "{ready}"
    );
    server.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn metrics_count_tenants_pools_and_requests() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    fx.create("acme").await.expect("create");
    fx.create("globex").await.expect("create");
    t.suspend_tenant("globex").await.expect("suspend");
    let admin = key(t, "ops", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    for _ in 0..3 {
        let (status, _) = server
            .json(Method::GET, "/v1/tenants/acme", Some(&admin), None)
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = server
        .json(Method::GET, "/v1/tenants/nobody", Some(&admin), None)
        .await;
    assert_eq!(status, 404);
    let response = server.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.expect("body");
    for line in [
        r#"tenantry_tenants{status="active",strategy="database"} 1"#,
        r#"tenantry_tenants{status="suspended",strategy="database"} 1"#,
        r#"tenantry_http_requests_total{method="GET",route="/v1/tenants/{slug}",code="200"} 3"#,
        r#"tenantry_http_requests_total{method="GET",route="/v1/tenants/{slug}",code="404"} 1"#,
        r#"tenantry_http_request_duration_seconds_count{method="GET",route="/v1/tenants/{slug}"} 4"#,
        "tenantry_catalog_scrape_ok 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.trim_end().ends_with("# EOF"));
    server.stop().await;
    fx.cleanup().await;
}
