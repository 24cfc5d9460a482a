//! MySQL's and MariaDB's own backup of a database tenant: `mysqldump` in one transaction,
//! loaded back with `mysql` into fresh storage.
//!
//! A MySQL snapshot cannot be handed to another session, so the manifest's checksums and
//! the dump are read in two snapshots that see the same rows: both are taken while the
//! tenant's tables are read-locked, and the lock is released once the dump's output shows it
//! has begun (its first `CREATE TABLE`, written only after its transaction started; the
//! tool writes through a buffer, so that is its first few KiB). The tenant's writes wait
//! that long, and how long is returned.
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AssertSqlSafe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::{Family, command};
use crate::engine::{Engine, tool};
use crate::ident::{SqlName, StorageName};

/// What the dump writes once its transaction has started.
const STARTED: &[u8] = b"CREATE TABLE";
/// How long the dump may take to start once connected (the tenant's writes wait meanwhile).
const START_WAIT: Duration = Duration::from_secs(30);

/// Read-locks every table of the database `lock` is connected to, waiting at most a minute
/// (for a migration's lock, say). A table whose name Tenantry cannot quote refuses the
/// backup before anything is dumped.
pub(super) async fn lock_tables(lock: &mut AnyConnection) -> Result<(), String> {
    let failed = |e: sqlx::Error| format!("cannot lock its tables: {e}");
    let names: Vec<String> = sqlx::query_scalar(super::LIST_TABLES)
        .fetch_all(&mut *lock)
        .await
        .map_err(failed)?;
    sqlx::raw_sql("SET SESSION lock_wait_timeout = 60")
        .execute(&mut *lock)
        .await
        .map_err(failed)?;
    let mut tables = Vec::with_capacity(names.len());
    for name in &names {
        let name = SqlName::new("table", name).map_err(|e| e.to_string())?;
        tables.push(format!("{} READ", Engine::Mysql.quote(&name)));
    }
    if tables.is_empty() {
        return Ok(());
    }
    let sql = format!("LOCK TABLES {}", tables.join(", "));
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(lock)
        .await
        .map_err(failed)?;
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
    let (mut command, _options, family) = command("mysqldump", url, None).await?;
    command.args([
        "--single-transaction",
        "--skip-lock-tables",
        "--hex-blob",
        "--triggers",
        "--routines",
        "--no-tablespaces",
    ]);
    if family == Family::Mysql {
        // MySQL's own (8.0.32 on), with GTIDs on, would otherwise flush tables under a
        // global read lock, which waits on ours.
        command.arg("--set-gtid-purged=OFF");
    }
    command
        // The database last, after every option.
        .arg(database.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run mysqldump: {e} (install the MySQL or MariaDB client)"))?;
    let (Some(mut out), Some(said)) = (child.stdout.take(), tool::collect_errors(&mut child))
    else {
        return Err("mysqldump's output was not captured".into());
    };
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
                Some(_) => tool::SILENCE,
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
    let paused = copied?;
    tool::outcome("mysqldump", status, said).await?;
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
/// error. The file is fed through a pipe, so a server gone silent is noticed: the client
/// stops reading while it waits on the server.
pub(super) async fn restore(
    url: &str,
    connect: Duration,
    database: &StorageName,
    file: &Path,
) -> Result<(), String> {
    let input = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (mut command, _options, _) = command("mysql", url, Some(connect)).await?;
    command
        .arg("--batch")
        .arg(format!("--database={database}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run mysql: {e} (install the MySQL or MariaDB client)"))?;
    // What follows its last input is a few small statements.
    tool::feed("mysql", child, input, tool::SILENCE, Some(tool::SILENCE)).await
}
