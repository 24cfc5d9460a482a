//! A throwaway PostgreSQL cluster of a test's own, on a free loopback port, that the test
//! can stop and start again: for "the server went away" and for authentication tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A private PostgreSQL cluster; stopped and removed on drop.
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The superuser's password when the cluster checks passwords.
    password: Option<String>,
}

impl TempCluster {
    /// Creates and starts a cluster with trust authentication. `None` when PostgreSQL's
    /// server binaries are not installed, unless `CI` is set (then it panics).
    pub fn start() -> Option<TempCluster> {
        Self::start_with(None)
    }

    /// Creates and starts a cluster that checks passwords (scram-sha-256) for every login;
    /// the superuser `postgres` gets `password`.
    pub fn start_with_password(password: &str) -> Option<TempCluster> {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> Option<TempCluster> {
        let Some(bin) = server_bin_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set and no PostgreSQL server binaries were found under /usr/lib/postgresql"
                );
            }
            eprintln!("skipping: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!(
            "tenantry-pg-{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        ));
        run(as_postgres(&["mkdir", "-p", path(&dir)]), "mkdir");
        let initdb = bin.join("initdb");
        let data = format!("{}/data", path(&dir));
        let pwfile = format!("{}/pwfile", path(&dir));
        let mut args = vec![
            path(&initdb),
            "-D",
            &data,
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ];
        match &password {
            Some(pw) => {
                std::fs::write(&pwfile, format!("{pw}\n")).expect("write pwfile");
                args.extend(["-A", "scram-sha-256", "--pwfile", &pwfile]);
            }
            None => args.extend(["-A", "trust"]),
        }
        run(as_postgres(&args), "initdb");
        let cluster = TempCluster {
            dir,
            bin,
            port,
            password,
        };
        cluster.resume();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("postgres://postgres:{pw}@127.0.0.1:{}/postgres", self.port),
            None => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// Stops the server at once, dropping every connection (the server "goes away").
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            path(&self.dir)
        );
        let log = format!("{}/server.log", path(&self.dir));
        self.pg_ctl(&["start", "-w", "-o", &options, "-l", &log]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = format!("{}/data", path(&self.dir));
        let mut all = vec![path(&pg_ctl), "-D", &data];
        all.extend_from_slice(args);
        run(as_postgres(&all), "pg_ctl");
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = format!("{}/data", path(&self.dir));
        let _ = as_postgres(&[path(&pg_ctl), "-D", &data, "stop", "-m", "immediate"]).output();
        let _ = as_postgres(&["rm", "-rf", path(&self.dir)]).output();
    }
}

fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root: run as the `postgres` user when we are root.
fn as_postgres(args: &[&str]) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).args(args);
        cmd
    } else {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]);
        cmd
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}
