//! Spares: tenant rows in status `spare`, whose storage was provisioned and migrated ahead of
//! time, and the claim that turns one into a new tenant.
//!
//! Invariant: a spare is claimed by one conditional `UPDATE` (still `spare` → `active` under
//! the new slug, with its event, in one transaction), so two creates never take the same
//! spare, on every catalog engine.

use sqlx::Row;

use super::{Catalog, NewEvent, Status, Strategy, Tenant, now};
use crate::error::{Error, Result};
use crate::ident::{Slug, TenantId};

impl Catalog {
    /// Up to `limit` spares of `server` and `strategy` that a run last read back at
    /// `version` with ledger digest `digest`, with no error on record; oldest first.
    pub(crate) async fn current_spares(
        &self,
        server: &str,
        strategy: Strategy,
        version: i64,
        digest: &str,
        limit: i64,
    ) -> Result<Vec<TenantId>> {
        let rows = sqlx::query(self.engine.sql(
            "SELECT id FROM tenantry_tenants WHERE status = ? AND server = ? AND strategy = ? \
             AND version = ? AND ledger_digest = ? AND last_error IS NULL ORDER BY id LIMIT ?",
        ))
        .bind(Status::Spare.as_str())
        .bind(server)
        .bind(strategy.as_str())
        .bind(version)
        .bind(digest)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("look up spares"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(Error::catalog("read a spare"))?;
                TenantId::parse(&id)
            })
            .collect()
    }

    /// Turns spare `id`, verified at `version`, into the `active` tenant `slug`, with its
    /// event, in one transaction — if it is still a spare (another create may have claimed
    /// it first: `None`). A taken slug is [`Error::TenantExists`].
    pub(crate) async fn claim_spare(
        &self,
        id: TenantId,
        slug: &Slug,
        name: &str,
        version: i64,
    ) -> Result<Option<Tenant>> {
        let action = "claim a spare";
        let at = now();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        let result = sqlx::query(self.engine.sql(
            "UPDATE tenantry_tenants SET slug = ?, name = ?, status = ?, created_at = ?, \
             updated_at = ? WHERE id = ? AND status = ?",
        ))
        .bind(slug.as_str())
        .bind(name)
        .bind(Status::Active.as_str())
        .bind(&at)
        .bind(&at)
        .bind(id.to_string())
        .bind(Status::Spare.as_str())
        .execute(&mut *tx)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => {
                super::identity::bump_changes_in(&mut tx).await?;
                let tenant = self.tenant_in(&mut tx, id).await?;
                let event = NewEvent {
                    tenant: Some(&tenant),
                    action: "tenant.create",
                    outcome: "ok",
                    target: None,
                    detail: Some(format!("active at version {version}, from a spare")),
                    error: None,
                };
                super::events::insert(&mut tx, self.engine, event)
                    .await
                    .map_err(Error::catalog("append an event"))?;
                tx.commit()
                    .await
                    .map_err(Error::tenant_catalog(id, action))?;
                Ok(Some(tenant))
            }
            Ok(_) => Ok(None),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let status = self
                    .find_tenant(slug.as_str())
                    .await?
                    .map_or(Status::Provisioning, |t| t.status);
                Err(Error::TenantExists {
                    slug: slug.to_string(),
                    status,
                })
            }
            Err(e) => Err(Error::tenant_catalog(id, action)(e)),
        }
    }
}
