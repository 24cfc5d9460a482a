//! Rows of a script's last statement, as JSON objects.

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::{Column, Either, Row, TypeInfo, ValueRef};

/// Collects the rows of the last statement of a multi-statement stream.
pub(super) async fn last_rows<R, Q>(
    stream: impl futures::Stream<Item = std::result::Result<Either<Q, R>, sqlx::Error>>,
) -> std::result::Result<Vec<R>, sqlx::Error> {
    let mut stream = std::pin::pin!(stream);
    let mut current = Vec::new();
    let mut last = Vec::new();
    let mut open = false;
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(_) => {
                last = std::mem::take(&mut current);
                open = false;
            }
            Either::Right(row) => {
                if !open {
                    current.clear();
                    open = true;
                }
                current.push(row);
            }
        }
    }
    if open {
        last = current;
    }
    Ok(last)
}

/// A row from a text-protocol result (PostgreSQL simple query, MySQL text protocol): every
/// value arrives as text, typed back to JSON numbers and booleans by its column type.
pub(super) fn text_row<R: Row>(row: &R) -> Map<String, Value>
where
    for<'r> String: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let value = if null {
            Value::Null
        } else {
            match row.try_get_unchecked::<String, _>(i) {
                Ok(text) => typed(&column.type_info().name().to_ascii_uppercase(), text),
                Err(_) => Value::String("(binary)".into()),
            }
        };
        out.insert(column.name().to_owned(), value);
    }
    out
}

fn typed(type_name: &str, text: String) -> Value {
    let numeric = [
        "INT", "SERIAL", "FLOAT", "DOUBLE", "REAL", "NUMERIC", "DECIMAL", "OID",
    ];
    if type_name == "BOOL" || type_name == "BOOLEAN" {
        return match text.as_str() {
            "t" | "1" | "true" => Value::Bool(true),
            "f" | "0" | "false" => Value::Bool(false),
            _ => Value::String(text),
        };
    }
    if numeric.iter().any(|n| type_name.contains(n)) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

pub(super) fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Map<String, Value> {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map_or(Value::Null, Value::String)
        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
            v.map_or(Value::Null, |b| Value::String(hex::encode(b)))
        } else {
            Value::Null
        };
        out.insert(column.name().to_owned(), value);
    }
    out
}
