//! A PgBouncer of a test's own, in transaction mode, in front of a PostgreSQL server: for
//! proving that what Tenantry does on a connection survives a transaction-mode pooler.
//!
//! Any database name passes through (`* = host=… port=…`), and any login role of the
//! upstream server can log in with its own password: `auth_type = scram-sha-256` with
//! `auth_user = postgres` and PgBouncer's default `auth_query`, which reads the role's SCRAM
//! secret from `pg_authid` (refusing roles without `LOGIN` and expired passwords). So a role
//! Tenantry creates at runtime logs in through the bouncer with the password Tenantry gave
//! it, and a wrong password is refused by the bouncer itself. The upstream server must let
//! `postgres` and the roles in without a password from the bouncer's address (loopback
//! `trust`, as in CI); PgBouncer then opens server connections as the client's role.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where PgBouncer may be installed (Debian's package puts it in `/usr/sbin`).
const BINARIES: &[&str] = &[
    "/usr/sbin/pgbouncer",
    "/usr/bin/pgbouncer",
    "/usr/local/bin/pgbouncer",
];
/// How long PgBouncer may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Attempts at starting, each on a fresh port (another process may take a free port first).
const ATTEMPTS: usize = 3;

/// A running PgBouncer; killed, and its directory removed, on drop.
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Starts a bouncer in front of `upstream_host:upstream_port` with server pools of 20.
    /// `None` when PgBouncer is not installed, unless `CI` is set (then it panics).
    pub fn start(upstream_host: &str, upstream_port: u16) -> Option<PgBouncer> {
        Self::start_with_pool_size(upstream_host, upstream_port, 20)
    }

    /// [`PgBouncer::start`] with `default_pool_size = pool_size`: at most that many server
    /// connections per database and role, shared by all of its clients in turn.
    pub fn start_with_pool_size(
        upstream_host: &str,
        upstream_port: u16,
        pool_size: u32,
    ) -> Option<PgBouncer> {
        let Some(binary) = BINARIES.iter().map(Path::new).find(|p| p.exists()) else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set and PgBouncer is not installed (looked for {}); \
                     install it with `apt-get install pgbouncer`",
                    BINARIES.join(", ")
                );
            }
            eprintln!("skipping: PgBouncer is not installed (apt-get install pgbouncer)");
            return None;
        };
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("tenantry-pgbouncer-")
                .tempdir()
                .expect("temp dir for PgBouncer");
            let port = free_port();
            let config = dir.path().join("pgbouncer.ini");
            std::fs::write(
                &config,
                config_text(upstream_host, upstream_port, port, pool_size),
            )
            .expect("write pgbouncer.ini");
            let child = spawn(binary, &config, &dir.path().join("pgbouncer.log"));
            let mut bouncer = PgBouncer { child, port, dir };
            match bouncer.wait_until_accepting() {
                Ok(()) => return Some(bouncer),
                Err(log) => failures.push(log),
            }
        }
        panic!(
            "PgBouncer did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    /// `postgres://<user>:<password>@127.0.0.1:<port>/<database>`, through the bouncer.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        let mut url = url::Url::parse(&format!("postgres://127.0.0.1:{}/", self.port))
            .expect("a valid base URL");
        url.set_username(user).expect("a URL with a host");
        url.set_password(Some(password)).expect("a URL with a host");
        url.set_path(database);
        url.to_string()
    }

    /// The loopback port the bouncer listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// Polls until the bouncer accepts a TCP connection; on failure, its log.
    fn wait_until_accepting(&mut self) -> Result<(), String> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("PgBouncer exited ({status}):\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "PgBouncer did not accept connections on {address} within {START_DEADLINE:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(upstream_host: &str, upstream_port: u16, port: u16, pool_size: u32) -> String {
    // extra_float_digits: sqlx sends it at startup, and PgBouncer 1.18 refuses startup
    // parameters it does not track unless told to ignore them. Nothing else is ignored: a
    // client that relies on `options` (a search path, say) must fail here, not lose it.
    format!(
        "[databases]
* = host={upstream_host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
auth_type = scram-sha-256
auth_user = postgres
ignore_startup_parameters = extra_float_digits
server_login_retry = 1
query_wait_timeout = 30
"
    )
}

/// PgBouncer refuses to run as root: as root, it is told to switch to `nobody` once it has
/// read its configuration (it writes no file: no log file, pid file or Unix socket).
fn spawn(binary: &Path, config: &Path, log: &Path) -> Child {
    let log = File::create(log).expect("create the PgBouncer log");
    let mut cmd = Command::new(binary);
    if crate::cluster::is_root() {
        cmd.args(["-u", "nobody"]);
    }
    cmd.arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
