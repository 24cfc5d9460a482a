//! The web console in a real headless Chromium, driven over WebDriver: sign in with a key,
//! find a tenant, suspend it and see its status change, start a rollout and watch it finish,
//! verify the audit chain; a tenant name carrying markup is shown as text. With
//! `TENANTRY_SCREENSHOTS=<dir>`, it saves a screenshot of each main page there.

mod common;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tenantry::{NewTenant, Scope, Status};
use tenantry_testkit::{Backend, Fixture};

use common::{Server, key};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn driver() -> Option<Driver> {
    if !std::path::Path::new(DRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("CI needs {CHROMIUM} and {DRIVER} (Debian's chromium and chromium-driver)");
        }
        eprintln!("skipped: {CHROMIUM} or {DRIVER} missing");
        return None;
    }
    let port = free_port();
    let child = Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver { child, url };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let ready = client
            .get(format!("{}/status", driver.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if let Ok(response) = ready
            && response.status().is_success()
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not come up on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }),
    );
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("start a browser session")
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let page = client.source().await.unwrap_or_default();
            panic!("waiting for {css}: {e}; the page:\n{page}")
        }
    }
}

async fn screenshot(client: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("TENANTRY_SCREENSHOTS") {
        let png = client.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png)
            .expect("write screenshot");
    }
}

#[tokio::test]
async fn an_operator_signs_in_suspends_a_tenant_and_watches_a_rollout_finish() {
    let Some(driver) = driver().await else {
        return;
    };
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let t = &fx.tenantry;
    for slug in ["acme", "globex", "initech", "umbrella"] {
        fx.create(slug).await.expect("create");
    }
    t.create_tenant(NewTenant {
        slug: "hostile".into(),
        name: Some("<img src=x onerror=\"document.title='pwned'\">".into()),
        ..NewTenant::default()
    })
    .await
    .expect("create");
    t.add_domain("acme", "acme.example.com", true)
        .await
        .expect("domain");
    let base = t.migrations().expect("set").latest();
    fx.write_migration(
        &format!("{}_invoices.sql", base + 1),
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total BIGINT NOT NULL);",
    );
    let secret = key(t, "console", &[Scope::Admin], None).await;
    let server = Server::start(t).await;
    let client = browser(&driver).await;

    // Sign in: a wrong key is refused, the right one shows the fleet.
    client.goto(&server.base).await.expect("open the console");
    let input = wait_for(&client, "#api-key").await;
    input.send_keys("tnt_wrong").await.expect("type");
    client
        .find(Locator::Css("#sign-in-form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let error = wait_for(&client, "#sign-in-error").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//p[@id='sign-in-error' and string-length(normalize-space()) > 0]",
        ))
        .await
        .expect("an error for a wrong key");
    assert!(error.text().await.expect("text").contains("refused"));
    input.clear().await.expect("clear");
    input.send_keys(&secret).await.expect("type");
    client
        .find(Locator::Css("#sign-in-form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_for(&client, "tr[data-tenant='acme']").await;
    let total = wait_for(&client, "[data-count='tenants'] b").await;
    assert_eq!(total.text().await.expect("text"), "5");
    screenshot(&client, "fleet").await;

    // Markup in a name is text.
    let hostile = wait_for(&client, "tr[data-tenant='hostile'] td.wrap").await;
    assert_eq!(
        hostile.text().await.expect("text"),
        "<img src=x onerror=\"document.title='pwned'\">"
    );
    assert!(
        client
            .find_all(Locator::Css("#tenant-rows img"))
            .await
            .expect("find")
            .is_empty()
    );
    assert_ne!(client.title().await.expect("title"), "pwned");

    // Find a tenant.
    wait_for(&client, "#search")
        .await
        .send_keys("glob")
        .await
        .expect("type");
    let rows = client
        .find_all(Locator::Css("#tenant-rows tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].attr("data-tenant").await.expect("attr").as_deref(),
        Some("globex")
    );
    // Filter by status through the API.
    client
        .goto(&format!("{}/#/fleet?status=suspended", server.base))
        .await
        .expect("goto");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//tbody[@id='tenant-rows' and not(tr)]"))
        .await
        .expect("no suspended tenant yet");

    // Suspend acme from its page and see the status change.
    client
        .goto(&format!("{}/#/tenant/acme", server.base))
        .await
        .expect("goto");
    wait_for(&client, "#tenant-facts").await;
    assert!(
        client
            .source()
            .await
            .expect("source")
            .contains("acme.example.com")
    );
    wait_for(&client, "#suspend")
        .await
        .click()
        .await
        .expect("suspend");
    wait_for(&client, "[data-fact='Status'] [data-status='suspended']").await;
    wait_for(&client, "#resume").await;
    assert_eq!(fx.tenant("acme").await.status, Status::Suspended);
    screenshot(&client, "tenant").await;

    // Start a rollout and watch it finish.
    client
        .goto(&format!("{}/#/rollouts", server.base))
        .await
        .expect("goto");
    wait_for(&client, "#start-rollout")
        .await
        .click()
        .await
        .expect("start");
    wait_for(&client, "#rollout-rows tr[data-state='done']").await;
    screenshot(&client, "rollouts").await;
    assert_eq!(
        fx.versions(&["globex", "initech", "umbrella"]).await,
        vec![base + 1; 3]
    );

    // The audit log, and its verification.
    client
        .goto(&format!("{}/#/audit", server.base))
        .await
        .expect("goto");
    wait_for(&client, "tr[data-event='tenant.suspend']").await;
    wait_for(&client, "#verify")
        .await
        .click()
        .await
        .expect("verify");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//p[@id='verify-result' and starts-with(normalize-space(), 'Chain valid')]",
        ))
        .await
        .expect("the chain verified");
    screenshot(&client, "audit").await;

    // The API document renders.
    client
        .goto(&format!("{}/#/docs", server.base))
        .await
        .expect("goto");
    wait_for(&client, ".op code").await;
    screenshot(&client, "api").await;

    client.close().await.expect("close the browser");
    server.stop().await;
    fx.cleanup().await;
}
