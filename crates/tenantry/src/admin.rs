//! Operator access to a tenant's storage through the administrative connection the
//! migration runner uses: for the repairs a tenant's own role cannot make, such as undoing
//! the statements a dirty MySQL migration left behind. Every use is recorded in the event
//! log.

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Column, Connection, Either, Row, ValueRef};

use crate::Tenantry;
use crate::catalog::Status;
use crate::error::{Error, Result};
use crate::session::JsonRows;

/// How much of the SQL the event log keeps.
const EVENT_SQL_CHARS: usize = 200;

impl Tenantry {
    /// Runs `sql` (one or more statements, in one transaction where the engine's DDL is
    /// transactional; MySQL commits each DDL statement by itself) on the tenant's storage
    /// with the administrative connection scoped to it, as the migration runner uses it,
    /// while holding the tenant's migration lock. Returns the rows of the last statement.
    /// Works for a tenant in any status but `deleted`. Records an event `sql.admin` with
    /// the SQL (shortened) and its outcome.
    ///
    /// # Warning
    /// The connection has the server's administrative rights within the tenant's storage
    /// (for a `shared` tenant: its whole shared pool, every tenant's rows), not the
    /// tenant's. It is for operators repairing storage, never for application requests.
    pub async fn run_admin_sql(&self, slug: &str, sql: &str) -> Result<JsonRows> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.status == Status::Deleted {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "run administrative SQL on it",
                hint: "; its storage is gone",
            });
        }
        let detail = Some(shortened(sql, EVENT_SQL_CHARS));
        let result = self.run_admin_sql_locked(slug, &tenant, sql).await;
        match &result {
            Ok(rows) => {
                let detail = detail.map(|d| format!("{d} ({} row(s))", rows.len()));
                self.event(&tenant, "sql.admin", "ok", detail, None).await;
            }
            Err(e) => {
                self.event(&tenant, "sql.admin", "failed", detail, Some(e.to_string()))
                    .await;
            }
        }
        result
    }

    async fn run_admin_sql_locked(
        &self,
        slug: &str,
        tenant: &crate::Tenant,
        sql: &str,
    ) -> Result<JsonRows> {
        let mut target = self.migration_target(tenant).await?;
        // Never in the middle of a migration of the same storage.
        let Some(held) = target
            .lock
            .acquire(&target.owner, &mut target.conn, self.config.lock_wait)
            .await?
        else {
            return Err(Error::Locked {
                tenant: target.owner,
            });
        };
        let rows = run(&mut target.conn, sql).await.map_err(|source| {
            let hint = if matches!(
                source,
                sqlx::Error::AnyDriverError(_) | sqlx::Error::ColumnDecode { .. }
            ) {
                "; `tenantry sql --admin` shows number, text, boolean and binary columns: \
                 cast others to text (`CAST(x AS CHAR)`, or `x::text` on PostgreSQL)"
            } else {
                ""
            };
            Error::AdminSql {
                tenant: slug.to_owned(),
                hint,
                source,
            }
        });
        held.release(&target.owner, &mut target.conn).await;
        let _ = target.conn.close().await;
        rows
    }
}

/// Runs `sql` in one transaction and returns the rows of its last statement.
async fn run(conn: &mut sqlx::AnyConnection, sql: &str) -> sqlx::Result<JsonRows> {
    let mut tx = conn.begin().await?;
    let rows = {
        let stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch_many(&mut *tx);
        let mut stream = std::pin::pin!(stream);
        let mut current: Vec<AnyRow> = Vec::new();
        let mut last: Vec<AnyRow> = Vec::new();
        let mut open = false;
        loop {
            match stream.try_next().await {
                Ok(Some(Either::Left(_))) => {
                    last = std::mem::take(&mut current);
                    open = false;
                }
                Ok(Some(Either::Right(row))) => {
                    if !open {
                        current.clear();
                        open = true;
                    }
                    current.push(row);
                }
                Ok(None) => break,
                Err(e) => return Err(e),
            }
        }
        if open { current } else { last }
    };
    let json = rows.iter().map(json_row).collect::<sqlx::Result<_>>()?;
    tx.commit().await?;
    Ok(json)
}

/// One row as a JSON object, columns in order. Each value is read by its own kind, not its
/// column's declared type (SQLite declares none for an expression).
fn json_row(row: &AnyRow) -> sqlx::Result<Map<String, Value>> {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if row.try_get_raw(i)?.is_null() {
            Value::Null
        } else if let Ok(n) = row.try_get_unchecked::<i64, _>(i) {
            Value::from(n)
        } else if let Ok(x) = row.try_get_unchecked::<f64, _>(i) {
            Value::from(x)
        } else if let Ok(b) = row.try_get_unchecked::<bool, _>(i) {
            Value::Bool(b)
        } else if let Ok(text) = row.try_get_unchecked::<String, _>(i) {
            Value::String(text)
        } else {
            let bytes = row.try_get_unchecked::<Vec<u8>, _>(i)?;
            match String::from_utf8(bytes) {
                Ok(text) => Value::String(text),
                Err(e) => Value::String(hex::encode(e.into_bytes())),
            }
        };
        out.insert(column.name().to_owned(), value);
    }
    Ok(out)
}

/// `sql` on one line, at most `max` characters.
fn shortened(sql: &str, max: usize) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > max {
        format!("{}…", one_line.chars().take(max - 1).collect::<String>())
    } else {
        one_line
    }
}
