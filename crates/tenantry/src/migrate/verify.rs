//! Proving a tenant's storage holds what its migration set says: every migration in the
//! ledger with its checksum, and every table the migrations create.

use std::collections::BTreeSet;

use sqlx::AnyConnection;
use sqlx::Row;

use super::apply::check_ledger;
use super::ledger;
use super::source::MigrationSet;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Checks the tenant's ledger against `set` and the tables against [`expected_tables`].
pub async fn verify(
    conn: &mut AnyConnection,
    engine: Engine,
    tenant: &str,
    set: &MigrationSet,
) -> Result<()> {
    let fail = |detail: String| Error::VerifyFailed {
        tenant: tenant.to_owned(),
        detail,
    };
    let applied = ledger::read(conn)
        .await
        .map_err(Error::storage(tenant, "read the migration ledger"))?;
    check_ledger(tenant, &applied, set)?;
    let missing: Vec<String> = set
        .iter()
        .filter(|m| {
            !applied
                .iter()
                .any(|row| row.version == m.version && row.is_applied())
        })
        .map(|m| m.version.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "the ledger lacks migration(s) {}",
            missing.join(", ")
        )));
    }
    let rows = sqlx::query(engine.list_tables_sql())
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::storage(tenant, "list tables"))?;
    let present: BTreeSet<String> = rows
        .iter()
        .map(|row| {
            row.try_get::<String, _>("name")
                .map(|n| n.to_ascii_lowercase())
        })
        .collect::<sqlx::Result<_>>()
        .map_err(Error::storage(tenant, "list tables"))?;
    let absent: Vec<String> = expected_tables(set).difference(&present).cloned().collect();
    if !absent.is_empty() {
        return Err(fail(format!("table(s) missing: {}", absent.join(", "))));
    }
    if !present.contains(ledger::TABLE) {
        return Err(fail(format!(
            "the ledger table {} is missing",
            ledger::TABLE
        )));
    }
    Ok(())
}

/// The tables a migration set leaves behind, read from its `CREATE TABLE`, `DROP TABLE` and
/// `ALTER TABLE … RENAME TO` statements in order. Names are lowercased and unqualified.
pub fn expected_tables(set: &MigrationSet) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    for migration in set.iter() {
        let words = words(&migration.sql);
        let mut i = 0;
        while i < words.len() {
            let at = |k: usize| words.get(i + k).map(String::as_str).unwrap_or("");
            match (at(0), at(1)) {
                ("create", "table") => {
                    let mut k = 2;
                    if at(k) == "if" {
                        k += 3; // if not exists
                    }
                    if !at(k).is_empty() {
                        tables.insert(unqualified(at(k)));
                    }
                    i += k;
                }
                ("drop", "table") => {
                    let mut k = 2;
                    if at(k) == "if" {
                        k += 2; // if exists
                    }
                    tables.remove(&unqualified(at(k)));
                    i += k;
                }
                ("alter", "table") if at(3) == "rename" && at(4) == "to" => {
                    tables.remove(&unqualified(at(2)));
                    tables.insert(unqualified(at(5)));
                    i += 5;
                }
                _ => i += 1,
            }
        }
    }
    tables
}

fn unqualified(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).to_owned()
}

/// Lowercased words of SQL text with comments removed and quotes stripped from identifiers;
/// punctuation other than `.` separates words.
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut out);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out);
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '\'' => {
                flush(&mut word, &mut out);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            '"' | '`' => {}
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '$' => {
                word.extend(c.to_lowercase());
            }
            _ => flush(&mut word, &mut out),
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(files: &[(&str, &str)], expected: &[&str]) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let set = MigrationSet::load(dir.path()).expect("load");
        let got: Vec<String> = expected_tables(&set).into_iter().collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn follows_create_drop_and_rename() {
        check(
            &[
                (
                    "1_a.sql",
                    "CREATE TABLE IF NOT EXISTS \"Users\" (id INT); -- create table ghost\nCREATE TABLE public.orders (x TEXT DEFAULT 'create table nope');",
                ),
                (
                    "2_b.sql",
                    "/* drop table orders */ DROP TABLE IF EXISTS users; ALTER TABLE orders RENAME TO purchases;",
                ),
            ],
            &["purchases"],
        );
    }
}
