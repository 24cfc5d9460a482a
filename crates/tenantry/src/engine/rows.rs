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

/// Rows of a table to delete by primary key: full rows (values in `columns` order), of which
/// the columns at `key` are compared.
#[derive(Clone, Copy)]
pub struct KeyedRows<'a> {
    pub table: &'a SqlName,
    pub columns: &'a [ColumnSpec],
    pub key: &'a [usize],
    pub rows: &'a [Vec<Neutral>],
}

/// `DELETE FROM t WHERE (k1 = ? AND k2 = ?) OR … [AND tenant = ?]`, one text parameter per
/// key value (`bytes`: the engine's hex-decoding expression); MySQL and SQLite convert each
/// to the column's type themselves.
pub(crate) fn values_delete<'a>(
    engine: Engine,
    bytes: &'static str,
    conn: &'a mut AnyConnection,
    rows: KeyedRows<'a>,
    tenant: Option<(&'a SqlName, &'a str)>,
) -> BoxFuture<'a, sqlx::Result<u64>> {
    async move {
        if rows.rows.is_empty() || rows.key.is_empty() {
            return Ok(0);
        }
        let one: Vec<String> = rows
            .key
            .iter()
            .map(|&at| {
                let c = &rows.columns[at];
                let param = if c.class == Class::Bytes { bytes } else { "?" };
                format!("{} = {param}", engine.quote(&c.name))
            })
            .collect();
        let one = format!("({})", one.join(" AND "));
        let mut sql = format!(
            "DELETE FROM {} WHERE ({})",
            engine.quote(rows.table),
            vec![one.as_str(); rows.rows.len()].join(" OR ")
        );
        if let Some((column, _)) = tenant {
            sql.push_str(&format!(" AND {} = ?", engine.quote(column)));
        }
        let mut query = sqlx::query(engine.sql_built(sql));
        for row in rows.rows {
            for &at in rows.key {
                query = query.bind(row[at].as_text().map(str::to_owned));
            }
        }
        if let Some((_, id)) = tenant {
            query = query.bind(id.to_owned());
        }
        Ok(query.execute(conn).await?.rows_affected())
    }
    .boxed()
}

/// `DELETE FROM t [WHERE <filter(quoted tenant column)>]`, the tenant's id bound.
pub(crate) fn delete_all<'a>(
    engine: Engine,
    conn: &'a mut AnyConnection,
    table: &'a SqlName,
    tenant: Option<(&'a SqlName, &'a str)>,
    filter: impl Fn(&str) -> String,
) -> BoxFuture<'a, sqlx::Result<u64>> {
    let mut sql = format!("DELETE FROM {}", engine.quote(table));
    if let Some((column, _)) = tenant {
        sql.push_str(" WHERE ");
        sql.push_str(&filter(&engine.quote(column)));
    }
    async move {
        let mut query = sqlx::query(engine.sql_built(sql));
        if let Some((_, id)) = tenant {
            query = query.bind(id.to_owned());
        }
        Ok(query.execute(conn).await?.rows_affected())
    }
    .boxed()
}
