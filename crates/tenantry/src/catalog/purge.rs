//! What the catalog still holds of a tenant, by its id.

use super::Catalog;
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// Every catalog table that names a tenant by id and must forget it when it is purged (the
/// event log and rollout records keep its id only: a sealed entry's personal fields and
/// salt are erased).
const TABLES: [(&str, &str); 8] = [
    (
        "tenantry_tenants",
        "SELECT COUNT(*) FROM tenantry_tenants WHERE id = ?",
    ),
    (
        "tenantry_domains",
        "SELECT COUNT(*) FROM tenantry_domains WHERE tenant_id = ?",
    ),
    (
        "tenantry_memberships",
        "SELECT COUNT(*) FROM tenantry_memberships WHERE tenant_id = ?",
    ),
    (
        "tenantry_labels",
        "SELECT COUNT(*) FROM tenantry_labels WHERE tenant_id = ?",
    ),
    (
        "tenantry_secrets",
        "SELECT COUNT(*) FROM tenantry_secrets WHERE tenant_id = ?",
    ),
    (
        "tenantry_operations",
        "SELECT COUNT(*) FROM tenantry_operations WHERE tenant_id = ?",
    ),
    (
        "tenantry_api_keys",
        "SELECT COUNT(*) FROM tenantry_api_keys WHERE tenant_id = ?",
    ),
    // Sealed entries not erased; the purge's own entry (written after, of its id alone)
    // keeps its detail.
    (
        "tenantry_events, with its slug or details",
        "SELECT COUNT(*) FROM tenantry_events WHERE tenant_id = ? AND seal IS NOT NULL \
         AND (tenant_slug IS NOT NULL OR target IS NOT NULL OR (action <> 'tenant.purge' \
              AND (detail IS NOT NULL OR error IS NOT NULL OR seal_salt IS NOT NULL)))",
    ),
];

impl Catalog {
    /// `N row(s) in <table>` for each catalog table still holding the tenant.
    pub(crate) async fn tenant_records(&self, id: TenantId) -> Result<Vec<String>> {
        let mut left = Vec::new();
        for (table, sql) in TABLES {
            let n: i64 = sqlx::query_scalar(self.engine.sql(sql))
                .bind(id.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(Error::tenant_catalog(id, "look for its records"))?;
            if n > 0 {
                left.push(format!("{n} row(s) in {table}"));
            }
        }
        Ok(left)
    }
}
