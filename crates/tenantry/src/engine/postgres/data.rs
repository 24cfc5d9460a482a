//! A tenant's rows on PostgreSQL: columns classified from `format_type`, read as text
//! (timestamps with a time zone in UTC, bytes as hex), written a batch per statement through
//! `json_populate_recordset`, which converts each text with its column's own type.

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::engine::Engine;
use crate::engine::rows::{KeyedRows, select_sql};
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::ident::SqlName;

pub(super) fn value_class(data_type: &str) -> Class {
    match data_type {
        "smallint" | "integer" | "bigint" => Class::Integer,
        "real" | "double precision" => Class::Float,
        "boolean" => Class::Bool,
        "bytea" => Class::Bytes,
        "json" | "jsonb" => Class::Json,
        t if t.starts_with("numeric") => Class::Decimal,
        t if t.starts_with("timestamp") => Class::Timestamp,
        _ => Class::Text,
    }
}

fn zoned(column: &ColumnSpec) -> bool {
    column.class == Class::Timestamp && column.data_type.contains("with time zone")
}

pub(super) fn select_rows(
    table: &SqlName,
    columns: &[ColumnSpec],
    tenant_column: Option<&SqlName>,
) -> String {
    let read = |c: &ColumnSpec, name: &str| match c.class {
        Class::Bytes => format!("encode({name}, 'hex')"),
        _ if zoned(c) => format!("CAST(({name} AT TIME ZONE 'UTC') AS text)"),
        _ => format!("CAST({name} AS text)"),
    };
    let filter = |column: &str| format!("CAST({column} AS text) = $1");
    select_sql(
        Engine::Postgres,
        table,
        columns,
        read,
        tenant_column,
        filter,
    )
}

/// The rows as a JSON array of objects by column name, each value as its column's type
/// reads it from JSON text.
fn documents(columns: &[ColumnSpec], rows: &[Vec<Neutral>], only: Option<&[usize]>) -> String {
    let docs: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let fields = columns
                .iter()
                .zip(row)
                .enumerate()
                .filter(|(i, _)| only.is_none_or(|only| only.contains(i)))
                .map(|(_, (c, v))| {
                    let value = match v.as_text() {
                        None => serde_json::Value::Null,
                        // A json column takes the document itself, not a string.
                        Some(t) if c.class == Class::Json => {
                            serde_json::from_str(t).unwrap_or_else(|_| t.into())
                        }
                        Some(t) if c.class == Class::Bytes => format!("\\x{t}").into(),
                        Some(t) if zoned(c) => format!("{t}+00").into(),
                        Some(t) => t.into(),
                    };
                    (c.name.as_str().to_owned(), value)
                });
            serde_json::Value::Object(fields.collect())
        })
        .collect();
    serde_json::Value::Array(docs).to_string()
}

pub(super) fn insert_rows<'a>(
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
    columns: &'a [ColumnSpec],
    rows: &'a [Vec<Neutral>],
) -> BoxFuture<'a, sqlx::Result<u64>> {
    async move {
        let pg = Engine::Postgres;
        let list: Vec<String> = columns.iter().map(|c| pg.quote(&c.name)).collect();
        let list = list.join(", ");
        let table = pg.quote(table);
        // Explicit values go into identity columns too, `GENERATED ALWAYS` ones included.
        let sql = format!(
            "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE \
             SELECT {list} FROM json_populate_recordset(NULL::{table}, CAST($1 AS json))"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(documents(columns, rows, None))
            .execute(conn)
            .await?;
        Ok(done.rows_affected())
    }
    .boxed()
}

/// Deletes by primary key, the keys converted by the table's own row type (as inserts are).
pub(super) fn delete_rows<'a>(
    conn: &'a mut AnyConnection,
    rows: KeyedRows<'a>,
    tenant: Option<(&'a SqlName, &'a str)>,
) -> BoxFuture<'a, sqlx::Result<u64>> {
    async move {
        if rows.rows.is_empty() || rows.key.is_empty() {
            return Ok(0);
        }
        let pg = Engine::Postgres;
        let table = pg.quote(rows.table);
        let matches: Vec<String> = rows
            .key
            .iter()
            .map(|&at| {
                let c = pg.quote(&rows.columns[at].name);
                format!("t.{c} = d.{c}")
            })
            .collect();
        let mut sql = format!(
            "DELETE FROM {table} AS t \
             USING json_populate_recordset(NULL::{table}, CAST($1 AS json)) AS d WHERE {}",
            matches.join(" AND ")
        );
        if let Some((column, _)) = tenant {
            sql.push_str(&format!(" AND CAST(t.{} AS text) = $2", pg.quote(column)));
        }
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(documents(
            rows.columns,
            rows.rows,
            Some(rows.key),
        ));
        if let Some((_, id)) = tenant {
            query = query.bind(id.to_owned());
        }
        Ok(query.execute(conn).await?.rows_affected())
    }
    .boxed()
}

/// Moves each sequence a column of `table` takes its defaults from (serial or identity)
/// past the column's highest value, never back (a shared table's sequence serves others).
pub(super) fn continue_identities<'a>(
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
) -> BoxFuture<'a, sqlx::Result<()>> {
    async move {
        let pg = Engine::Postgres;
        let quoted = pg.quote(table);
        let columns: Vec<String> = sqlx::query(
            "SELECT a.attname::text AS name FROM pg_attribute a \
             WHERE a.attrelid = CAST($1 AS regclass) AND a.attnum > 0 AND NOT a.attisdropped \
             AND pg_get_serial_sequence($1, a.attname) IS NOT NULL",
        )
        .bind(&quoted)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("name"))
        .collect::<sqlx::Result<_>>()?;
        for name in columns {
            let Ok(column) = SqlName::new("column", &name) else {
                continue;
            };
            let sql = format!(
                "SELECT setval(CAST(s.seq AS regclass), GREATEST(m.top, \
                   COALESCE(pg_sequence_last_value(CAST(s.seq AS regclass)), 0))) \
                 FROM (SELECT pg_get_serial_sequence($1, $2) AS seq) s, \
                      (SELECT CAST(MAX({col}) AS bigint) AS top FROM {quoted}) m \
                 WHERE m.top IS NOT NULL",
                col = pg.quote(&column)
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(&quoted)
                .bind(column.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
    .boxed()
}
