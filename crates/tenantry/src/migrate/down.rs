//! Reverting migrations with their `.down.sql` scripts: one unit (a tenant, or a server's
//! shared pool for its shared tenants) under its lock, newest version first, and over many
//! tenants at once.
//!
//! Invariants:
//! - nothing is reverted anywhere before every version to revert, on every selected unit, is
//!   known to have a down script and no unit is below the target (a plan read from the
//!   catalog, or from the unit's ledger where the catalog cannot say); under the lock the
//!   ledger is read again and checked the same way before the unit's first down script;
//! - where DDL is transactional, a down script, its hook and the removal of its ledger row
//!   commit together or not at all; elsewhere (MySQL, a `-- no-transaction` down file) the row
//!   is `dirty` from before the script's first statement until after its last;
//! - the unit's result, read back from its ledger, is recorded in the catalog before its lock
//!   is released.
//!
//! This module plans a revert and reports it; [`unit`] reverts one unit under its lock.

mod unit;

pub(crate) use unit::dry_revert;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use futures::StreamExt;
use sqlx::Connection;
use tracing::Instrument;

use super::apply::check_ledger;
use super::fleet::{FleetReport, Outcome, TenantReport, skipped_by};
use super::ledger::{self, LedgerRow};
use super::source::{DownScript, Migration, MigrationSet};
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::error::{Error, Result};

/// How far back a revert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevertTarget {
    /// Every applied version greater than this one (0: every version). Refused for a tenant
    /// whose version is below it.
    To(i64),
    /// The N newest applied versions (fewer if fewer are applied).
    Steps(usize),
}

impl RevertTarget {
    /// The versions to revert, newest first, of a unit whose ledger has `applied` (in
    /// ascending order).
    fn versions(self, owner: &str, applied: &[i64]) -> Result<Vec<i64>> {
        let current = applied.last().copied().unwrap_or(0);
        match self {
            RevertTarget::To(target) if target > current => Err(Error::RevertTargetAbove {
                tenant: owner.to_owned(),
                version: current,
                target,
            }),
            RevertTarget::To(target) => Ok(applied
                .iter()
                .rev()
                .copied()
                .filter(|&v| v > target)
                .collect()),
            RevertTarget::Steps(n) => Ok(applied.iter().rev().take(n).copied().collect()),
        }
    }
}

impl FleetReport {
    /// How many tenants a revert took back.
    pub fn reverted(&self) -> usize {
        self.tenants
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Reverted { .. }))
            .count()
    }
}

/// What a revert decided for a unit before anything ran.
pub(crate) enum Planned {
    /// Revert it (the versions are read again under its lock), as planned down to this
    /// version.
    Revert(Vec<Tenant>, i64),
    /// Nothing to run: already at the target, or not live.
    Report(Vec<TenantReport>),
    /// Its ledger could not be read, or disagrees with the files: reported failed once the
    /// whole plan holds, nothing run.
    Failed(Vec<Tenant>, Error),
}

fn report(tenant: &Tenant, outcome: Outcome) -> TenantReport {
    TenantReport {
        tenant: tenant.slug.to_string(),
        id: tenant.id.to_string(),
        outcome,
    }
}

/// A tenant that is not live is not reverted: it needs a repair first.
pub(crate) fn not_live(lead: &Tenant) -> Option<TenantReport> {
    let reason = format!(
        "tenant is {}; run `tenantry tenant repair {}`",
        lead.status, lead.slug
    );
    (!lead.status.is_live()).then(|| report(lead, Outcome::Skipped { reason }))
}

/// Where a unit ends once `reverted` of its `applied` versions are reverted: its highest
/// applied version left (0: none).
fn remaining(applied: &[i64], reverted: &[i64]) -> i64 {
    applied
        .iter()
        .copied()
        .filter(|v| !reverted.contains(v))
        .max()
        .unwrap_or(0)
}

/// The applied versions of a ledger, ascending.
fn applied_versions(rows: &[LedgerRow]) -> Vec<i64> {
    rows.iter()
        .filter(|r| r.is_applied())
        .map(|r| r.version)
        .collect()
}

