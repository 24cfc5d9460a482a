//! The proof that a purged tenant is gone: nothing under its names on its server (database,
//! schema, role or user, large objects, files), no rows or admission in a shared pool, no
//! record in the catalog but the ids the event log and rollout records keep, no pool in this
//! process. Backups are kept unless purged with the tenant, and listed apart.

use crate::Tenantry;
use crate::catalog::Tenant;
use crate::error::Result;
use crate::storage::shared;

impl Tenantry {
    /// What is left anywhere of `tenant` (its record as it was before the purge); empty when
    /// nothing is.
    pub async fn leftovers(&self, tenant: &Tenant) -> Result<Vec<String>> {
        let place = self.place(tenant).await?;
        let mut left = place.engine().dialect().leftovers(&place, tenant).await?;
        if tenant.strategy.ops().pooled() {
            if self.storage_exists(tenant).await? {
                left.push(format!("rows in the shared pool on {}", tenant.server));
            }
            let pool = self.catalog.shared_pool(tenant.server.as_str()).await?;
            if let Some(pool) = pool
                && shared::is_admitted(&place, &pool, tenant).await?
            {
                left.push(format!(
                    "an admission to the shared pool on {}",
                    tenant.server
                ));
            }
        }
        left.extend(self.catalog.tenant_records(tenant.id).await?);
        if self.holds_pool(tenant) {
            left.push("a connection pool in this process".into());
        }
        Ok(left)
    }
}
