//! The neutral value of a column ([docs/0005](../../../docs/0005-tenant-data.md)): each
//! engine reads a column as text (bytes as hex) and classifies it by its declared type;
//! [`normalize`] turns that text into one JSON value, the same whichever engine held it, and
//! [`Neutral::text`] gives it back as the text an engine writes from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ident::SqlName;

/// What kind of value a column holds, decided from its declared type by its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Integer,
    Float,
    Decimal,
    Bool,
    Bytes,
    Json,
    Timestamp,
    /// Strings, and everything else (dates, times, UUIDs, enums): kept as the engine writes
    /// them.
    Text,
}

/// One column as an engine reads and writes it.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: SqlName,
    pub class: Class,
    /// The type as the engine writes it (`timestamp with time zone`, `tinyint(1)`).
    pub data_type: String,
}

/// Turns the text an engine read (bytes as hex) into the neutral value of `class`. `Err`
/// says why the text is not a value of the class.
pub fn normalize(class: Class, text: &str) -> Result<Value, String> {
    match class {
        Class::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.trim().parse::<u64>().map(Value::from))
            .map_err(|_| format!("`{}` is not an integer", clip(text))),
        Class::Float => float(text),
        Class::Decimal => Ok(Value::String(decimal(text.trim()))),
        Class::Bool => match text.trim() {
            "1" | "t" | "true" | "TRUE" => Ok(Value::Bool(true)),
            "0" | "f" | "false" | "FALSE" => Ok(Value::Bool(false)),
            other => Err(format!("`{}` is not a boolean", clip(other))),
        },
        Class::Bytes => {
            let hex_text = text.strip_prefix("\\x").unwrap_or(text);
            let bytes =
                hex::decode(hex_text).map_err(|e| format!("bad hex from the engine: {e}"))?;
            Ok(Value::String(BASE64.encode(bytes)))
        }
        Class::Json => {
            let doc: Value =
                serde_json::from_str(text).map_err(|e| format!("not a JSON document: {e}"))?;
            exact_numbers(text)?;
            Ok(Value::String(canonical_json(&doc)))
        }
        Class::Timestamp => timestamp(text).map(Value::String),
        Class::Text => Ok(Value::String(text.to_owned())),
    }
}

/// A neutral value, checked against its class, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub enum Neutral {
    Null,
    /// The text an engine writes from (bytes as hex, booleans as `1`/`0`).
    Text(String),
}

impl Neutral {
    /// The value of `class` that `value` (from an archive) holds; `Err` says why it holds
    /// none.
    pub fn of(class: Class, value: &Value) -> Result<Neutral, String> {
        let text = match (class, value) {
            (_, Value::Null) => return Ok(Neutral::Null),
            (Class::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            (Class::Float, Value::Number(n)) => n.to_string(),
            (Class::Float, Value::String(s))
                if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") =>
            {
                s.clone()
            }
            (Class::Bool, Value::Bool(b)) => if *b { "1" } else { "0" }.to_owned(),
            (Class::Bytes, Value::String(s)) => {
                let bytes = BASE64.decode(s).map_err(|e| format!("not base64: {e}"))?;
                hex::encode(bytes)
            }
            (Class::Json, Value::String(s)) => {
                serde_json::from_str::<Value>(s)
                    .map_err(|e| format!("not a JSON document: {e}"))?;
                s.clone()
            }
            (Class::Decimal | Class::Timestamp | Class::Text, Value::String(s)) => s.clone(),
            (class, other) => {
                return Err(format!(
                    "{} is not a {class:?} value",
                    clip(&other.to_string())
                ));
            }
        };
        Ok(Neutral::Text(text))
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Neutral::Null => None,
            Neutral::Text(t) => Some(t),
        }
    }
}

/// A JSON document with its object keys sorted and no spaces.
pub fn canonical_json(doc: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(doc).to_string()
}

/// Refuses a JSON document holding a number its parsed form would change: an integer beyond
/// 64 bits, or a fraction with more digits than a double keeps.
fn exact_numbers(doc: &str) -> Result<(), String> {
    let mut in_string = false;
    let mut escaped = false;
    let mut token = String::new();
    let check = |token: &str| -> Result<(), String> {
        if token.is_empty() {
            return Ok(());
        }
        let integer = !token.contains(['.', 'e', 'E']);
        let exact = if integer {
            token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok()
        } else {
            token
                .parse::<f64>()
                .is_ok_and(|f| same_digits(token, &f.to_string()))
        };
        match exact {
            true => Ok(()),
            false => Err(format!(
                "the JSON number {} has more precision than Tenantry keeps (64-bit integers, doubles)",
                clip(token)
            )),
        }
    };
    for c in doc.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
            token.push(c);
            continue;
        }
        check(&token)?;
        token.clear();
        in_string = c == '"';
    }
    check(&token)
}