/// The applied versions of a unit as its catalog row proves them without opening it: its
/// recorded ledger digest is the digest of the set's versions up to its version, so its
/// ledger holds exactly those (`None`: the catalog cannot say).
fn known_ledger(lead: &Tenant, set: &MigrationSet) -> Option<Vec<i64>> {
    if lead.dirty_version.is_some() {
        return None;
    }
    let prefix: Vec<(i64, String)> = set
        .iter()
        .filter(|m| m.version <= lead.version)
        .map(|m| (m.version, hex::encode(&m.checksum)))
        .collect();
    let digest = ledger::digest_of(prefix.iter().map(|(v, c)| (*v, c.as_str())));
    (lead.ledger_digest.as_deref() == Some(digest.as_str()))
        .then(|| prefix.iter().map(|(v, _)| *v).collect())
}

/// Each version's migration and down script, in the order given; the first version without
/// a down script refuses them all.
fn scripts<'a>(
    owner: &str,
    set: &'a MigrationSet,
    versions: &[i64],
    rows: &[LedgerRow],
) -> Result<Vec<(&'a Migration, &'a DownScript)>> {
    versions
        .iter()
        .map(|&version| {
            let migration = set.get(version);
            match migration.and_then(|m| m.down.as_ref().map(|d| (m, d))) {
                Some(found) => Ok(found),
                None => Err(Error::DownMissing {
                    tenant: owner.to_owned(),
                    version,
                    file: match migration {
                        Some(m) => m.down_path(),
                        None => expected_down(set, version, rows),
                    },
                }),
            }
        })
        .collect()
}

/// Where the down file of a version the set does not have would be, named after the
/// description its ledger row recorded.
fn expected_down(set: &MigrationSet, version: i64, rows: &[LedgerRow]) -> PathBuf {
    let description = rows
        .iter()
        .find(|r| r.version == version)
        .map(|r| r.description.replace(' ', "_"))
        .unwrap_or_default();
    set.dir.join(format!("{version}_{description}.down.sql"))
}

/// Refuses live shared tenants named without every other live shared tenant of their server
/// (`catalog`: every tenant): their pool has one ledger, so it cannot be reverted for some of
/// them only.
fn check_whole_pools(tenants: &[Tenant], catalog: &[Tenant]) -> Result<()> {
    let named: HashSet<String> = tenants.iter().map(|t| t.id.to_string()).collect();
    let mut servers: Vec<&str> = tenants
        .iter()
        .filter(|t| t.strategy.ops().pooled() && t.status.is_live())
        .map(|t| t.server.as_str())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    for server in servers {
        let missing: Vec<String> = catalog
            .iter()
            .filter(|t| {
                t.server.as_str() == server
                    && t.strategy.ops().pooled()
                    && t.status.is_live()
                    && !named.contains(&t.id.to_string())
            })
            .map(|t| t.slug.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::SharedPoolPartial {
                server: server.to_owned(),
                missing,
            });
        }
    }
    Ok(())
}

impl Tenantry {
    /// Reverts `tenants` (as listed from the catalog) to `target` with the set's down scripts,
    /// `config.concurrency` units at a time, going on past a failing unit. Tenants that are
    /// not live are reported as skipped; a tenant already at the target as current.
    ///
    /// Before anything runs, it refuses: a `To` version the set does not have
    /// ([`Error::RevertTargetUnknown`]); some but not all live shared tenants of a server,
    /// which share one ledger ([`Error::SharedPoolPartial`]); a version to revert without a
    /// down script on any tenant ([`Error::DownMissing`]); a tenant below a `To` target
    /// ([`Error::RevertTargetAbove`]). Calls `progress` as each tenant finishes. A rollout
    /// of the same revert, with a deploy's controls, is [`Tenantry::start_revert`].
    pub async fn migrate_down(
        &self,
        set: &MigrationSet,
        tenants: Vec<Tenant>,
        target: RevertTarget,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let order: HashMap<String, usize> = tenants
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| (t.id.to_string(), i))
            .collect();
        let plans = self.plan_reverts(set, tenants, &|_| target).await?;
        let mut reports: Vec<TenantReport> = futures::stream::iter(plans)
            .map(|(target, plan)| async move {
                let reports = match plan {
                    Planned::Report(reports) => reports,
                    Planned::Failed(unit, error) => self.revert_failed(&unit, error).await,
                    Planned::Revert(unit, _) => self.revert_unit(&unit, set, target).await,
                };
                for report in &reports {
                    progress(report);
                }
                reports
            })
            .buffer_unordered(self.config.concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        reports.sort_by_key(|r| order.get(&r.id).copied());
        Ok(FleetReport { tenants: reports })
    }

