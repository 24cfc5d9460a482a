//! A rollout's dry run of one unit: under the unit's lock, every pending migration applied
//! inside one transaction that is rolled back. Nothing is recorded on the tenant. Engines
//! whose DDL commits itself (MySQL) cannot be dry-run: their tenants are reported skipped,
//! saying so.

use sqlx::Connection;

use super::fleet::{Outcome, TenantReport};
use super::{MigrationSet, apply};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::error::Error;

impl Tenantry {
    pub(crate) async fn dry_run_unit(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
    ) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let outcome = match lead.status.is_live() {
            false => Outcome::Skipped {
                reason: format!("tenant is {}", lead.status),
            },
            true => self.dry_run_lead(lead, set).await,
        };
        unit.iter()
            .map(|t| TenantReport {
                tenant: t.slug.to_string(),
                id: t.id.to_string(),
                outcome: outcome.clone(),
            })
            .collect()
    }

    async fn dry_run_lead(&self, lead: &Tenant, set: &MigrationSet) -> Outcome {
        let failed = |e: Error| Outcome::Failed {
            version: lead.version,
            error: e.to_string(),
        };
        let mut target = match self.migration_target(lead).await {
            Ok(target) => target,
            Err(e) => return failed(e),
        };
        if !target.engine.dialect().transactional_ddl() {
            let _ = target.conn.close().await;
            return Outcome::Skipped {
                reason: format!(
                    "dry run impossible: {} commits each DDL statement itself",
                    target.engine
                ),
            };
        }
        let held = match target
            .lock
            .acquire(&target.owner, &mut target.conn, self.config.lock_wait)
            .await
        {
            Ok(Some(held)) => held,
            Ok(None) => {
                let _ = target.conn.close().await;
                return Outcome::Skipped {
                    reason: "held by another runner".to_owned(),
                };
            }
            Err(e) => return failed(e),
        };
        let result = apply::dry_run(&mut target.conn, &target.owner, set, &target.hook).await;
        held.release(&target.owner, &mut target.conn).await;
        let _ = target.conn.close().await;
        match result {
            Ok(applied) if applied.is_empty() => Outcome::Current {
                version: lead.version,
            },
            Ok(applied) => Outcome::Migrated {
                from: lead.version,
                to: applied.iter().copied().max().unwrap_or(lead.version),
                applied,
            },
            Err(Error::DryRunImpossible { reason, .. }) => Outcome::Skipped { reason },
            Err(e) => failed(e),
        }
    }
}
