//! Operations under way on a tenant's data (an import; later moves and restores): at most one
//! per tenant, recorded before the operation touches storage and removed when it ends, so a
//! process that finds one after a crash knows the tenant's storage is unfinished.

use serde::Serialize;
use sqlx::Row;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// An operation recorded on a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// `import`.
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