/// Whether two decimal spellings have the same significant digits (sign, point and exponent
/// aside): `0.1250` and `1.25e-1` do.
fn same_digits(a: &str, b: &str) -> bool {
    let digits = |s: &str| -> String {
        let mantissa = s.split(['e', 'E']).next().unwrap_or("");
        let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        all.trim_start_matches('0').trim_end_matches('0').to_owned()
    };
    digits(a) == digits(b)
}

fn float(text: &str) -> Result<Value, String> {
    let t = text.trim();
    let parsed: f64 = match t {
        "NaN" | "nan" => return Ok(Value::String("NaN".into())),
        "Infinity" | "inf" => return Ok(Value::String("Infinity".into())),
        "-Infinity" | "-inf" => return Ok(Value::String("-Infinity".into())),
        _ => t
            .parse()
            .map_err(|_| format!("`{}` is not a number", clip(text)))?,
    };
    serde_json::Number::from_f64(parsed)
        .map(Value::Number)
        .ok_or_else(|| format!("`{}` is not a finite number", clip(text)))
}

/// `1.50` → `1.5`, `2.000` → `2`, `-0.0` → `0`.
fn decimal(text: &str) -> String {
    let Some((int, frac)) = text.split_once('.') else {
        return if text == "-0" {
            "0".into()
        } else {
            text.to_owned()
        };
    };
    if frac.contains(['e', 'E']) {
        return text.to_owned();
    }
    let frac = frac.trim_end_matches('0');
    let out = if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    };
    if out == "-0" { "0".into() } else { out }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` with the fraction's trailing zeros removed, from an
/// engine's text (a `T` separator and a UTC offset of zero accepted).
fn timestamp(text: &str) -> Result<String, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("+00:00")
        .or_else(|| t.strip_suffix("+00"))
        .or_else(|| t.strip_suffix('Z'))
        .unwrap_or(t);
    let parsed = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| format!("`{}` is not a timestamp", clip(text)))?;
    let full = parsed.format("%Y-%m-%d %H:%M:%S%.9f").to_string();
    Ok(full.trim_end_matches('0').trim_end_matches('.').to_owned())
}

/// At most 40 characters of a value, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(class: Class, inputs: &[&str], expected: Value) {
        for input in inputs {
            assert_eq!(normalize(class, input), Ok(expected.clone()), "{input}");
        }
    }

    #[test]
    fn every_engines_spelling_has_one_neutral_value() {
        check(Class::Bool, &["t", "true", "1"], Value::Bool(true));
        check(Class::Integer, &["42", " 42"], Value::from(42));
        check(Class::Float, &["1.5", "1.50", "1.5e0"], Value::from(1.5));
        check(Class::Decimal, &["1.50", "1.5"], Value::from("1.5"));
        check(Class::Decimal, &["2.00", "2"], Value::from("2"));
        check(Class::Bytes, &["\\x00ff", "00FF"], Value::from("AP8="));
        check(
            Class::Json,
            &[
                r#"{"b": 1, "a": [2, {"d": 3, "c": 4}]}"#,
                r#"{"a":[2,{"c":4,"d":3}],"b":1}"#,
            ],
            Value::from(r#"{"a":[2,{"c":4,"d":3}],"b":1}"#),
        );
        check(
            Class::Timestamp,
            &[
                "2025-03-01 10:00:00.250",
                "2025-03-01T10:00:00.25Z",
                "2025-03-01 10:00:00.250000+00",
            ],
            Value::from("2025-03-01 10:00:00.25"),
        );
        check(
            Class::Timestamp,
            &["2025-03-01 10:00:00"],
            Value::from("2025-03-01 10:00:00"),
        );
    }

    #[test]
    fn a_json_number_a_double_would_round_is_refused() {
        for ok in [
            r#"{"a": 0.1, "b": [1e20, -3, 18446744073709551615]}"#,
            r#"{"s": "0.12345678901234567890"}"#,
        ] {
            assert!(normalize(Class::Json, ok).is_ok(), "{ok}");
        }
        for lossy in [
            r#"{"amt": 0.12345678901234567890123}"#,
            "[123456789012345678901234]",
        ] {
            assert!(normalize(Class::Json, lossy).is_err(), "{lossy}");
        }
    }

    #[test]
    fn a_value_of_another_class_is_refused() {
        assert!(normalize(Class::Integer, "ten").is_err());
        assert!(Neutral::of(Class::Integer, &Value::from("1")).is_err());
        assert!(Neutral::of(Class::Bytes, &Value::from("***")).is_err());
        assert_eq!(
            Neutral::of(Class::Bytes, &Value::from("AP8=")),
            Ok(Neutral::Text("00ff".into()))
        );
        assert_eq!(
            Neutral::of(Class::Bool, &Value::Bool(false)),
            Ok(Neutral::Text("0".into()))
        );
    }
}
