//! `migrate down` and `migrate undo` as rollouts, with the controls of a migration rollout:
//! selection, order, canary, waves, failure budget, dry run, several runners, resume, Ctrl-C.
//!
//! - `down` (kind `down`, or `down-dry-run`) takes every selected tenant to one target.
//! - `undo` (kind `undo`, or `undo-dry-run`) takes exactly the tenants an `up` rollout
//!   migrated back to each one's version before it (its item's `from`). A tenant that moved
//!   since is left alone and reported skipped, saying where it is.
//!
//! Invariant: a revert rollout is planned only once the whole revert is known to be possible
//! (every version to revert has a down script, no tenant is below its target, no shared pool
//! is named in part), exactly as [`Tenantry::migrate_down`] checks before it runs; nothing is
//! recorded for a refused one. Its runners revert with the migration set it was planned with
//! (the set's digest is recorded, and a changed directory refuses `--resume`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use super::down::{Planned, not_live};
use super::fleet::{Outcome, TenantReport, units};
use super::rollout::{Plan, RolloutOptions, Selection};
use super::{MigrationSet, RevertTarget};
use crate::Tenantry;
use crate::catalog::{ItemState, Rollout, RolloutItem, RolloutState, Tenant};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// The rollout kind of `migrate down`.
pub const DOWN_KIND: &str = "down";
/// The rollout kind of `migrate down --dry-run`.
pub const DOWN_DRY_RUN_KIND: &str = "down-dry-run";
/// The rollout kind of `migrate undo`.
pub const UNDO_KIND: &str = "undo";
/// The rollout kind of `migrate undo --dry-run`.
pub const UNDO_DRY_RUN_KIND: &str = "undo-dry-run";

/// Where each tenant of a revert rollout goes.
pub(super) enum Targets {
    /// `migrate down`: each tenant to the version planned for it (so a tenant run again —
    /// another chunk holding its shared pool, a lease taken over after its revert committed
    /// — goes nowhere further), or where the plan could not say, to this target.
    Fixed(RevertTarget),
    /// Each tenant back to its version before rollout `of` (`migrate undo`): by tenant id,
    /// the version the rollout found it at and the one it left it at.
    Undo {
        of: String,
        moves: HashMap<String, (i64, i64)>,
    },
}

impl Targets {
    /// A tenant's target (`planned`: the version its item was planned to), or its outcome
    /// when there is nothing to revert.
    fn of(
        &self,
        tenant: &Tenant,
        planned: Option<i64>,
    ) -> std::result::Result<RevertTarget, Outcome> {
        let (of, moves) = match self {
            Targets::Fixed(target) => return Ok(planned.map_or(*target, RevertTarget::To)),
            Targets::Undo { of, moves } => (of, moves),
        };
        let Some(&(from, to)) = moves.get(&tenant.id.to_string()) else {
            return Err(Outcome::Skipped {
                reason: format!("rollout {of} did not migrate it"),
            });
        };
        if tenant.version == to {
            return Ok(RevertTarget::To(from));
        }
        // Shared tenants share their pool's ledger: taken back with another tenant of it.
        if tenant.strategy.ops().pooled() && tenant.version == from {
            return Err(Outcome::Current { version: from });
        }
        Err(Outcome::Skipped {
            reason: format!(
                "moved since the rollout: at version {}, the rollout left it at {to}",
                tenant.version
            ),
        })
    }
}

impl Tenantry {
    /// Plans a rollout reverting the selected tenants to `target` (spares included: they are
    /// kept at the fleet's version) and returns its id; the same revert already running is
    /// joined (its id, `true`). Run it with [`Tenantry::run_rollout`]. Refused before
    /// anything is recorded as [`Tenantry::migrate_down`] refuses.
    pub async fn start_revert(
        &self,
        set: &MigrationSet,
        selection: &Selection,
        options: &RolloutOptions,
        target: RevertTarget,
        started_by: &str,
    ) -> Result<(String, bool)> {
        let tenants = self.select(selection, options).await?;
        let ids: Vec<TenantId> = tenants.iter().map(|t| t.id).collect();
        let plans = self.plan_reverts(set, tenants, &|_| target).await?;
        let (current, planned) = settled(&plans);
        let items = ids
            .into_iter()
            .map(|id| {
                let id_text = id.to_string();
                let target = planned.get(&id_text).copied();
                (id, current.get(&id_text).copied(), target)
            })
            .collect();
        let digest = set.digest();
        let mut recorded = options.to_json(selection);
        recorded["revert"] = match target {
            RevertTarget::To(version) => serde_json::json!({ "to": version }),
            RevertTarget::Steps(steps) => serde_json::json!({ "steps": steps }),
        };
        recorded["set"] = serde_json::Value::String(digest.clone());
        let plan = Plan {
            kind: match options.dry_run {
                true => DOWN_DRY_RUN_KIND,
                false => DOWN_KIND,
            },
            target_version: match target {
                RevertTarget::To(version) => Some(version),
                RevertTarget::Steps(_) => None,
            },
            options: recorded,
            key: &digest,
            started_by,
        };
        self.plan_rollout(plan, items, options).await
    }

