//! Splitting migration text into statements, for engines whose DDL is not transactional: each
//! statement runs on its own so progress can be recorded and a failure named.

/// One statement of a migration file and where it starts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement without its comments and surrounding whitespace; line breaks inside it
    /// are kept, so a line the database names within it is a line of the file.
    pub text: String,
    /// The byte offset of its first character in the file.
    pub offset: usize,
}

/// The statements of `sql`, without empty ones. Understands quotes (`'…'`, `"…"`, `` `…` ``,
/// with doubled or backslash-escaped quotes), `--`, `#` and `/* */` comments. Stored
/// programs that need a `DELIMITER` are not supported.
pub fn statements(sql: &str) -> Vec<String> {
    statements_at(sql).into_iter().map(|s| s.text).collect()
}

/// [`statements`], each with where it starts in `sql`.
pub fn statements_at(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current = Current::default();
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut i = 0;
    while let Some(&(offset, c)) = chars.get(i) {
        let next = at(i + 1);
        match c {
            '\'' | '"' | '`' => {
                current.push(offset, c);
                i += 1;
                while let Some(d) = at(i) {
                    current.push_quoted(d);
                    i += 1;
                    if d == '\\' && c != '`' {
                        if let Some(e) = at(i) {
                            current.push_quoted(e);
                            i += 1;
                        }
                    } else if d == c {
                        if at(i) == Some(c) {
                            current.push_quoted(c);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                continue;
            }
            '-' if next == Some('-') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '#' => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                i += 2;
                // The comment becomes a space, keeping its line breaks.
                current.push_quoted(' ');
                while let Some(c) = at(i) {
                    if c == '*' && at(i + 1) == Some('/') {
                        break;
                    }
                    if c == '\n' {
                        current.push_quoted('\n');
                    }
                    i += 1;
                }
                i += 2;
                continue;
            }
            ';' => current.finish(&mut out),
            _ => current.push(offset, c),
        }
        i += 1;
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
        assert_eq!(statements(sql), expected, "{sql}");
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
        let found = super::statements_at(sql);
        assert_eq!(found.len(), 2);
        assert_eq!(&sql[found[0].offset..][..6], "CREATE");
        assert_eq!(&sql[found[1].offset..][..6], "INSERT");
        assert_eq!(found[1].text, "INSERT INTO a\nVALUES (1)");
        let with_comment = super::statements_at("SELECT /* x\ny */ 1");
        assert_eq!(with_comment[0].text, "SELECT  \n 1");
    }
}
