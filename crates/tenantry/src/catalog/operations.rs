//! Operations under way on a tenant's data (an import, a restore, a move): at most one per
//! tenant, recorded before the operation touches storage and removed when it ends, so a
//! process that finds one after a crash knows the tenant's storage is unfinished. A move's
//! record carries its phase, and the switch of the tenant's place changes the row, the
//! phase, the change counter and the event in one transaction.

use serde::Serialize;
use sqlx::Row;

use super::{Catalog, Status, Tenant, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// An operation recorded on a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// `import`, `restore`, `move`.
    pub kind: String,
    pub detail: Option<String>,
    pub started_at: String,
}

impl Catalog {
    /// Records an operation on a tenant; fails if one is recorded already.
    pub(crate) async fn begin_operation(
        &self,
        tenant: TenantId,
        kind: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::tenant_catalog(tenant, "record an operation"))?;
        insert_operation(&mut conn, self.engine, tenant, kind, detail)
            .await
            .map_err(Error::tenant_catalog(tenant, "record an operation"))
    }

    /// The operation recorded on a tenant, if any.
    pub async fn operation(&self, tenant: TenantId) -> Result<Option<Operation>> {
        let row =
            sqlx::query(self.engine.sql(
                "SELECT kind, detail, started_at FROM tenantry_operations WHERE tenant_id = ?",
            ))
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::tenant_catalog(tenant, "read its operation"))?;
        row.map(|r| {
            Ok(Operation {
                kind: r.try_get("kind")?,
                detail: r.try_get("detail")?,
                started_at: r.try_get("started_at")?,
            })
        })
        .transpose()
        .map_err(Error::tenant_catalog(tenant, "read its operation"))
    }

    /// Removes a tenant's operation record.
    pub(crate) async fn end_operation(&self, tenant: TenantId) -> Result<()> {
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_operations WHERE tenant_id = ?"),
        )
        .bind(tenant.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(tenant, "end its operation"))?;
        Ok(())
    }
}

impl Catalog {
    /// Puts a tenant in its new place (server and strategy) if it is still active or
    /// suspended at `from`'s, with its operation's detail set to `detail`, the change counter
    /// moved and `event` appended, in one transaction. `None`: the tenant changed meanwhile.
    pub(crate) async fn switch_place(
        &self,
        from: &Tenant,
        to: &Tenant,
        detail: &str,
        event: super::NewEvent<'_>,
    ) -> Result<Option<Tenant>> {
        let id = from.id;
        let action = "switch a tenant's place";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        let done = sqlx::query(self.engine.sql(
            "UPDATE tenantry_tenants SET server = ?, strategy = ?, updated_at = ? \
             WHERE id = ? AND server = ? AND strategy = ? AND (status = ? OR status = ?)",
        ))
        .bind(to.server.as_str())
        .bind(to.strategy.as_str())
        .bind(now())
        .bind(id.to_string())
        .bind(from.server.as_str())
        .bind(from.strategy.as_str())
        .bind(Status::Active.as_str())
        .bind(Status::Suspended.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            self.engine
                .sql("UPDATE tenantry_operations SET detail = ? WHERE tenant_id = ?"),
        )
        .bind(detail)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        super::identity::bump_changes_in(&mut tx).await?;
        super::events::insert(&mut tx, self.engine, event)
            .await
            .map_err(Error::catalog("append an event"))?;
        tx.commit()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        self.tenant_by_id(id).await.map(Some)
    }
}

/// Inserts an operation record on `conn` (a transaction, say).
pub(super) async fn insert_operation(
    conn: &mut sqlx::AnyConnection,
    engine: crate::engine::Engine,
    tenant: TenantId,
    kind: &str,
    detail: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(engine.sql(
        "INSERT INTO tenantry_operations (tenant_id, kind, detail, started_at) VALUES (?, ?, ?, ?)",
    ))
    .bind(tenant.to_string())
    .bind(kind)
    .bind(detail.map(str::to_owned))
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}
