//! `tenantry serve` as a process, beside two CLI processes writing to the same catalog at
//! once: every change is in the audit chain, in one unbroken line, as `audit verify` finds
//! it; and the server stops on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{bare, ok, run, stdout, tenantry};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(two_cli_processes_and_a_server_keep_one_audit_chain);

const EACH: usize = 6;

/// A `tenantry serve` process, killed if the test ends without stopping it.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tenantry serve` on a free port and returns it with its base URL.
fn serve(fx: &Fixture) -> (Served, String) {
    let mut child = tenantry(fx)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Served(child), url)
}

async fn two_cli_processes_and_a_server_keep_one_audit_chain(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let created = ok(
        &fx,
        &["apikey", "create", "root", "--scope", "admin", "--json"],
    );
    let secret = serde_json::from_str::<serde_json::Value>(&created).expect("json")["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let (mut server, base) = serve(&fx);

    // Two CLI processes, each creating keys one after another, while HTTP requests do too.
    let script = |who: &str| {
        let mut cmds = Vec::new();
        for i in 0..EACH {
            cmds.push(format!("{who}-{i}"));
        }
        cmds
    };
    let spawn_cli = |names: Vec<String>| {
        let fx_args = fx.cli_args();
        let dir = fx.dir.path().to_owned();
        std::thread::spawn(move || {
            for name in names {
                let out = bare(&dir)
                    .args(&fx_args)
                    .args(["apikey", "create", &name, "--scope", "audit:read"])
                    .output()
                    .expect("run");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })
    };
    let (a, b) = (spawn_cli(script("cli-a")), spawn_cli(script("cli-b")));
    let client = reqwest::Client::new();
    for i in 0..EACH {
        let response = client
            .post(format!("{base}/v1/keys"))
            .bearer_auth(&secret)
            .json(&serde_json::json!({ "name": format!("http-{i}"), "scopes": ["audit:read"] }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 201);
    }
    a.join().expect("cli a");
    b.join().expect("cli b");

    let out = run(&fx, &["audit", "verify", "--json"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    // The fixture's server (PostgreSQL, MySQL), the root key, and every key after it.
    let fixture_entries = match backend {
        Backend::Sqlite => 0,
        _ => 1,
    };
    let expected = fixture_entries + 1 + 3 * EACH as i64;
    assert_eq!(report["checked"], expected, "{report}");
    assert_eq!(report["head_seq"], expected);
    // The actors: the CLI's user, and the server's key.
    let exported = ok(&fx, &["audit", "export"]);
    let actors: Vec<String> = exported
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["actor"].to_string()
        })
        .collect();
    assert_eq!(
        actors.iter().filter(|a| a.contains("key:root")).count(),
        EACH
    );
    assert_eq!(
        actors.iter().filter(|a| a.contains("cli:")).count(),
        1 + 2 * EACH
    );

    // SIGTERM: the server stops on its own.
    let pid = server.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.0.wait().expect("wait");
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    fx.cleanup().await;
}
