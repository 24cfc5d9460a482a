//! Tenant secrets: values sealed with the master key, by tenant and name. Names and times
//! are listed; a value leaves the catalog only sealed. Each change appends its audit entry in
//! the same transaction.

use serde::Serialize;
use sqlx::Row;

use super::events::{self, NewEvent};
use super::{Catalog, Tenant, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// A secret as listed: never its value.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInfo {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Catalog {
    /// Sets (or replaces) a tenant's secret, sealed.
    pub(crate) async fn put_secret(&self, tenant: &Tenant, name: &str, sealed: &str) -> Result<()> {
        let action = "store a tenant secret";
        let at = now();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(tenant.id, action))?;
        let updated = sqlx::query(self.engine.sql(
            "UPDATE tenantry_secrets SET sealed = ?, updated_at = ? WHERE tenant_id = ? AND name = ?",
        ))
        .bind(sealed)
        .bind(&at)
        .bind(tenant.id.to_string())
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(Error::tenant_catalog(tenant.id, action))?;
        if updated.rows_affected() == 0 {
            sqlx::query(self.engine.sql(
                "INSERT INTO tenantry_secrets (tenant_id, name, sealed, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(tenant.id.to_string())
            .bind(name)
            .bind(sealed)
            .bind(&at)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(Error::tenant_catalog(tenant.id, action))?;
        }
        self.commit_secret_change(tx, tenant, "secret.set", name, action)
            .await
    }

    /// Removes a tenant's secret; `false` if it had none of that name.
    pub(crate) async fn delete_secret(&self, tenant: &Tenant, name: &str) -> Result<bool> {
        let action = "remove a tenant secret";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(tenant.id, action))?;
        let done = sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_secrets WHERE tenant_id = ? AND name = ?"),
        )
        .bind(tenant.id.to_string())
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(Error::tenant_catalog(tenant.id, action))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_secret_change(tx, tenant, "secret.remove", name, action)
            .await?;
        Ok(true)
    }

    /// Appends the audit entry of a change to a tenant's secret (its name, never its value)
    /// and commits the change with it.
    async fn commit_secret_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        tenant: &Tenant,
        event_action: &'static str,
        name: &str,
        action: &'static str,
    ) -> Result<()> {
        let event = NewEvent {
            tenant: Some(tenant),
            action: event_action,
            outcome: "ok",
            detail: Some(name.to_owned()),
            ..NewEvent::default()
        };
        events::insert(&mut tx, self.engine, event)
            .await
            .map_err(Error::catalog(action))?;
        tx.commit()
            .await
            .map_err(Error::tenant_catalog(tenant.id, action))
    }

    /// A tenant's secrets' names, by name.
    pub async fn secret_names(&self, id: TenantId) -> Result<Vec<SecretInfo>> {
        let action = "list a tenant's secrets";
        let rows = sqlx::query(self.engine.sql(
            "SELECT name, created_at, updated_at FROM tenantry_secrets WHERE tenant_id = ? \
             ORDER BY name",
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        rows.iter()
            .map(|r| {
                Ok(SecretInfo {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Error::tenant_catalog(id, action))
    }

    /// A tenant's sealed secrets, by name.
    pub(crate) async fn sealed_secrets(&self, id: TenantId) -> Result<Vec<(String, String)>> {
        let action = "read a tenant's secrets";
        let rows = sqlx::query(
            self.engine
                .sql("SELECT name, sealed FROM tenantry_secrets WHERE tenant_id = ? ORDER BY name"),
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("sealed")?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Error::tenant_catalog(id, action))
    }
}
