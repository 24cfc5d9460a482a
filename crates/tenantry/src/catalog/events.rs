//! The append-only event log of lifecycle and migration events.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use ulid::Ulid;

use super::{Catalog, Tenant, now};
use crate::error::{Error, Result};

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub tenant: Option<&'a Tenant>,
    /// What happened, e.g. `tenant.create`, `migrate.apply`.
    pub action: &'static str,
    /// `ok`, `failed` or `started`.
    pub outcome: &'static str,
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// A recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub at: String,
    pub tenant_id: Option<String>,
    pub tenant: Option<String>,
    pub action: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub error: Option<String>,
}

impl Event {
    fn from_row(row: &AnyRow) -> std::result::Result<Event, sqlx::Error> {
        Ok(Event {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            tenant_id: row.try_get("tenant_id")?,
            tenant: row.try_get("tenant_slug")?,
            action: row.try_get("action")?,
            outcome: row.try_get("outcome")?,
            detail: row.try_get("detail")?,
            error: row.try_get("error")?,
        })
    }
}

/// Appends `event` on `conn` (a transaction's, to commit it with what it records).
pub(super) async fn insert(
    conn: &mut sqlx::AnyConnection,
    engine: crate::engine::Engine,
    event: NewEvent<'_>,
) -> sqlx::Result<()> {
    sqlx::query(engine.sql(
        "INSERT INTO tenantry_events (id, at, tenant_id, tenant_slug, action, outcome, detail, error) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(Ulid::new().to_string())
    .bind(now())
    .bind(event.tenant.map(|t| t.id.to_string()))
    .bind(event.tenant.map(|t| t.slug.to_string()))
    .bind(event.action)
    .bind(event.outcome)
    .bind(event.detail)
    .bind(event.error)
    .execute(conn)
    .await?;
    Ok(())
}

impl Catalog {
    /// Appends an event. Events are never updated or deleted.
    pub async fn record(&self, event: NewEvent<'_>) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::catalog("append an event"))?;
        insert(&mut conn, self.engine, event)
            .await
            .map_err(Error::catalog("append an event"))
    }

    /// The newest `limit` events, newest first; for one tenant when `tenant` is given.
    pub async fn events(&self, tenant: Option<&Tenant>, limit: i64) -> Result<Vec<Event>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(self.engine.sql(
                    "SELECT id, at, tenant_id, tenant_slug, action, outcome, detail, error \
                     FROM tenantry_events WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
                ))
                .bind(t.id.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(self.engine.sql(
                    "SELECT id, at, tenant_id, tenant_slug, action, outcome, detail, error \
                     FROM tenantry_events ORDER BY id DESC LIMIT ?",
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(Error::catalog("read events"))?;
        rows.iter()
            .map(Event::from_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::catalog("read events"))
    }
}
