//! A tenant's rows on MySQL/MariaDB: columns classified from `column_type`, read as text
//! (bytes as hex) in a UTC session, written with `?` parameters the server converts to each
//! column's type (bytes through `UNHEX`). `AUTO_INCREMENT` follows explicit values by itself.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::engine::Engine;
use crate::engine::rows::select_sql;
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::ident::SqlName;

pub(super) fn value_class(data_type: &str) -> Class {
    let t = data_type.to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    match base {
        "tinyint" if t.starts_with("tinyint(1)") => Class::Bool,
        "bool" | "boolean" => Class::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Class::Integer,
        "float" | "double" | "real" => Class::Float,
        "decimal" | "numeric" => Class::Decimal,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Class::Bytes,
        "json" => Class::Json,
        "datetime" | "timestamp" => Class::Timestamp,
        _ => Class::Text,
    }
}

pub(super) fn select_rows(
    table: &SqlName,
    columns: &[ColumnSpec],
    tenant_column: Option<&SqlName>,
) -> String {
    let read = |c: &ColumnSpec, name: &str| match c.class {
        Class::Bytes => format!("HEX({name})"),
        _ => format!("CAST({name} AS CHAR)"),
    };
    let filter = |column: &str| format!("{column} = ?");
    select_sql(Engine::Mysql, table, columns, read, tenant_column, filter)
}

/// Timestamps read and written in UTC; a repeatable-read snapshot for every transaction,
/// whatever the server's default, so an export's or a backup's reads all see one moment.
pub(super) const DATA_SESSION: &str =
    "SET time_zone = '+00:00'; SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

pub(super) fn insert_rows<'a>(
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
    columns: &'a [ColumnSpec],
    rows: &'a [Vec<Neutral>],
) -> BoxFuture<'a, sqlx::Result<u64>> {
    crate::engine::rows::values_insert(Engine::Mysql, "UNHEX(?)", conn, table, columns, rows)
}
