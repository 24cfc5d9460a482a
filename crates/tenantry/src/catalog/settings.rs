//! Catalog-wide settings: a small name/value table. It holds the fingerprint of the master
//! key the catalog's credentials are sealed with, so a wrong key is named before any
//! decryption is attempted.

use sqlx::Row;

use super::Catalog;
use crate::error::{Error, Result};

/// The setting holding the master key's fingerprint.
pub const MASTER_KEY_FINGERPRINT: &str = "master_key_fingerprint";

/// The fingerprint of the key a rotation under way reseals every value with.
pub const MASTER_KEY_ROTATING_TO: &str = "master_key_rotating_to";

/// The secret lock names derive from, sealed: it stays the same across key rotations.
pub const LOCK_KEY: &str = "lock_key";

impl Catalog {
    /// The value of setting `name`, if it is set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            self.engine
                .sql("SELECT value FROM tenantry_settings WHERE name = ?"),
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("read a setting"))?;
        row.map(|r| r.try_get("value"))
            .transpose()
            .map_err(Error::catalog("read a setting"))
    }

    /// Sets `name` to `value` unless it is set already; returns the value in force (another
    /// process may have set it first).
    pub(crate) async fn set_setting_once(&self, name: &str, value: &str) -> Result<String> {
        let inserted = sqlx::query(
            self.engine
                .sql("INSERT INTO tenantry_settings (name, value) VALUES (?, ?)"),
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(value.to_owned()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => self
                .setting(name)
                .await?
                .ok_or_else(|| Error::CorruptCatalog {
                    field: "settings.value",
                    value: name.to_owned(),
                }),
            Err(e) => Err(Error::catalog("write a setting")(e)),
        }
    }

    /// Sets `name` to `value`, replacing what it was.
    pub(crate) async fn replace_setting(&self, name: &str, value: &str) -> Result<()> {
        let updated = sqlx::query(
            self.engine
                .sql("UPDATE tenantry_settings SET value = ? WHERE name = ?"),
        )
        .bind(value)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("write a setting"))?;
        if updated.rows_affected() == 0 {
            self.set_setting_once(name, value).await?;
        }
        Ok(())
    }

    /// Removes setting `name`.
    pub(crate) async fn delete_setting(&self, name: &str) -> Result<()> {
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_settings WHERE name = ?"),
        )
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("remove a setting"))?;
        Ok(())
    }

    /// One credential sealed with the master key that is still needed (a live tenant's role
    /// password, or a shared pool's), with what it belongs to; `None` if there is none.
    pub(crate) async fn a_sealed_secret(&self) -> Result<Option<(String, String)>> {
        let action = "look for sealed credentials";
        let tenant = sqlx::query(
            "SELECT slug, role_secret FROM tenantry_tenants \
             WHERE role_secret IS NOT NULL AND status <> 'deleted' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog(action))?;
        if let Some(row) = tenant {
            let slug: String = row.try_get("slug").map_err(Error::catalog(action))?;
            let sealed: String = row.try_get("role_secret").map_err(Error::catalog(action))?;
            return Ok(Some((format!("tenant {slug:?}"), sealed)));
        }
        let pool =
            sqlx::query("SELECT server, role_secret FROM tenantry_pools ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::catalog(action))?;
        if let Some(row) = pool {
            let server: String = row.try_get("server").map_err(Error::catalog(action))?;
            let sealed: String = row.try_get("role_secret").map_err(Error::catalog(action))?;
            return Ok(Some((format!("the shared pool on {server}"), sealed)));
        }
        let secret =
            sqlx::query("SELECT name, sealed FROM tenantry_secrets ORDER BY tenant_id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::catalog(action))?;
        match secret {
            Some(row) => {
                let name: String = row.try_get("name").map_err(Error::catalog(action))?;
                let sealed: String = row.try_get("sealed").map_err(Error::catalog(action))?;
                Ok(Some((format!("secret {name:?}"), sealed)))
            }
            None => Ok(None),
        }
    }
}
