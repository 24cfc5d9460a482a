//! `tenantry migrate add`: a new, empty migration in sqlx-cli's format, numbered after the
//! newest one in the directory. It needs the configuration only: no catalog, no server.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use tenantry::{Config, MigrationSet};

use crate::cli::MigrateAddArgs;
use crate::output;

/// What `--json` prints.
#[derive(Serialize)]
struct Added {
    version: i64,
    files: Vec<String>,
}

pub fn run(config: &Config, args: MigrateAddArgs) -> anyhow::Result<ExitCode> {
    let description = snake_case(&args.description);
    if description.is_empty() {
        bail!(
            "the description {:?} has no ASCII letter or digit; say what the migration does, \
             e.g. `tenantry migrate add \"add users table\"`",
            args.description
        );
    }
    let dir = &config.migrations_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("create the migrations directory {}", dir.display()))?;
    // Loading checks the directory as the runner will: no file is added beside ones it refuses.
    let set = MigrationSet::load(dir).context("read the existing migrations")?;
    let reversible = args.reversible || (!args.simple && newest_is_reversible(&set));
    let version = next_version(utc_timestamp()?, set.latest())?;
    let files = create(dir, version, &description, reversible)?;
    if args.json {
        output::json(&Added {
            version,
            files: files.iter().map(|f| f.display().to_string()).collect(),
        })?;
    } else {
        for file in &files {
            outln!("{}", output::escaped(&file.display().to_string()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Words of ASCII letters and digits, lowercased and joined by `_`: `Add users-table` and
/// `AddUsersTable` both become `add_users_table`. Anything else separates words; so does an
/// uppercase letter after a lowercase one or a digit, or before a lowercase one at the end of
/// an acronym (`HTTPServer`: `http_server`).
fn snake_case(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut separated = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            separated = true;
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let camel = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(char::is_ascii_lowercase))
            });
        if !out.is_empty() && (separated || camel) {
            out.push('_');
        }
        separated = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// sqlx-cli's choice: a reversible pair if the newest migration is one.
fn newest_is_reversible(set: &MigrationSet) -> bool {
    set.iter()
        .last()
        .is_some_and(|m| m.path.to_string_lossy().ends_with(".up.sql"))
}

/// The current UTC time as a version, `YYYYMMDDHHMMSS`.
fn utc_timestamp() -> anyhow::Result<i64> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    stamp
        .parse()
        .with_context(|| format!("read the time {stamp} as a version"))
}

/// `now`, unless a migration as new or newer exists (a clock behind, or two migrations added
/// within a second): then the one after it, so the new file sorts last.
fn next_version(now: i64, newest: i64) -> anyhow::Result<i64> {
    if now > newest {
        return Ok(now);
    }
    newest.checked_add(1).with_context(|| {
        format!("no version follows {newest}, the newest in the migrations directory")
    })
}

/// Creates the migration's files, never replacing one; on failure, removes those it created.
fn create(
    dir: &Path,
    version: i64,
    description: &str,
    reversible: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let parts: &[(&str, &str)] = if reversible {
        &[
            (".up.sql", "-- Add up migration script here\n"),
            (".down.sql", "-- Add down migration script here\n"),
        ]
    } else {
        &[(".sql", "-- Add migration script here\n")]
    };
    let mut created: Vec<PathBuf> = Vec::with_capacity(parts.len());
    let undo = |created: &[PathBuf]| {
        for file in created {
            let _ = std::fs::remove_file(file);
        }
    };
    for (suffix, body) in parts {
        let path = dir.join(format!("{version}_{description}{suffix}"));
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) => {
                undo(&created);
                return Err(e).with_context(|| format!("create {}", path.display()));
            }
        };
        created.push(path.clone());
        if let Err(e) = file.write_all(body.as_bytes()) {
            undo(&created);
            return Err(e).with_context(|| format!("write {}", path.display()));
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_become_snake_case_words() {
        let check = |text: &str, want: &str| assert_eq!(snake_case(text), want, "{text:?}");
        check("add users table", "add_users_table");
        check("  Add users-table!  ", "add_users_table");
        check("AddUsersTable", "add_users_table");
        check("addUsers", "add_users");
        check("HTTPServer logs", "http_server_logs");
        check("ABC", "abc");
        check("v2Api", "v2_api");
        check("2024 cleanup", "2024_cleanup");
        check("already_snake__case_", "already_snake_case");
        check("café au lait", "caf_au_lait");
        check("", "");
        check(" -- ", "");
        check("日本語", "");
    }

    #[test]
    fn a_version_follows_the_newest_one() {
        let check = |now: i64, newest: i64, want: i64| {
            assert_eq!(next_version(now, newest).ok(), Some(want), "{now} {newest}");
        };
        check(20260102030405, 0, 20260102030405);
        check(20260102030405, 20250101000008, 20260102030405);
        check(20260102030405, 20260102030405, 20260102030406);
        check(20260102030405, 20990101000000, 20990101000001);
        assert!(next_version(1, i64::MAX).is_err());
    }
}
