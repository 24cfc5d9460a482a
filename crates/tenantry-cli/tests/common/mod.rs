//! Running the real `tenantry` binary against a test fixture.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use tenantry_testkit::Fixture;

/// The `tenantry` binary run in `dir`, with no `TENANTRY_*` setting from the environment.
pub fn bare(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.current_dir(dir)
        .env_remove("TENANTRY_CATALOG_URL")
        .env_remove("TENANTRY_DATA_DIR")
        .env_remove("TENANTRY_MIGRATIONS")
        .env_remove("TENANTRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// The `tenantry` binary, pointed at `fx`, run in `fx`'s directory.
pub fn tenantry(fx: &Fixture) -> Command {
    let mut cmd = bare(fx.dir.path());
    cmd.args(fx.cli_args());
    cmd
}

/// Runs `tenantry <args>` and returns its output.
pub fn run(fx: &Fixture, args: &[&str]) -> Output {
    tenantry(fx).args(args).output().expect("run tenantry")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and expects success.
pub fn ok(fx: &Fixture, args: &[&str]) -> String {
    let out = run(fx, args);
    assert!(
        out.status.success(),
        "tenantry {args:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs and expects failure whose stderr contains `needle`; returns stderr.
pub fn fails(fx: &Fixture, args: &[&str], needle: &str) -> String {
    let out = run(fx, args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "tenantry {args:?} should fail:\n{}",
        stdout(&out)
    );
    assert!(
        err.contains(needle),
        "tenantry {args:?}: stderr lacks {needle:?}:\n{err}"
    );
    err
}

/// Spawns `cmd` (its stdout piped, stderr dropped) and kills it with SIGKILL once it has
/// written `after` lines (0: as soon as it started; or when it ends on its own first).
pub fn kill_after_lines(mut cmd: Command, after: u64) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tenantry");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    for _ in 0..after {
        match lines.next() {
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = child.kill();
    child.wait().expect("reap tenantry");
}

/// `tenant list --json`, parsed.
pub fn tenants(fx: &Fixture) -> Vec<serde_json::Value> {
    let out = ok(fx, &["tenant", "list", "--json"]);
    serde_json::from_str(&out).expect("tenant list --json is JSON")
}

/// Kill moments from a small xorshift generator, repeatable from `TENANTRY_KILL_SEED` (else
/// seeded from the clock, and the seed printed so a failure can be replayed).
pub struct Moments(u64);

impl Moments {
    pub fn from_env() -> Moments {
        let seed = std::env::var("TENANTRY_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        eprintln!("kill moments from TENANTRY_KILL_SEED={seed}");
        Moments(seed)
    }

    /// The next moment, below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}
