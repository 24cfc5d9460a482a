//! What reaches the operator's terminal or pipe: a reader that goes away early ends the
//! command quietly, and no byte of tenant data can drive the terminal.

mod common;

use std::process::Stdio;

use common::{ok, tenantry};
use tenantry_testkit::{Backend, Fixture};

/// More rows than a pipe holds (64 KiB), so the command is still writing when it finds its
/// reader gone, however the two processes are scheduled.
const MANY_ROWS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) \
     SELECT x, 'row number ' || x AS label FROM c";

/// Runs `tenantry <args>` with standard output a pipe whose reading end is closed at once,
/// like `tenantry … | head -0`; returns the exit code and standard error.
fn with_reader_gone(fx: &Fixture, args: &[&str]) -> (Option<i32>, String) {
    let mut child = tenantry(fx)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_a_command_quietly_and_successfully() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme"]);
    for args in [
        &["sql", "acme", MANY_ROWS][..],
        &["sql", "acme", "--json", MANY_ROWS],
        &["tenant", "list"],
        &["tenant", "list", "--json"],
        &["tenant", "show", "acme"],
        &["events"],
        &["migrate", "status"],
        &["migrate", "status", "--tenants"],
        &["migrate", "status", "--tenant", "acme"],
        &["migrate", "verify", "--all"],
        &["server", "list"],
        &["migrate", "--all"],
    ] {
        let (code, stderr) = with_reader_gone(&fx, args);
        assert!(!stderr.contains("panicked"), "tenantry {args:?}: {stderr}");
        assert_eq!(code, Some(0), "tenantry {args:?}: {stderr}");
        assert_eq!(stderr, "", "tenantry {args:?} says nothing about the pipe");
    }
    fx.cleanup().await;
}

/// Runs `tenantry <args>` and returns everything it wrote, standard output then error.
fn everything(fx: &Fixture, args: &[&str]) -> Vec<u8> {
    let out = common::run(fx, args);
    [out.stdout, out.stderr].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_escapes_in_tenant_names_and_data_are_shown_escaped() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    let red = "\x1b[31mred\x1b[0m";
    ok(&fx, &["tenant", "create", "acme", "--name", red]);
    let escaped_red = "\\u{1b}[31mred\\u{1b}[0m";
    let select = "SELECT char(27) || '[2J' AS \"clear\x1b[0m\", \
                  'tab' || char(9) || 'bed' AS tabbed, 'c1' || char(155) || 'x' AS c1";
    // Administrative SQL is recorded in the event log with its text.
    ok(&fx, &["sql", "--admin", "acme", "SELECT '\x1b[1m' AS bold"]);
    // A migration whose error message repeats an escape byte of its text.
    fx.write_migration("20250101000009_evil.sql", "SELECT 1 \x1b[2J;");
    let commands: [&[&str]; 12] = [
        &["sql", "--admin", "acme", "SELECT '\x1b[1m' AS bold"],
        &["tenant", "list"],
        &["tenant", "show", "acme"],
        &["sql", "acme", select],
        &["migrate", "--all"],
        &["migrate", "status"],
        &["migrate", "status", "--tenants"],
        &["migrate", "status", "--tenant", "acme"],
        &["migrate", "verify", "--all"],
        &["events"],
        &["events", "--tenant", "acme"],
        &["tenant", "create", "beta"],
    ];
    let mut seen = Vec::new();
    let mut raw = Vec::new();
    for args in commands {
        let bytes = everything(&fx, args);
        if bytes.contains(&0x1b) || bytes.contains(&0x9b) {
            raw.push(args);
        }
        seen.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    assert!(raw.is_empty(), "raw escape bytes written by {raw:?}");
    let all = seen.join("\n");
    for shown in [
        escaped_red,
        "\\u{1b}[2J",
        "clear\\u{1b}[0m",
        "tab\\tbed",
        "c1\\u{9b}x",
        "SELECT '\\u{1b}[1m' AS bold",
    ] {
        assert!(all.contains(shown), "{shown:?} is shown escaped:\n{all}");
    }
    // JSON keeps the data as it is, escaped the JSON way.
    let json = common::stdout(&common::run(&fx, &["tenant", "show", "acme", "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(shown["name"], red);
    fx.cleanup().await;
}
