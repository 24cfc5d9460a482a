//! Splitting migration text into statements, for engines whose DDL is not transactional: each
//! statement runs on its own so progress can be recorded and a failure named.

use super::lexer::{self, Piece};

/// One statement of a migration file and where it starts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement without its comments and surrounding whitespace; line breaks inside it
    /// are kept, so a line the database names within it is a line of the file.
    pub text: String,
    /// The byte offset of its first character in the file.
    pub offset: usize,
}

/// The statements of `sql`, without empty ones, as [`super::lexer`] reads them
/// (`hash_comments`: `#` starts a comment, as on MySQL). Stored programs that need a
/// `DELIMITER` are not supported.
pub fn statements(sql: &str, hash_comments: bool) -> Vec<String> {
    statements_at(sql, hash_comments)
        .into_iter()
        .map(|s| s.text)
        .collect()
}

/// [`statements`], each with where it starts in `sql`.
pub fn statements_at(sql: &str, hash_comments: bool) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current = Current::default();
    for piece in lexer::pieces(sql, hash_comments) {
        match piece {
            Piece::Code(_, ';') => current.finish(&mut out),
            Piece::Code(offset, c) => current.push(offset, c),
            Piece::Quoted(offset, _, text) | Piece::Dollar(offset, text) => {
                let mut chars = text.chars();
                if let Some(first) = chars.next() {
                    current.push(offset, first);
                }
                chars.for_each(|c| current.push_quoted(c));
            }
            // A block comment becomes a space, keeping its line breaks; a line comment goes.
            Piece::Comment(_, text) if text.starts_with("/*") => {
                current.push_quoted(' ');
                text.matches('\n').for_each(|_| current.push_quoted('\n'));
            }
            Piece::Comment(..) => {}
        }
    }
    current.finish(&mut out);
    out
}

/// The statement being read.
#[derive(Default)]
struct Current {
    text: String,
    /// Where its first non-blank character is.
    start: Option<usize>,
}

impl Current {
    fn push(&mut self, offset: usize, c: char) {
        if self.start.is_none() && !c.is_whitespace() {
            self.start = Some(offset);
        }
        self.text.push(c);
    }

    /// A character that follows one pushed with [`Current::push`] (or a comment's stand-in).
    fn push_quoted(&mut self, c: char) {
        self.text.push(c);
    }

    fn finish(&mut self, out: &mut Vec<Statement>) {
        let text = self.text.trim();
        if let (false, Some(offset)) = (text.is_empty(), self.start) {
            out.push(Statement {
                text: text.to_owned(),
                offset,
            });
        }
        self.text.clear();
        self.start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    fn check(sql: &str, expected: &[&str]) {
        assert_eq!(statements(sql, true), expected, "{sql}");
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        check(
            "CREATE TABLE a (x INT); INSERT INTO a VALUES (1);",
            &["CREATE TABLE a (x INT)", "INSERT INTO a VALUES (1)"],
        );
        check(
            "INSERT INTO a VALUES ('x;y', 'it''s', 'a\\';b');",
            &["INSERT INTO a VALUES ('x;y', 'it''s', 'a\\';b')"],
        );
        check(
            "-- one; two\nSELECT 1; # three; four\nSELECT /* ; */ 2",
            &["SELECT 1", "SELECT   2"],
        );
        check(
            "CREATE TABLE `we;ird` (x INT)",
            &["CREATE TABLE `we;ird` (x INT)"],
        );
        check(" ;; \n", &[]);
    }

    #[test]
    fn statements_know_where_they_start_and_keep_their_line_breaks() {
        let sql =
            "-- first\nCREATE TABLE a (x INT);\n\n/* a\ncomment */ INSERT INTO a\nVALUES (1);";
        let found = super::statements_at(sql, true);
        assert_eq!(found.len(), 2);
        assert_eq!(&sql[found[0].offset..][..6], "CREATE");
        assert_eq!(&sql[found[1].offset..][..6], "INSERT");
        assert_eq!(found[1].text, "INSERT INTO a\nVALUES (1)");
        let with_comment = super::statements_at("SELECT /* x\ny */ 1", true);
        assert_eq!(with_comment[0].text, "SELECT  \n 1");
    }
}
