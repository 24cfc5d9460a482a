//! A tenant's rows on SQLite: columns classified from their declared type (the names SQLite's
//! own affinity rules look for, and `BOOLEAN`, `JSON`, `TIMESTAMP`/`DATETIME`), read as text
//! (bytes as hex), written with `?` parameters the column's affinity converts (bytes through
//! `unhex`). A rowid or `AUTOINCREMENT` key follows explicit values by itself.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::engine::Engine;
use crate::engine::rows::select_sql;
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::ident::SqlName;

pub(super) fn value_class(data_type: &str) -> Class {
    let t = data_type.to_ascii_uppercase();
    let has = |part: &str| t.contains(part);
    if has("BOOL") {
        Class::Bool
    } else if has("JSON") {
        Class::Json
    } else if has("TIMESTAMP") || has("DATETIME") {
        Class::Timestamp
    } else if has("INT") || has("SERIAL") {
        Class::Integer
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        Class::Text
    } else if has("BLOB") || has("BYTEA") || has("BINARY") {
        Class::Bytes
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        Class::Float
    } else if has("NUMERIC") || has("DECIMAL") {
        Class::Decimal
    } else {
        Class::Text
    }
}

pub(super) fn select_rows(
    table: &SqlName,
    columns: &[ColumnSpec],
    tenant_column: Option<&SqlName>,
) -> String {
    let read = |c: &ColumnSpec, name: &str| match c.class {
        Class::Bytes => format!("CASE WHEN {name} IS NULL THEN NULL ELSE hex({name}) END"),
        // CAST renders 15 significant digits; 17 read back as the same double.
        Class::Float => format!(
            "CASE typeof({name}) WHEN 'real' THEN printf('%!.17g', {name}) ELSE CAST({name} AS TEXT) END"
        ),
        _ => format!("CAST({name} AS TEXT)"),
    };
    let filter = |column: &str| format!("{column} = ?");
    select_sql(Engine::Sqlite, table, columns, read, tenant_column, filter)
}

pub(super) fn insert_rows<'a>(
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
    columns: &'a [ColumnSpec],
    rows: &'a [Vec<Neutral>],
) -> BoxFuture<'a, sqlx::Result<u64>> {
    crate::engine::rows::values_insert(Engine::Sqlite, "unhex(?)", conn, table, columns, rows)
}
