//! What every engine's reading and writing of a tenant's rows shares: the frame of the
//! `SELECT`, and, for the engines whose servers convert text to each column's type
//! themselves (MySQL, SQLite), inserts with one text parameter per value.

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::Engine;
use super::value::{Class, ColumnSpec, Neutral};
use crate::ident::SqlName;

/// `SELECT <read(column, quoted name)>, … FROM table`, and with `tenant_column`
/// ` WHERE <filter(quoted tenant column)>` on one bound parameter.
pub(crate) fn select_sql(
    engine: Engine,
    table: &SqlName,
    columns: &[ColumnSpec],
    read: impl Fn(&ColumnSpec, &str) -> String,
    tenant_column: Option<&SqlName>,
    filter: impl Fn(&str) -> String,
) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| read(c, &engine.quote(&c.name)))
        .collect();
    let mut sql = format!("SELECT {} FROM {}", list.join(", "), engine.quote(table));
    if let Some(column) = tenant_column {
        sql.push_str(" WHERE ");
        sql.push_str(&filter(&engine.quote(column)));
    }
    sql
}

/// `INSERT INTO t (…) VALUES (?, …), …` with one text parameter per value (`bytes`: the
/// engine's hex-decoding expression); shared with SQLite, which writes the same way.
pub(crate) fn values_insert<'a>(
    engine: Engine,
    bytes: &'static str,
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
    columns: &'a [ColumnSpec],
    rows: &'a [Vec<Neutral>],
) -> BoxFuture<'a, sqlx::Result<u64>> {
    async move {
        let list: Vec<String> = columns.iter().map(|c| engine.quote(&c.name)).collect();
        let one: Vec<&str> = columns
            .iter()
            .map(|c| if c.class == Class::Bytes { bytes } else { "?" })
            .collect();
        let one = format!("({})", one.join(", "));
        let tuples = vec![one.as_str(); rows.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {tuples}",
            engine.quote(table),
            list.join(", ")
        );
        let mut query = sqlx::query(engine.sql_built(sql));
        for row in rows {
            for value in row {
                query = query.bind(value.as_text().map(str::to_owned));
            }
        }
        Ok(query.execute(conn).await?.rows_affected())
    }
    .boxed()
}
