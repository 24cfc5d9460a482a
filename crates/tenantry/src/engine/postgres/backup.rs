//! PostgreSQL's own backup of a database or schema tenant: `pg_dump` in the custom format
//! (of the tenant's schema alone, for a schema tenant), taken in a snapshot Tenantry
//! exported (so the manifest's checksums, read in that snapshot, describe the dump exactly),
//! and `pg_restore` into fresh storage. Both run with the server's administrative login, its
//! password passed in the environment, never on the command line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::engine::{Engine, tool};
use crate::error::{Error, Result};
use crate::ident::StorageName;

/// `url` without its password (in the authority or a `password` parameter), with TCP
/// keepalives on so a server that goes silent is noticed, and the password.
fn split_password(url: &str) -> Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).map_err(|e| Error::UnsupportedUrl {
        url: crate::engine::redact_url(url),
        reason: e.to_string(),
    })?;
    let mut password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = parsed.set_password(None);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "password" => password = Some(value.into_owned()),
            _ => pairs.push((key.into_owned(), value.into_owned())),
        }
    }
    for (key, value) in [
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
    ] {
        if !pairs.iter().any(|(k, _)| k == key) {
            pairs.push((key.to_owned(), value.to_owned()));
        }
    }
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    Ok((parsed.to_string(), password))
}

/// A PostgreSQL client tool's command against `url`: its password in the environment, its
/// connect timeout `connect`, killed if dropped.
fn command(tool: &str, url: &str, connect: Duration) -> Result<Command, String> {
    let (url, password) = split_password(url).map_err(|e| e.to_string())?;
    let mut command = Command::new(tool);
    command
        .arg(format!("--dbname={url}"))
        .env("PGCONNECT_TIMEOUT", connect.as_secs().max(1).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    Ok(command)
}

fn spawn(tool: &str, command: &mut Command) -> Result<Child, String> {
    command
        .spawn()
        .map_err(|e| format!("cannot run {tool}: {e} (install PostgreSQL's client tools)"))
}

/// `pg_dump` of the database at `url` (of its `schema` alone, if given) as the exported
/// `snapshot` sees it, into `dest`.
pub(super) async fn dump(
    url: &str,
    connect: Duration,
    snapshot: &str,
    schema: Option<&StorageName>,
    dest: &Path,
) -> Result<(), String> {
    let mut command = command("pg_dump", url, connect)?;
    command.args([
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        // A table lock it cannot have within a minute (a migration's) fails the dump.
        "--lock-wait-timeout=60s",
    ]);
    command
        .arg(format!("--snapshot={snapshot}"))
        .arg(format!("--file={}", dest.display()));
    if let Some(schema) = schema {
        // Quoted, the name is matched as it is, not as a pattern.
        command.arg(format!("--schema={}", Engine::Postgres.quote(schema)));
    }
    let child = spawn("pg_dump", &mut command)?;
    tool::watch_file("pg_dump", child, dest, tool::SILENCE).await
}

/// `pg_restore` of `file` into the database at `url`, stopping at the first error, in one
/// transaction. `into_schema`: a schema tenant's dump, restored into its freshly
/// provisioned (so existing, empty) schema: everything but the schema itself. The file is
/// fed through a pipe, so a server gone silent while it loads rows is noticed.
pub(super) async fn restore(
    url: &str,
    connect: Duration,
    file: &Path,
    into_schema: bool,
) -> Result<(), String> {
    let mut command = command("pg_restore", url, connect)?;
    command.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ]);
    let mut list = None;
    if into_schema {
        // Read from the file alone: no server is asked.
        let toc = Command::new("pg_restore")
            .arg("--list")
            .arg("--")
            .arg(file)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                format!("cannot run pg_restore: {e} (install PostgreSQL's client tools)")
            })?;
        if !toc.status.success() {
            return Err(format!(
                "pg_restore --list failed ({}): {}",
                toc.status,
                String::from_utf8_lossy(&toc.stderr).trim()
            ));
        }
        let path = std::env::temp_dir().join(format!(
            "tenantry-{}.list",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        ));
        std::fs::write(
            &path,
            without_schemas(&String::from_utf8_lossy(&toc.stdout)),
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        command.arg(format!("--use-list={}", path.display()));
        list = Some(path);
    }
    let restored = async {
        let input = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let child = spawn("pg_restore", command.stdin(Stdio::piped()))?;
        // Once it has all its input it builds indexes and checks constraints, which may
        // rightly take longer than any silence; a server gone meanwhile is noticed by the
        // connection's keepalives.
        tool::feed("pg_restore", child, input, tool::SILENCE, None).await
    }
    .await;
    if let Some(path) = list {
        let _ = std::fs::remove_file(path);
    }
    restored
}

/// A dump's table of contents (`pg_restore --list`) without its `SCHEMA` entries: an entry
/// reads `<id>; <oid> <oid> <kind> <namespace> <name> <owner>`.
fn without_schemas(toc: &str) -> String {
    toc.lines()
        .filter(|line| line.split_whitespace().nth(3) != Some("SCHEMA"))
        .fold(String::new(), |mut kept, line| {
            kept.push_str(line);
            kept.push('\n');
            kept
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (url, password) =
            split_password("postgres://admin:s%40cr+et@db.example:5432/tenant_x").expect("url");
        assert!(
            url.starts_with("postgres://admin@db.example:5432/tenant_x?keepalives=1"),
            "{url}"
        );
        assert_eq!(password.as_deref(), Some("s@cr+et"));
        let (url, password) =
            split_password("postgres://admin@db/x?password=p%26w&sslmode=disable").expect("url");
        assert!(
            !url.contains("p%26w") && url.contains("sslmode=disable"),
            "{url}"
        );
        assert_eq!(password.as_deref(), Some("p&w"));
        let (_, none) = split_password("postgres://admin@db/x").expect("url");
        assert_eq!(none, None);
    }

    #[test]
    fn a_schema_dump_restores_everything_but_its_schema() {
        let toc = ";\n; Archive created at 2026-11-23\n;\n\
                   5; 2615 16390 SCHEMA - tenant_x admin\n\
                   216; 1259 16391 TABLE tenant_x items admin\n\
                   3350; 0 16391 TABLE DATA tenant_x items admin\n";
        let kept = without_schemas(toc);
        assert!(!kept.contains("SCHEMA - tenant_x"), "{kept}");
        assert!(kept.contains("TABLE tenant_x items") && kept.contains("TABLE DATA"));
    }
}
