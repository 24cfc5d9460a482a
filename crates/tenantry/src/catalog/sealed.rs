//! Every value the catalog keeps sealed with the master key, and resealing one where it
//! still holds what was read (a key rotation's compare-and-set).

use sqlx::Row;

use super::Catalog;
use crate::error::{Error, Result};

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealedPlace {
    /// A tenant's login password (`tenants.role_secret`).
    TenantRole,
    /// A shared pool's runtime password.
    PoolRole,
    /// A shared pool's context key.
    PoolContext,
    /// A tenant secret (`key`: tenant id, then name).
    Secret,
    /// A sealed setting (the lock key).
    Setting,
}

/// One sealed value.
#[derive(Debug, Clone)]
pub(crate) struct SealedValue {
    pub place: SealedPlace,
    /// The row: an id, a setting's name, or a secret's tenant id.
    pub key: String,
    /// A secret's name.
    pub name: Option<String>,
    pub sealed: String,
    /// What it is, for messages.
    pub what: String,
}

/// Settings whose values are sealed.
pub(crate) const SEALED_SETTINGS: &[&str] = &[super::settings::LOCK_KEY];

impl Catalog {
    /// Every sealed value, deleted tenants' included.
    pub(crate) async fn sealed_values(&self) -> Result<Vec<SealedValue>> {
        let action = "read sealed values";
        let fail = Error::catalog;
        let mut out = Vec::new();
        let rows = sqlx::query(
            "SELECT id, slug, role_secret FROM tenantry_tenants WHERE role_secret IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(fail(action))?;
        for r in rows {
            let slug: String = r.try_get("slug").map_err(fail(action))?;
            out.push(SealedValue {
                place: SealedPlace::TenantRole,
                key: r.try_get("id").map_err(fail(action))?,
                name: None,
                sealed: r.try_get("role_secret").map_err(fail(action))?,
                what: format!("tenant {slug:?}"),
            });
        }
        let rows = sqlx::query("SELECT id, server, role_secret, context_key FROM tenantry_pools")
            .fetch_all(&self.pool)
            .await
            .map_err(fail(action))?;
        for r in rows {
            let id: String = r.try_get("id").map_err(fail(action))?;
            let server: String = r.try_get("server").map_err(fail(action))?;
            for (place, column) in [
                (SealedPlace::PoolRole, "role_secret"),
                (SealedPlace::PoolContext, "context_key"),
            ] {
                out.push(SealedValue {
                    place,
                    key: id.clone(),
                    name: None,
                    sealed: r.try_get(column).map_err(fail(action))?,
                    what: format!("the shared pool on {server}"),
                });
            }
        }
        let rows = sqlx::query("SELECT tenant_id, name, sealed FROM tenantry_secrets")
            .fetch_all(&self.pool)
            .await
            .map_err(fail(action))?;
        for r in rows {
            let tenant: String = r.try_get("tenant_id").map_err(fail(action))?;
            let name: String = r.try_get("name").map_err(fail(action))?;
            out.push(SealedValue {
                place: SealedPlace::Secret,
                what: format!("secret {name:?} of tenant {tenant}"),
                key: tenant,
                name: Some(name),
                sealed: r.try_get("sealed").map_err(fail(action))?,
            });
        }
        for name in SEALED_SETTINGS {
            if let Some(sealed) = self.setting(name).await? {
                out.push(SealedValue {
                    place: SealedPlace::Setting,
                    key: (*name).to_owned(),
                    name: None,
                    sealed,
                    what: format!("setting {name}"),
                });
            }
        }
        Ok(out)
    }

    /// Replaces `value` with `resealed` if it still holds what was read; `false` if it
    /// changed (or went) meanwhile.
    pub(crate) async fn reseal(&self, value: &SealedValue, resealed: &str) -> Result<bool> {
        let sql = match value.place {
            SealedPlace::TenantRole => {
                "UPDATE tenantry_tenants SET role_secret = ? WHERE id = ? AND role_secret = ?"
            }
            SealedPlace::PoolRole => {
                "UPDATE tenantry_pools SET role_secret = ? WHERE id = ? AND role_secret = ?"
            }
            SealedPlace::PoolContext => {
                "UPDATE tenantry_pools SET context_key = ? WHERE id = ? AND context_key = ?"
            }
            SealedPlace::Secret => {
                "UPDATE tenantry_secrets SET sealed = ? WHERE tenant_id = ? AND sealed = ? AND name = ?"
            }
            SealedPlace::Setting => {
                "UPDATE tenantry_settings SET value = ? WHERE name = ? AND value = ?"
            }
        };
        let mut query = sqlx::query(self.engine.sql(sql))
            .bind(resealed)
            .bind(&value.key)
            .bind(&value.sealed);
        if let Some(name) = &value.name {
            query = query.bind(name);
        }
        let done = query
            .execute(&self.pool)
            .await
            .map_err(Error::catalog("reseal a value"))?;
        Ok(done.rows_affected() == 1)
    }
}
