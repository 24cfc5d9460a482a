//! Saying where in its file a migration failed: the file's own line (not the line of the
//! database server's source that PostgreSQL reports), and the statement, shortened.

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};

use super::source::Migration;
use super::split;
use crate::error::{Error, FailedAt};

/// Text sent to the database in one go, and where it starts in the migration file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent<'a> {
    pub text: &'a str,
    pub offset: usize,
}

impl<'a> Sent<'a> {
    /// The whole file.
    pub fn whole(migration: &'a Migration) -> Sent<'a> {
        Sent {
            text: &migration.sql,
            offset: 0,
        }
    }

    /// One statement of the file.
    pub fn statement(statement: &'a split::Statement) -> Sent<'a> {
        Sent {
            text: &statement.text,
            offset: statement.offset,
        }
    }
}

/// Locates `error`, raised by the database while it ran `sent`, in `migration`'s file.
pub(crate) fn locate(migration: &Migration, sent: Sent<'_>, error: &sqlx::Error) -> FailedAt {
    let sql = migration.sql.as_str();
    let Some(db) = error.as_database_error() else {
        return FailedAt {
            line: None,
            statement: None,
            message: crate::error::said(error),
        };
    };
    let message = db.message().to_owned();
    let whole = sent.offset == 0 && sent.text.len() == sql.len();
    // PostgreSQL: a character position within the text sent.
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        let offset = match pg.position() {
            Some(PgErrorPosition::Original(position)) => sent
                .text
                .char_indices()
                .nth(position.saturating_sub(1))
                .map(|(byte, _)| sent.offset + byte),
            _ => None,
        };
        let (line, statement) = match offset {
            Some(offset) => (Some(line_of(sql, offset)), containing(sql, offset)),
            None if !whole => (Some(line_of(sql, sent.offset)), Some(sent.text)),
            None => (None, None),
        };
        return FailedAt {
            line,
            statement: statement.map(short),
            message,
        };
    }
    // SQLite says only `near "TOKEN"`: the place, when the token occurs once in the text.
    if whole && let Some(offset) = near_token(&message).and_then(|token| only_place(sql, token)) {
        return FailedAt {
            line: Some(line_of(sql, offset)),
            statement: containing(sql, offset).map(short),
            message,
        };
    }
    // MySQL: "… at line N" of the statement sent.
    let (message, line_in_sent) = match split_line_suffix(&message) {
        Some((text, n)) => (text.to_owned(), n),
        None => (message.clone(), 1),
    };
    FailedAt {
        line: (!whole).then(|| line_of(sql, sent.offset) + line_in_sent - 1),
        statement: (!whole).then(|| short(sent.text)),
        message,
    }
}

/// Builds the error of a migration that failed, located when `sent` is known.
pub(crate) fn failed(
    owner: &str,
    migration: &Migration,
    sent: Option<Sent<'_>>,
) -> impl FnOnce(sqlx::Error) -> Error {
    let owner = owner.to_owned();
    let version = migration.version;
    let file = migration.path.clone();
    let located = move |source: &sqlx::Error| match sent {
        Some(sent) => locate(migration, sent, source),
        None => FailedAt {
            line: None,
            statement: None,
            message: crate::error::said(source),
        },
    };
    move |source| Error::MigrationFailed {
        failure: Box::new(located(&source)),
        tenant: owner,
        version,
        file,
        source,
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The statement of `sql` that contains byte `offset`.
fn containing(sql: &str, offset: usize) -> Option<&str> {
    let statements = split::statements_at(sql, false);
    let found = statements.iter().rev().find(|s| s.offset <= offset)?;
    // Borrow the text from the file: from the statement's start to its end.
    let end = (found.offset + found.text.len()).min(sql.len());
    sql.get(found.offset..end)
}

/// `"… at line N"` at the end of a MySQL message: the message without it, and N.
fn split_line_suffix(message: &str) -> Option<(&str, usize)> {
    let (text, n) = message.rsplit_once(" at line ")?;
    Some((text, n.trim().parse().ok().filter(|&n| n > 0)?))
}

/// The token of SQLite's `near "TOKEN": syntax error`.
fn near_token(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("near \"")?;
    let (token, _) = rest.split_once("\":")?;
    (!token.is_empty()).then_some(token)
}

/// The byte offset of `token` in `sql` if it occurs exactly once.
fn only_place(sql: &str, token: &str) -> Option<usize> {
    let mut found = sql.match_indices(token).map(|(i, _)| i);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// A statement on one line, at most 80 characters.
pub(crate) fn short(statement: &str) -> String {
    let one_line = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(79).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_statements_are_the_file_s_own() {
        let sql = "CREATE TABLE a (id INT);\n\nCREATE TABLEE b (id INT);\n";
        assert_eq!(line_of(sql, 0), 1);
        assert_eq!(line_of(sql, 26), 3);
        assert_eq!(containing(sql, 33), Some("CREATE TABLEE b (id INT)"));
        assert_eq!(
            split_line_suffix("You have an error near 'x' at line 2"),
            Some(("You have an error near 'x'", 2))
        );
        assert_eq!(split_line_suffix("Table 'tags' already exists"), None);
        assert_eq!(near_token("near \"TABLEE\": syntax error"), Some("TABLEE"));
        assert_eq!(only_place(sql, "TABLEE"), Some(33));
        assert_eq!(only_place(sql, "TABLE"), None);
        assert_eq!(short("SELECT\n    1,\n    2"), "SELECT 1, 2");
        assert_eq!(short(&"x".repeat(100)).chars().count(), 80);
    }
}
