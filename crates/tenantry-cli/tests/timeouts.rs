//! A server that accepts connections and never answers: every wait has an end, the fleet
//! run reports that server's tenants as failed, naming it, and finishes the others.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{stderr, stdout, tenantry};
use sqlx::Connection;
use tenantry::{NewTenant, Status};
use tenantry_testkit::{Backend, Fixture};

/// A TCP server that accepts every connection and never says a word.
fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

/// Points the catalog's record of `server` at `url`, behind Tenantry's back.
async fn repoint(fx: &Fixture, server: &str, url: &str) {
    let catalog = fx.catalog_url.as_deref().expect("a PostgreSQL catalog");
    let mut conn = sqlx::AnyConnection::connect(catalog)
        .await
        .expect("connect to the catalog");
    sqlx::query("UPDATE tenantry_servers SET url = $1 WHERE name = $2")
        .bind(url)
        .bind(server)
        .execute(&mut conn)
        .await
        .expect("repoint the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fails_only_its_tenants_and_the_fleet_run_finishes() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let real = tenantry_testkit::postgres_url();
    fx.tenantry
        .add_server("quiet", &real)
        .await
        .expect("add server");
    fx.create("home").await.expect("create on pg");
    for slug in ["hushed1", "hushed2"] {
        fx.tenantry
            .create_tenant(NewTenant {
                slug: slug.into(),
                server: Some("quiet".into()),
                ..NewTenant::default()
            })
            .await
            .expect("create on quiet");
    }
    fx.write_migration("20250101000009_more.sql", "CREATE TABLE more (id INT);");
    let addr = silent_server();
    repoint(
        &fx,
        "quiet",
        &format!("postgres://postgres@{addr}/postgres"),
    )
    .await;

    let mut child = tenantry(&fx)
        .args(["--connect-timeout", "1", "migrate", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // It finishes: poll for its exit, with a deadline far beyond the timeouts involved.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`tenantry migrate --all` still waits for the silent server after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("3 tenant(s): 1 migrated, 0 already current, 0 skipped, 2 failed"),
        "{text}"
    );
    for slug in ["hushed1", "hushed2"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("  failed: {slug}: ")))
            .unwrap_or_else(|| panic!("{slug} is reported failed:\n{text}"));
        assert!(
            line.contains("server \"quiet\"") && line.contains("timed out"),
            "{line}"
        );
    }
    assert!(stderr(&out).contains("2 tenant(s) failed to migrate"));

    // The silent server's tenants keep their version and say why; home moved on.
    for slug in ["hushed1", "hushed2"] {
        let t = fx.tenant(slug).await;
        assert_eq!(t.status, Status::Active);
        assert_eq!(t.version, 20250101000008);
        assert!(
            t.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("timed out"),
            "{:?}",
            t.last_error
        );
    }
    assert_eq!(fx.tenant("home").await.version, 20250101000009);

    repoint(&fx, "quiet", &real).await;
    fx.cleanup().await;
}