    /// The whole plan of a revert, each unit with its target (`target_of` its lead), without
    /// changing anything: `Err` is a refusal of the whole revert (see
    /// [`Tenantry::migrate_down`]). Each tenant is taken as the catalog has it now, once even
    /// if named twice.
    pub(crate) async fn plan_reverts(
        &self,
        set: &MigrationSet,
        tenants: Vec<Tenant>,
        target_of: &(dyn Fn(&Tenant) -> RevertTarget + Sync),
    ) -> Result<Vec<(RevertTarget, Planned)>> {
        // The plan trusts each tenant's recorded ledger digest: read them fresh.
        let catalog = self.catalog.tenants().await?;
        let fresh: HashMap<String, &Tenant> =
            catalog.iter().map(|t| (t.id.to_string(), t)).collect();
        let mut seen = HashSet::new();
        let tenants: Vec<Tenant> = tenants
            .into_iter()
            .filter(|t| seen.insert(t.id.to_string()))
            .map(|t| match fresh.get(&t.id.to_string()) {
                Some(now) => (*now).clone(),
                None => t,
            })
            .collect();
        for tenant in &tenants {
            if let RevertTarget::To(version) = target_of(tenant)
                && version != 0
                && set.get(version).is_none()
            {
                return Err(Error::RevertTargetUnknown {
                    target: version,
                    dir: set.dir.clone(),
                });
            }
        }
        check_whole_pools(&tenants, &catalog)?;
        // Shared tenants of one server form one unit: their pool is reverted once.
        let units = super::fleet::units(tenants);
        // The whole plan first: a refusal anywhere leaves every tenant as it was.
        let mut plans: Vec<(usize, Result<(RevertTarget, Planned)>)> = futures::stream::iter(units)
            .enumerate()
            .map(|(i, unit)| async move {
                let target = target_of(&unit[0]);
                let plan = self.plan_revert(unit, set, target).await;
                (i, plan.map(|plan| (target, plan)))
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        plans.sort_by_key(|(i, _)| *i);
        plans.into_iter().map(|(_, plan)| plan).collect()
    }

    /// Decides what a unit will revert without changing anything: from its catalog row when
    /// its recorded ledger digest proves its versions, else from its ledger. `Err` is a
    /// refusal of the whole revert.
    async fn plan_revert(
        &self,
        unit: Vec<Tenant>,
        set: &MigrationSet,
        target: RevertTarget,
    ) -> Result<Planned> {
        let Some(lead) = unit.first() else {
            return Ok(Planned::Report(Vec::new()));
        };
        if let Some(skipped) = not_live(lead) {
            return Ok(Planned::Report(vec![skipped]));
        }
        let slug = lead.slug.as_str();
        let (applied, rows) = match known_ledger(lead, set) {
            Some(applied) => (applied, Vec::new()),
            None => {
                // A ledger that disagrees with the files fails its unit, as the run would.
                let read = self.read_ledger(lead).await.and_then(|(owner, rows)| {
                    check_ledger(&owner, &rows, set)?;
                    Ok(rows)
                });
                match read {
                    Ok(rows) => (applied_versions(&rows), rows),
                    Err(e) => return Ok(Planned::Failed(unit, e)),
                }
            }
        };
        let versions = target.versions(slug, &applied)?;
        scripts(slug, set, &versions, &rows)?;
        if versions.is_empty() {
            let version = applied.last().copied().unwrap_or(0);
            return Ok(Planned::Report(
                unit.iter()
                    .map(|t| report(t, Outcome::Current { version }))
                    .collect(),
            ));
        }
        Ok(Planned::Revert(unit, remaining(&applied, &versions)))
    }

    /// A unit's owner (for messages) and ledger, read without its lock (for a plan: the
    /// locked run reads it again).
    async fn read_ledger(&self, lead: &Tenant) -> Result<(String, Vec<LedgerRow>)> {
        let mut target = self.migration_target(lead).await?;
        let rows = ledger::read(&mut target.conn)
            .await
            .map_err(Error::storage(&target.owner, "read the migration ledger"));
        let _ = target.conn.close().await;
        Ok((target.owner, rows?))
    }

    /// Reverts one unit (a tenant, or the live shared tenants of one server) and records the
    /// result in the catalog. Never returns an error: every failure is the unit's outcome.
    pub(crate) async fn revert_unit(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
        target: RevertTarget,
    ) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let span = tracing::info_span!("migrate_down", tenant = %lead.slug, tenant_id = %lead.id);
        self.revert_unit_traced(unit, set, target)
            .instrument(span)
            .await
    }

    async fn revert_unit_traced(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
        target: RevertTarget,
    ) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let live = Status::LIVE;
        let run = match self.migration_target(lead).await {
            Ok(storage) => self.revert_locked(storage, set, target, lead, &live).await,
            // Storage that cannot be opened: gone with a delete that ran meanwhile, or a
            // server that is down.
            Err(e) => match self.catalog.tenant_by_id(lead.id).await {
                Ok(now) if !now.status.is_live() => Err(Error::InvalidTransition {
                    slug: lead.slug.to_string(),
                    status: now.status,
                    action: "revert",
                    hint: "",
                }),
                Ok(_) => Err(e),
                Err(catalog) => Err(catalog),
            },
        };
        let run = match run {
            Ok(run) => run,
            Err(e) if let Some(skipped) = skipped_by(unit, &e) => return skipped,
            Err(e) => return self.revert_failed(unit, e).await,
        };
        let Some(error) = run.error else {
            return self.reverted(unit, &run.reverted, run.version).await;
        };
        self.report_failure(unit, &error, &run.reverted, run.version)
            .await
    }

