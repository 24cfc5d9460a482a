//! A rollout's dry run of one unit: under the unit's lock, every pending migration applied
//! (or, for a revert, every version above its target reverted) inside one transaction that
//! is rolled back. Nothing is recorded on the tenant. Engines
//! whose DDL commits itself (MySQL) cannot be dry-run: their tenants are reported skipped,
//! saying so.

use sqlx::{AnyConnection, Connection};

use super::fleet::{Outcome, TenantReport};
use super::{MigrationSet, RevertTarget, apply, down};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::storage::Hook;

impl Tenantry {
    pub(crate) async fn dry_run_unit(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
    ) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let run = self
            .dry_locked(lead, async |conn, _, owner, hook| {
                apply::dry_run(conn, owner, set, hook).await
            })
            .await;
        let outcome = match run {
            Ok(applied) if applied.is_empty() => Outcome::Current {
                version: lead.version,
            },
            Ok(applied) => Outcome::Migrated {
                from: lead.version,
                to: applied.iter().copied().max().unwrap_or(lead.version),
                applied,
            },
            Err(outcome) => outcome,
        };
        each(unit, &outcome)
    }

    /// A revert rollout's dry run of one unit: its versions above `target` reverted, newest
    /// first, inside one transaction that is rolled back.
    pub(crate) async fn dry_revert_unit(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
        target: RevertTarget,
    ) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let run = self
            .dry_locked(lead, async |conn, engine, owner, hook| {
                down::dry_revert(conn, engine, owner, set, target, hook).await
            })
            .await;
        let outcome = match run {
            Ok((reverted, _)) if reverted.is_empty() => Outcome::Current {
                version: lead.version,
            },
            Ok((reverted, to)) => Outcome::Reverted {
                from: lead.version,
                to,
                reverted,
            },
            Err(outcome) => outcome,
        };
        each(unit, &outcome)
    }

    /// Runs `work` on the storage of a live unit under its lock, where DDL is transactional;
    /// otherwise the unit's outcome (skipped, or failed) without running it.
    async fn dry_locked<R>(
        &self,
        lead: &Tenant,
        work: impl AsyncFnOnce(&mut AnyConnection, Engine, &str, &Hook) -> Result<R>,
    ) -> std::result::Result<R, Outcome> {
        if !lead.status.is_live() {
            return Err(Outcome::Skipped {
                reason: format!("tenant is {}", lead.status),
            });
        }
        let failed = |e: Error| Outcome::Failed {
            version: lead.version,
            error: e.to_string(),
        };
        let mut target = self.migration_target(lead).await.map_err(failed)?;
        if !target.engine.dialect().transactional_ddl() {
            let _ = target.conn.close().await;
            return Err(Outcome::Skipped {
                reason: format!(
                    "dry run impossible: {} commits each DDL statement itself",
                    target.engine
                ),
            });
        }
        let held = match target
            .lock
            .acquire(&target.owner, &mut target.conn, self.config.lock_wait)
            .await
        {
            Ok(Some(held)) => held,
            Ok(None) => {
                let _ = target.conn.close().await;
                return Err(Outcome::Skipped {
                    reason: "held by another runner".to_owned(),
                });
            }
            Err(e) => return Err(failed(e)),
        };
        let result = work(&mut target.conn, target.engine, &target.owner, &target.hook).await;
        held.release(&target.owner, &mut target.conn).await;
        let _ = target.conn.close().await;
        result.map_err(|e| match e {
            Error::DryRunImpossible { reason, .. } => Outcome::Skipped { reason },
            e => failed(e),
        })
    }
}

/// The same outcome for each tenant of a unit.
fn each(unit: &[Tenant], outcome: &Outcome) -> Vec<TenantReport> {
    unit.iter()
        .map(|t| TenantReport {
            tenant: t.slug.to_string(),
            id: t.id.to_string(),
            outcome: outcome.clone(),
        })
        .collect()
}
