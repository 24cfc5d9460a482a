//! Proving a tenant's storage holds what its migration set says: every migration in the
//! ledger with its checksum, and every table the migrations create.

use std::collections::BTreeSet;

use sqlx::AnyConnection;

use super::apply::check_ledger;
use super::ledger;
use super::lexer::{self, Piece};
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
    let expected = expected_tables(set);
    let mut names: Vec<String> = expected.iter().cloned().collect();
    names.push(ledger::TABLE.to_owned());
    let present = engine
        .dialect()
        .present_tables(conn, &names)
        .await
        .map_err(Error::storage(tenant, "list tables"))?;
    let absent: Vec<String> = expected.difference(&present).cloned().collect();
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

/// The tables a migration set leaves behind, read from its `CREATE TABLE`, `DROP TABLE`,
/// `ALTER TABLE … RENAME TO` and `RENAME TABLE` statements in order. Names are lowercased
/// and unqualified; text in quotes, comments and dollar-quoted bodies is skipped.
pub fn expected_tables(set: &MigrationSet) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    for migration in set.iter() {
        let words = words(&migration.sql);
        let at = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
        let mut i = 0;
        while i < words.len() {
            match (at(i), at(i + 1)) {
                ("create", "table") => {
                    let mut k = i + 2;
                    if at(k) == "if" {
                        k += 3; // if not exists
                    }
                    if !at(k).is_empty() {
                        tables.insert(unqualified(at(k)));
                    }
                    i = k + 1;
                }
                ("drop", "table") => {
                    let mut k = i + 2;
                    if at(k) == "if" {
                        k += 2; // if exists
                    }
                    loop {
                        tables.remove(&unqualified(at(k)));
                        if at(k + 1) != "," {
                            break;
                        }
                        k += 2;
                    }
                    i = k + 1;
                }
                ("alter", "table") => {
                    let mut k = i + 2;
                    if at(k) == "if" {
                        k += 2; // if exists
                    }
                    if at(k) == "only" {
                        k += 1;
                    }
                    if at(k + 1) == "rename" && at(k + 2) == "to" {
                        tables.remove(&unqualified(at(k)));
                        tables.insert(unqualified(at(k + 3)));
                        k += 3;
                    }
                    i = k + 1;
                }
                ("rename", "table") => {
                    // MySQL: RENAME TABLE a TO b [, c TO d]
                    let mut k = i + 2;
                    while at(k + 1) == "to" {
                        tables.remove(&unqualified(at(k)));
                        tables.insert(unqualified(at(k + 2)));
                        if at(k + 3) != "," {
                            break;
                        }
                        k += 4;
                    }
                    i = k + 1;
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

/// Lowercased words of SQL text, with `,` and `;` as words of their own; comments, string
/// literals and dollar-quoted bodies removed; quotes stripped from identifiers. Read by the
/// one lexer ([`super::lexer`]).
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    let code = |c: char, word: &mut String, out: &mut Vec<String>| match c {
        ',' | ';' => {
            flush(word, out);
            out.push(c.to_string());
        }
        c if c.is_alphanumeric() || c == '_' || c == '.' || c == '$' => {
            word.extend(c.to_lowercase());
        }
        _ => flush(word, out),
    };
    for piece in lexer::pieces(sql, false) {
        match piece {
            Piece::Code(_, c) => code(c, &mut word, &mut out),
            // A quoted identifier is read as its name.
            Piece::Quoted(_, '"' | '`', text) => text
                .chars()
                .filter(|c| *c != '"' && *c != '`')
                .for_each(|c| code(c, &mut word, &mut out)),
            Piece::Quoted(..) | Piece::Comment(..) | Piece::Dollar(..) => {
                flush(&mut word, &mut out)
            }
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
    fn follows_lists_guards_mysql_renames_and_skips_bodies() {
        check(
            &[
                (
                    "1_a.sql",
                    "CREATE TABLE a (x TEXT DEFAULT 'it''s; create table nope'); CREATE TABLE b (x INT); CREATE TABLE c (x INT);",
                ),
                (
                    "2_b.sql",
                    "DROP TABLE a, b; ALTER TABLE IF EXISTS ONLY c RENAME TO d;",
                ),
                (
                    "3_c.sql",
                    "CREATE TABLE e (x INT); RENAME TABLE e TO f, d TO g;",
                ),
                (
                    "4_d.sql",
                    "CREATE FUNCTION mk() RETURNS void AS $body$ BEGIN CREATE TABLE ghost (x INT); END $body$ LANGUAGE plpgsql; CREATE TABLE h (x INT);",
                ),
            ],
            &["f", "g", "h"],
        );
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
