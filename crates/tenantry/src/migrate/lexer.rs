//! The one SQL lexer: it tells code from quoted text, comments and dollar-quoted bodies, so
//! statement splitting ([`super::split`]) and verification's table reading
//! ([`super::verify`]) agree on what a migration says.
//!
//! It understands quotes (`'…'`, `"…"`, `` `…` ``, with doubled or backslash-escaped quotes),
//! `--` and `/* */` comments, `#` comments where the engine has them (MySQL), and
//! PostgreSQL's dollar quotes (`$tag$ … $tag$`, the tag possibly empty).

/// A piece of SQL text, with the byte offset where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One character of code.
    Code(usize, char),
    /// A quoted string or identifier, quotes included; `quote` is its opening character.
    Quoted(usize, char, &'a str),
    /// A comment, its markers included.
    Comment(usize, &'a str),
    /// A dollar-quoted body, its tags included.
    Dollar(usize, &'a str),
}

/// The pieces of `sql`. `hash_comments`: `#` starts a comment (MySQL).
pub fn pieces(sql: &str, hash_comments: bool) -> Vec<Piece<'_>> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    // The byte offset of char `i` (the end of the text past the last one).
    let offset = |i: usize| chars.get(i).map_or(sql.len(), |&(o, _)| o);
    let mut out = Vec::new();
    let mut i = 0;
    // Whether the previous piece was part of a word (a `$` there continues the word).
    let mut in_word = false;
    while let Some(c) = at(i) {
        let start = offset(i);
        let next = at(i + 1);
        match c {
            '\'' | '"' | '`' => {
                i += 1;
                while let Some(d) = at(i) {
                    i += 1;
                    if d == '\\' && c != '`' {
                        i += 1;
                    } else if d == c {
                        if at(i) == Some(c) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                let end = offset(i.min(chars.len()));
                out.push(Piece::Quoted(start, c, &sql[start..end]));
                in_word = false;
            }
            '-' if next == Some('-') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                out.push(Piece::Comment(start, &sql[start..offset(i)]));
                in_word = false;
            }
            '#' if hash_comments => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                out.push(Piece::Comment(start, &sql[start..offset(i)]));
                in_word = false;
            }
            '/' if next == Some('*') => {
                i += 2;
                while at(i).is_some() && !(at(i) == Some('*') && at(i + 1) == Some('/')) {
                    i += 1;
                }
                i = (i + 2).min(chars.len());
                out.push(Piece::Comment(start, &sql[start..offset(i)]));
                in_word = false;
            }
            '$' if !in_word => match dollar_body(&sql[start..]) {
                Some(len) => {
                    out.push(Piece::Dollar(start, &sql[start..start + len]));
                    i = chars.partition_point(|&(o, _)| o < start + len);
                    in_word = false;
                }
                None => {
                    out.push(Piece::Code(start, c));
                    i += 1;
                    in_word = true;
                }
            },
            _ => {
                out.push(Piece::Code(start, c));
                i += 1;
                in_word = c.is_alphanumeric() || c == '_';
            }
        }
    }
    out
}

/// The length of a dollar-quoted body at the start of `text` (`$tag$ … $tag$`, or to the end
/// when unterminated), or `None` if `text` does not start with a tag.
fn dollar_body(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('$')?;
    let tag_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    if !rest[tag_len..].starts_with('$')
        || rest[..tag_len].starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let tag = &text[..tag_len + 2];
    let body = &text[tag.len()..];
    Some(
        body.find(tag)
            .map_or(text.len(), |p| tag.len() + p + tag.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_dollar_bodies_are_pieces_of_their_own() {
        let sql = "SELECT 'a;b', \"c\" -- x;\n/* y; */ $f$ ; $f$ $1 #z";
        let kinds: Vec<String> = pieces(sql, false)
            .iter()
            .filter_map(|p| match p {
                Piece::Code(_, c) if c.is_whitespace() => None,
                Piece::Code(_, c) => Some(c.to_string()),
                Piece::Quoted(_, _, t) | Piece::Comment(_, t) | Piece::Dollar(_, t) => {
                    Some(format!("[{t}]"))
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "S",
                "E",
                "L",
                "E",
                "C",
                "T",
                "['a;b']",
                ",",
                "[\"c\"]",
                "[-- x;]",
                "[/* y; */]",
                "[$f$ ; $f$]",
                "$",
                "1",
                "#",
                "z"
            ]
        );
        let hashed = pieces("SELECT 1 # two; three", true);
        assert!(matches!(
            hashed.last(),
            Some(Piece::Comment(_, "# two; three"))
        ));
    }

    #[test]
    fn escaped_and_doubled_quotes_stay_inside() {
        let p = pieces(r"'it''s', 'a\';b'", false);
        assert_eq!(p[0], Piece::Quoted(0, '\'', "'it''s'"));
        assert_eq!(p[3], Piece::Quoted(9, '\'', r"'a\';b'"));
    }

    #[test]
    fn a_dollar_inside_a_word_is_code() {
        let p = pieces("a$b$ $x$q$x$", false);
        assert!(matches!(p[1], Piece::Code(_, '$')));
        assert!(matches!(p.last(), Some(Piece::Dollar(_, "$x$q$x$"))));
    }
}
