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
