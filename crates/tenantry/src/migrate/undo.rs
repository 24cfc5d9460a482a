//! `migrate undo <rollout>`: reverts exactly the tenants a rollout migrated, each to the
//! version it had before (the item's `from`), with the `.down.sql` scripts — and nothing
//! else. A tenant that moved since (another rollout took it further, or it was reverted) is
//! left alone and reported skipped, saying where it is.

use std::collections::BTreeMap;

use super::fleet::{FleetReport, Outcome, TenantReport};
use super::{MigrationSet, RevertTarget};
use crate::Tenantry;
use crate::catalog::{ItemState, Tenant};
use crate::error::{Error, Result};

impl Tenantry {
    /// Reverts the tenants rollout `id` migrated to their versions before it. Refused for a
    /// dry run (it moved nothing) and for a rollout still running.
    pub async fn undo_rollout(
        &self,
        id: &str,
        set: &MigrationSet,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let rollout = self.catalog.rollout(id).await?;
        let refuse = |reason: &str| {
            Err(Error::RolloutMismatch {
                id: id.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if rollout.kind != "up" {
            return refuse("only a rollout that applied migrations can be undone");
        }
        if rollout.state == crate::catalog::RolloutState::Running {
            return refuse("it is still running; let it finish or stop it first");
        }
        let items = self.catalog.rollout_items(id).await?;
        let tenants: BTreeMap<String, Tenant> = self
            .catalog
            .tenants()
            .await?
            .into_iter()
            .map(|t| (t.id.to_string(), t))
            .collect();
        let mut skipped = Vec::new();
        // Tenants to revert, grouped by the version each goes back to.
        let mut groups: BTreeMap<i64, Vec<Tenant>> = BTreeMap::new();
        for item in items.iter().filter(|i| i.state == ItemState::Migrated) {
            let Some(tenant) = tenants.get(&item.tenant_id) else {
                continue;
            };
            let (Some(from), Some(to)) = (item.from_version, item.to_version) else {
                continue;
            };
            if tenant.version != to {
                skipped.push(TenantReport {
                    tenant: tenant.slug.to_string(),
                    id: tenant.id.to_string(),
                    outcome: Outcome::Skipped {
                        reason: format!(
                            "moved since the rollout: at version {}, the rollout left it at {to}",
                            tenant.version
                        ),
                    },
                });
                continue;
            }
            groups.entry(from).or_default().push(tenant.clone());
        }
        let mut reports = skipped;
        for report in &reports {
            progress(report);
        }
        for (from, group) in groups {
            let done = self
                .migrate_down(set, group, RevertTarget::To(from), progress)
                .await?;
            reports.extend(done.tenants);
        }
        Ok(FleetReport { tenants: reports })
    }
}
