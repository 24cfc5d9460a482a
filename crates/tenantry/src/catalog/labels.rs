//! Tenant labels (`tier=gold`, `beta`): what rollouts select and order tenants by. Removed
//! with the tenant's routes when it is deleted.

use std::collections::HashMap;

use super::Catalog;
use crate::error::{Error, Result};
use crate::ident::TenantId;

impl Catalog {
    /// Adds a label to a tenant; one it already has is kept.
    pub async fn add_label(&self, tenant: TenantId, label: &str) -> Result<()> {
        let result = sqlx::query(
            self.engine
                .sql("INSERT INTO tenantry_labels (tenant_id, label) VALUES (?, ?)"),
        )
        .bind(tenant.to_string())
        .bind(label)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
            Err(e) => Err(Error::tenant_catalog(tenant, "label a tenant")(e)),
        }
    }

    /// Removes a label; whether the tenant had it.
    pub async fn remove_label(&self, tenant: TenantId, label: &str) -> Result<bool> {
        let done = sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_labels WHERE tenant_id = ? AND label = ?"),
        )
        .bind(tenant.to_string())
        .bind(label)
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(tenant, "unlabel a tenant"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Every tenant's labels, sorted.
    pub async fn labels(&self) -> Result<HashMap<TenantId, Vec<String>>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, label FROM tenantry_labels ORDER BY tenant_id, label",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read labels"))?;
        let mut out: HashMap<TenantId, Vec<String>> = HashMap::new();
        for (tenant, label) in rows {
            out.entry(TenantId::parse(&tenant)?)
                .or_default()
                .push(label);
        }
        Ok(out)
    }
}