    /// Reports a unit that failed before its storage was changed, recording the error on it
    /// (it keeps its version).
    pub(crate) async fn revert_failed(&self, unit: &[Tenant], error: Error) -> Vec<TenantReport> {
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        let text = error.to_string();
        if let Err(catalog) = self
            .record_run(lead, &lead.ledger_state(), Some(&text))
            .await
        {
            tracing::warn!(tenant = %lead.slug, error = %catalog, "could not record the failure");
        }
        self.report_failure(unit, &error, &[], lead.version).await
    }

    /// A `failed` outcome and a `migrate.down` event for each tenant of a unit.
    async fn report_failure(
        &self,
        unit: &[Tenant],
        error: &Error,
        reverted: &[i64],
        version: i64,
    ) -> Vec<TenantReport> {
        let error = error.to_string();
        let detail = (!reverted.is_empty()).then(|| format!("reverted {reverted:?} first"));
        let mut reports = Vec::with_capacity(unit.len());
        for tenant in unit {
            tracing::info!(tenant = %tenant.slug, %error, "revert failed");
            self.event(
                tenant,
                "migrate.down",
                "failed",
                detail.clone(),
                Some(error.clone()),
            )
            .await;
            reports.push(report(
                tenant,
                Outcome::Failed {
                    version,
                    error: error.clone(),
                },
            ));
        }
        reports
    }

    /// A `reverted` (or, with nothing reverted, `current`) outcome and a `migrate.down` event
    /// for each tenant of a unit.
    async fn reverted(&self, unit: &[Tenant], reverted: &[i64], to: i64) -> Vec<TenantReport> {
        let mut reports = Vec::with_capacity(unit.len());
        for tenant in unit {
            if reverted.is_empty() {
                reports.push(report(tenant, Outcome::Current { version: to }));
                continue;
            }
            let from = tenant.version;
            let detail = format!("{from} -> {to} (reverted {reverted:?})");
            self.event(tenant, "migrate.down", "ok", Some(detail), None)
                .await;
            reports.push(report(
                tenant,
                Outcome::Reverted {
                    from,
                    to,
                    reverted: reverted.to_vec(),
                },
            ));
        }
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_pick_the_newest_applied_versions() {
        let applied = [1, 2, 4];
        assert_eq!(
            RevertTarget::Steps(1).versions("a", &applied).ok(),
            Some(vec![4])
        );
        assert_eq!(
            RevertTarget::Steps(5).versions("a", &applied).ok(),
            Some(vec![4, 2, 1])
        );
        assert_eq!(
            RevertTarget::To(0).versions("a", &applied).ok(),
            Some(vec![4, 2, 1])
        );
        assert_eq!(
            RevertTarget::To(2).versions("a", &applied).ok(),
            Some(vec![4])
        );
        assert_eq!(
            RevertTarget::To(4).versions("a", &applied).ok(),
            Some(vec![])
        );
        assert!(matches!(
            RevertTarget::To(5).versions("a", &applied),
            Err(Error::RevertTargetAbove {
                version: 4,
                target: 5,
                ..
            })
        ));
        assert_eq!(RevertTarget::To(0).versions("a", &[]).ok(), Some(vec![]));
    }
}
