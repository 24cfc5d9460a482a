//! MySQL's and MariaDB's own backup of a database tenant: `mysqldump` in one transaction,
//! loaded back with `mysql` into fresh storage.
//!
//! A MySQL snapshot cannot be handed to another session, so the manifest's checksums and
//! the dump are read in two snapshots that see the same rows: both are taken while the
//! tenant's tables are read-locked, and the lock is released as soon as the dump has begun
//! (its first `CREATE TABLE`, written only after its transaction started). The tenant's
//! writes wait for that start only, and how long they waited is returned.
//!
//! The tools run with the server's administrative login; its password is passed in an
//! option file readable by this user alone, never on the command line or in the
//! environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AssertSqlSafe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::engine::{Engine, redact_url};
use crate::error::{Error, Result};
use crate::ident::{SqlName, StorageName};

/// What the dump writes once its transaction has started.
const STARTED: &[u8] = b"CREATE TABLE";
/// How long the dump may take to start once connected (the tenant's writes wait meanwhile).
const START_WAIT: Duration = Duration::from_secs(30);
/// How long a running dump may write nothing before the server is taken for gone (it
/// streams its rows, so a live one never pauses this long).
const SILENCE: Duration = Duration::from_secs(300);

/// How the client tools reach the server: from a `mysql://` URL.
struct Login {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    socket: Option<String>,
}

