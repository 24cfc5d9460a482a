//! Splitting migration text into statements, for engines whose DDL is not transactional: each
//! statement runs on its own so progress can be recorded and a failure named.

/// The statements of `sql`, without empty ones. Understands quotes (`'…'`, `"…"`, `` `…` ``,
/// with doubled or backslash-escaped quotes), `--`, `#` and `/* */` comments. Stored
/// programs that need a `DELIMITER` are not supported.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' | '"' | '`' => {
                current.push(c);
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    current.push(d);
                    i += 1;
                    if d == '\\' && c != '`' {
                        if let Some(&e) = chars.get(i) {
                            current.push(e);
                            i += 1;
                        }
                    } else if d == c {
                        if chars.get(i) == Some(&c) {
                            current.push(c);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                continue;
            }
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
                current.push(' ');
                continue;
            }
            ';' => {
                push(&mut out, &mut current);
            }
            _ => current.push(c),
        }
        i += 1;
    }
    push(&mut out, &mut current);
    out
}

fn push(out: &mut Vec<String>, current: &mut String) {
    let statement = current.trim();
    if !statement.is_empty() {
        out.push(statement.to_owned());
    }
    current.clear();
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
}