    /// Plans a rollout taking the tenants rollout `id` migrated (those `options` select)
    /// back to their versions before it, and returns its id. Refused for a rollout that did
    /// not apply migrations (a dry run, a revert, an SQL run) or that is still running, and
    /// as [`Tenantry::migrate_down`] refuses.
    pub async fn start_undo(
        &self,
        id: &str,
        set: &MigrationSet,
        options: &RolloutOptions,
        started_by: &str,
    ) -> Result<(String, bool)> {
        let rollout = self.catalog.rollout(id).await?;
        let refuse = |reason: &str| {
            Err(Error::RolloutMismatch {
                id: id.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if rollout.kind != super::rollout::UP_KIND {
            return refuse("only a rollout that applied migrations can be undone");
        }
        if rollout.state == RolloutState::Running {
            return refuse("it is still running; let it finish or stop it first");
        }
        let moves = self.moves(id).await?;
        let mut tenants = self.select(&Selection::All, options).await?;
        tenants.retain(|t| moves.contains_key(&t.id.to_string()));
        let targets = Targets::Undo {
            of: id.to_owned(),
            moves,
        };
        // The whole revert of those still where the rollout left them, checked first.
        let to_revert: Vec<Tenant> = tenants
            .iter()
            .filter(|t| targets.of(t, None).is_ok())
            .cloned()
            .collect();
        let target_of = |t: &Tenant| targets.of(t, None).unwrap_or(RevertTarget::Steps(0));
        self.plan_reverts(set, to_revert, &target_of).await?;
        let digest = set.digest();
        let mut recorded = options.to_json(&Selection::All);
        recorded["undo"] = serde_json::Value::String(id.to_owned());
        recorded["set"] = serde_json::Value::String(digest.clone());
        let key = format!("{id}:{digest}");
        let plan = Plan {
            kind: match options.dry_run {
                true => UNDO_DRY_RUN_KIND,
                false => UNDO_KIND,
            },
            target_version: None,
            options: recorded,
            key: &key,
            started_by,
        };
        let items = tenants.iter().map(|t| (t.id, None, None)).collect();
        self.plan_rollout(plan, items, options).await
    }

    /// Each tenant rollout `id` migrated: its version before and after. A shared pool is
    /// migrated through the first of its tenants a runner reached; the others, reached later,
    /// were recorded `current` at the pool's new version, and moved with it all the same.
    async fn moves(&self, id: &str) -> Result<HashMap<String, (i64, i64)>> {
        let items = self.catalog.rollout_items(id).await?;
        let mut moves: HashMap<String, (i64, i64)> = items
            .iter()
            .filter(|i| i.state == ItemState::Migrated)
            .filter_map(|i| Some((i.tenant_id.clone(), (i.from_version?, i.to_version?))))
            .collect();
        let current: Vec<&RolloutItem> = items
            .iter()
            .filter(|i| i.state == ItemState::Current && i.to_version.is_some())
            .collect();
        if current.is_empty() {
            return Ok(moves);
        }
        // Each shared tenant's server (read a page at a time: no list of ids to bind).
        let mut servers: HashMap<String, String> = HashMap::new();
        self.catalog
            .each_tenant(|t| {
                if t.strategy.ops().pooled() {
                    servers.insert(t.id.to_string(), t.server.to_string());
                }
            })
            .await?;
        let pooled = |item_id: &str| servers.get(item_id).cloned();
        let pools: HashMap<String, (i64, i64)> = moves
            .iter()
            .filter_map(|(tenant, &moved)| Some((pooled(tenant)?, moved)))
            .collect();
        for item in current {
            if let Some(&(from, to)) = pooled(&item.tenant_id).and_then(|s| pools.get(&s))
                && item.to_version == Some(to)
            {
                moves.insert(item.tenant_id.clone(), (from, to));
            }
        }
        Ok(moves)
    }

    /// Where each tenant of revert rollout `rollout` goes, as it was planned; `None` for a
    /// rollout of another kind. Refused when `set` is not the set it was planned with.
    pub(super) async fn revert_targets(
        &self,
        rollout: &Rollout,
        set: &MigrationSet,
    ) -> Result<Option<Targets>> {
        let options = &rollout.options;
        let corrupt = |what: &str| Error::CorruptCatalog {
            field: "rollouts.options",
            value: format!("rollout {} has no {what}", rollout.id),
        };
        let targets = match rollout.kind.as_str() {
            DOWN_KIND | DOWN_DRY_RUN_KIND => {
                let revert = &options["revert"];
                match (revert["to"].as_i64(), revert["steps"].as_u64()) {
                    (Some(version), _) => Targets::Fixed(RevertTarget::To(version)),
                    (None, Some(steps)) => Targets::Fixed(RevertTarget::Steps(
                        usize::try_from(steps).unwrap_or(usize::MAX),
                    )),
                    (None, None) => return Err(corrupt("revert target")),
                }
            }
            UNDO_KIND | UNDO_DRY_RUN_KIND => {
                let of = options["undo"]
                    .as_str()
                    .ok_or_else(|| corrupt("rollout to undo"))?;
                Targets::Undo {
                    of: of.to_owned(),
                    moves: self.moves(of).await?,
                }
            }
            _ => return Ok(None),
        };
        if options["set"].as_str() != Some(set.digest().as_str()) {
            return Err(Error::RolloutMismatch {
                id: rollout.id.clone(),
                reason: "the migration directory changed since it was started; revert with the files it was planned with".to_owned(),
            });
        }
        Ok(Some(targets))
    }

    /// Reverts each of `tenants` (a rollout's claimed chunk) to its target, the configured
    /// number of units at a time (`commit` false: a dry run); once `stop` is set, no further
    /// unit starts. Every tenant's report, in the order they finished.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_reverts(
        &self,
        tenants: Vec<Tenant>,
        set: &MigrationSet,
        targets: &Targets,
        planned: &HashMap<TenantId, i64>,
        commit: bool,
        stop: &AtomicBool,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Vec<TenantReport> {
        let mut reports = Vec::new();
        // Tenants grouped by target, each group in units (a shared pool is reverted once).
        let mut groups: Vec<(RevertTarget, Vec<Tenant>)> = Vec::new();
        for tenant in tenants {
            match targets.of(&tenant, planned.get(&tenant.id).copied()) {
                Ok(target) => match groups.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, group)) => group.push(tenant),
                    None => groups.push((target, vec![tenant])),
                },
                Err(outcome) => {
                    let report = TenantReport {
                        tenant: tenant.slug.to_string(),
                        id: tenant.id.to_string(),
                        outcome,
                    };
                    progress(&report);
                    reports.push(report);
                }
            }
        }
        let work = groups
            .into_iter()
            .flat_map(|(target, group)| units(group).into_iter().map(move |unit| (target, unit)));
        let go_on =
            |_: &(RevertTarget, Vec<Tenant>)| std::future::ready(!stop.load(Ordering::SeqCst));
        let done: Vec<TenantReport> = futures::stream::iter(work)
            .take_while(go_on)
            .map(|(target, unit)| async move {
                let reports = match not_live(&unit[0]) {
                    Some(skipped) => vec![skipped],
                    None if commit => self.revert_unit(&unit, set, target).await,
                    None => self.dry_revert_unit(&unit, set, target).await,
                };
                for report in &reports {
                    progress(report);
                }
                reports
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        reports.extend(done);
        reports
    }
}

/// From a revert's plan: the tenants found already at their target, with their version,
/// and the version each tenant to revert is planned to reach.
fn settled(plans: &[(RevertTarget, Planned)]) -> (HashMap<String, i64>, HashMap<String, i64>) {
    let mut current = HashMap::new();
    let mut planned = HashMap::new();
    for (_, plan) in plans {
        match plan {
            Planned::Report(reports) => {
                for r in reports {
                    if let Outcome::Current { version } = r.outcome {
                        current.insert(r.id.clone(), version);
                    }
                }
            }
            Planned::Revert(unit, to) => {
                for t in unit {
                    planned.insert(t.id.to_string(), *to);
                }
            }
            Planned::Failed(..) => {}
        }
    }
    (current, planned)
}