impl Login {
    fn of(url: &str) -> Result<Login> {
        let parsed = url::Url::parse(url).map_err(|e| Error::UnsupportedUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut login = Login {
            host: parsed.host_str().unwrap_or("localhost").to_owned(),
            port: parsed.port().unwrap_or(3306),
            user: decode(parsed.username()),
            password: parsed.password().map(decode),
            socket: None,
        };
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "user" => login.user = value.into_owned(),
                "password" => login.password = Some(value.into_owned()),
                "socket" => login.socket = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(login)
    }
}

/// An option file holding the password, removed when dropped.
struct OptionFile(PathBuf);

impl OptionFile {
    fn write(login: &Login) -> std::io::Result<OptionFile> {
        let path = std::env::temp_dir().join(format!(
            "tenantry-{}.cnf",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        let guard = OptionFile(path);
        let password = login.password.as_deref().unwrap_or_default();
        let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
        writeln!(file, "[client]\npassword=\"{escaped}\"")?;
        file.sync_all()?;
        Ok(guard)
    }
}

impl Drop for OptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A client tool's command for the server at `url`, with the option file that carries the
/// password (kept until the command is done with).
/// `connect`: its connect timeout, where the tool has the option (`mysqldump` has not).
fn command(
    tool: &str,
    url: &str,
    connect: Option<Duration>,
) -> Result<(Command, OptionFile), String> {
    let login = Login::of(url).map_err(|e| e.to_string())?;
    let options =
        OptionFile::write(&login).map_err(|e| format!("cannot write an option file: {e}"))?;
    let mut command = Command::new(tool);
    // The option file must come first.
    command
        .arg(format!("--defaults-extra-file={}", options.0.display()))
        .arg(format!("--user={}", login.user))
        .arg("--default-character-set=utf8mb4")
        .arg("--max-allowed-packet=1G");
    if let Some(connect) = connect {
        command.arg(format!("--connect-timeout={}", connect.as_secs().max(1)));
    }
    match &login.socket {
        Some(socket) => command.arg(format!("--socket={socket}")),
        None => command
            .arg("--protocol=TCP")
            .arg(format!("--host={}", login.host))
            .arg(format!("--port={}", login.port)),
    };
    command.kill_on_drop(true);
    Ok((command, options))
}

/// Read-locks every table of the database `lock` is connected to, waiting at most a minute
/// (for a migration's lock, say).
pub(super) async fn lock_tables(lock: &mut AnyConnection) -> sqlx::Result<()> {
    let names: Vec<String> = sqlx::query_scalar(super::LIST_TABLES)
        .fetch_all(&mut *lock)
        .await?;
    sqlx::raw_sql("SET SESSION lock_wait_timeout = 60")
        .execute(&mut *lock)
        .await?;
    let tables: Vec<String> = names
        .iter()
        .filter_map(|name| SqlName::new("table", name).ok())
        .map(|name| format!("{} READ", Engine::Mysql.quote(&name)))
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    let sql = format!("LOCK TABLES {}", tables.join(", "));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(lock).await?;
    Ok(())
}

/// `mysqldump` of `database` into `dest` in one transaction; once that transaction has
/// started, `lock`'s tables are unlocked. Returns how long they stayed locked from
/// `locked_at`.
pub(super) async fn dump(
    url: &str,
    connect: Duration,
    database: &StorageName,
    dest: &Path,
    lock: &mut AnyConnection,
    locked_at: Instant,
) -> Result<Duration, String> {
    let (mut command, _options) = command("mysqldump", url, None)?;
    command
        .args([
            "--single-transaction",
            "--skip-lock-tables",
            "--hex-blob",
            "--triggers",
            "--routines",
            "--no-tablespaces",
        ])
        // The database last, after every option.
        .arg(database.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run mysqldump: {e} (install the MySQL or MariaDB client)"))?;
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("mysqldump's output was not captured".into());
    };
    let said = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text).await;
        text
    });
    let copied = async {
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        let mut paused = None;
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Before it starts: its connection, and its wait for a table lock (a
            // migration's) that our read lock let through; after: rows keep coming.
            let limit = match paused {
                None => connect + START_WAIT,
                Some(_) => SILENCE,
            };
            let n = tokio::time::timeout(limit, out.read(&mut buf))
                .await
                .map_err(|_| match paused {
                    None => format!("mysqldump did not start within {} s", limit.as_secs()),
                    Some(_) => format!(
                        "mysqldump wrote nothing for {} s: the server went silent",
                        limit.as_secs()
                    ),
                })?
                .map_err(|e| format!("cannot read mysqldump's output: {e}"))?;
            if n == 0 {
                break;
            }
            if paused.is_none() {
                tail.extend_from_slice(&buf[..n]);
                if tail.windows(STARTED.len()).any(|w| w == STARTED) {
                    paused = Some(unlock(lock, locked_at).await?);
                }
                let keep = tail.len().saturating_sub(STARTED.len());
                tail.drain(..keep);
            }
            file.write_all(&buf[..n])
                .await
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
        file.sync_all()
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        Ok::<_, String>(paused)
    }
    .await;
    if copied.is_err() {
        // Its output is no longer read: it would wait on the pipe forever.
        let _ = child.kill().await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("mysqldump did not finish: {e}"))?;
    let said = said.await.unwrap_or_default();
    let paused = copied?;
    if !status.success() {
        return Err(format!(
            "mysqldump failed ({status}): {}",
            String::from_utf8_lossy(&said).trim()
        ));
    }
    match paused {
        Some(paused) => Ok(paused),
        None => Err("mysqldump wrote no table: the tenant's storage has none".into()),
    }
}

/// Ends the read lock, returning how long it was held.
async fn unlock(lock: &mut AnyConnection, locked_at: Instant) -> Result<Duration, String> {
    sqlx::raw_sql("UNLOCK TABLES")
        .execute(lock)
        .await
        .map_err(|e| format!("cannot unlock the tenant's tables: {e}"))?;
    Ok(locked_at.elapsed())
}

/// Loads the dump `file` into the empty `database` with `mysql`, stopping at the first
/// error.
pub(super) async fn restore(
    url: &str,
    connect: Duration,
    database: &StorageName,
    file: &Path,
) -> Result<(), String> {
    let input =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (mut command, _options) = command("mysql", url, Some(connect))?;
    let output = command
        .arg("--batch")
        .arg(format!("--database={database}"))
        .stdin(Stdio::from(input))
        .output()
        .await
        .map_err(|e| format!("cannot run mysql: {e} (install the MySQL or MariaDB client)"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "mysql failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_comes_from_the_url_and_its_parameters() {
        let login = Login::of("mysql://admin:s%40cr%22et@db.example:3307/x").expect("url");
        assert_eq!(
            (login.host.as_str(), login.port, login.user.as_str()),
            ("db.example", 3307, "admin")
        );
        assert_eq!(login.password.as_deref(), Some("s@cr\"et"));
        let login =
            Login::of("mysql://root@localhost/x?socket=/run/m.sock&password=p%26w").expect("url");
        assert_eq!(login.socket.as_deref(), Some("/run/m.sock"));
        assert_eq!(login.password.as_deref(), Some("p&w"));
    }

    #[test]
    fn the_option_file_is_private_and_goes_away() {
        let login = Login::of("mysql://root:a%5Cb%22c@h/x").expect("url");
        let file = OptionFile::write(&login).expect("write");
        let text = std::fs::read_to_string(&file.0).expect("read");
        assert_eq!(text, "[client]\npassword=\"a\\\\b\\\"c\"\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file.0)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let path = file.0.clone();
        drop(file);
        assert!(!path.exists());
    }
}
