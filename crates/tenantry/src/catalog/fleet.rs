//! What the catalog remembers of the fleet's migrations: the checksum of every version some
//! unit applied, so a tenant created later is refused an edited file exactly as `migrate`
//! refuses it on the tenants that ran it; and the results of a run, written in one
//! transaction.

use sqlx::Row;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;
use ulid::Ulid;

/// A migration version as the fleet applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMigration {
    pub version: i64,
    pub description: String,
    /// SHA-384, hex.
    pub checksum: String,
}

/// What a unit's ledger held when a run read it back: recorded on the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerState {
    /// The highest applied version (0: none).
    pub version: i64,
    /// `ledger::digest`; `None` while a row is dirty.
    pub digest: Option<String>,
    /// The version held dirty, if any.
    pub dirty: Option<i64>,
}

/// Where a run's result goes: one tenant, or a shared pool and its live tenants.
#[derive(Debug, Clone, Copy)]
pub enum RunRecord<'a> {
    Tenant(TenantId),
    Pool {
        pool: Ulid,
        server: &'a str,
        /// The tenant being provisioned into the pool, if any (not yet live).
        provisioning: Option<TenantId>,
    },
}

impl Catalog {
    /// Every version the fleet has applied, with its checksum.
    pub async fn fleet_migrations(&self) -> Result<Vec<FleetMigration>> {
        let rows = sqlx::query(
            "SELECT version, description, checksum FROM tenantry_fleet_migrations ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read the fleet's migrations"))?;
        rows.iter()
            .map(|r| {
                let read = Error::catalog("read the fleet's migrations");
                Ok(FleetMigration {
                    version: r.try_get("version").map_err(read)?,
                    description: r
                        .try_get("description")
                        .map_err(Error::catalog("read the fleet's migrations"))?,
                    checksum: r
                        .try_get("checksum")
                        .map_err(Error::catalog("read the fleet's migrations"))?,
                })
            })
            .collect()
    }

    /// Records the versions a run applied (the first checksum recorded for a version stays).
    pub async fn record_fleet_migrations(&self, applied: &[FleetMigration]) -> Result<()> {
        for m in applied {
            let result = sqlx::query(self.engine.sql(
                "INSERT INTO tenantry_fleet_migrations (version, description, checksum, applied_at) \
                 VALUES (?, ?, ?, ?)",
            ))
            .bind(m.version)
            .bind(&m.description)
            .bind(&m.checksum)
            .bind(now())
            .execute(&self.pool)
            .await;
            match result {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => {
                    return Err(Error::Catalog {
                        action: "record the fleet's migrations",
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Records a run's version and last error (or clears it) in one transaction: on the
    /// tenant, or on the pool, its live tenants and the tenant being provisioned. Rows
    /// being deleted or deleted are never written.
    pub async fn record_run(
        &self,
        record: RunRecord<'_>,
        state: &LedgerState,
        last_error: Option<&str>,
        event: Option<super::NewEvent<'_>>,
    ) -> Result<()> {
        let action = "record a migration run";
        let at = now();
        let error = last_error.map(str::to_owned);
        const TENANT: &str = "UPDATE tenantry_tenants SET version = ?, ledger_digest = ?, \
             dirty_version = ?, last_error = ?, updated_at = ? \
             WHERE id = ? AND status NOT IN ('deleting', 'deleted')";
        // The pool's own row keeps no digest: its tenants' rows do.
        const POOL: &str = "UPDATE tenantry_pools SET version = ?, last_error = ?, updated_at = ? \
             WHERE id = ?";
        const POOL_TENANTS: &str = "UPDATE tenantry_tenants SET version = ?, ledger_digest = ?, \
             dirty_version = ?, last_error = ?, updated_at = ? \
             WHERE server = ? AND strategy = 'shared' \
             AND status IN ('active', 'suspended')";
        // Each write: its statement, the key it binds, and the tenant it is about.
        let mut writes: Vec<(&'static str, String, Option<TenantId>)> = Vec::new();
        match record {
            RunRecord::Tenant(id) => writes.push((TENANT, id.to_string(), Some(id))),
            RunRecord::Pool {
                pool,
                server,
                provisioning,
            } => {
                writes.push((POOL, pool.to_string(), None));
                writes.push((POOL_TENANTS, server.to_owned(), None));
                if let Some(id) = provisioning {
                    writes.push((TENANT, id.to_string(), Some(id)));
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        for (sql, key, tenant) in writes {
            let mut query = sqlx::query(self.engine.sql(sql)).bind(state.version);
            if sql != POOL {
                query = query.bind(state.digest.clone()).bind(state.dirty);
            }
            query
                .bind(error.clone())
                .bind(&at)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(|source| match tenant {
                    Some(id) => Error::tenant_catalog(id, action)(source),
                    None => Error::catalog(action)(source),
                })?;
        }
        if let Some(event) = event {
            super::events::insert(&mut tx, self.engine, event)
                .await
                .map_err(Error::catalog("append an event"))?;
        }
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Removes a tenant row that never got storage (still `provisioning`), e.g. when its
    /// server started being removed while it was created.
    pub async fn discard_tenant(&self, id: TenantId) -> Result<()> {
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_tenants WHERE id = ? AND status = 'provisioning'"),
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, "discard a tenant"))?;
        Ok(())
    }
}
