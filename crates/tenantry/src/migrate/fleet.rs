//! Rolling a migration set out over many tenants: concurrent, one lock per tenant, going on
//! past failures, ending in a report.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use super::{MigrationSet, Run};
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::error::{Error, Result};
use crate::storage::Sessions;

/// What happened to one tenant.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Migrations were applied; `to` is the version its ledger now records.
    Migrated {
        from: i64,
        to: i64,
        applied: Vec<i64>,
    },
    /// Nothing was pending.
    Current { version: i64 },
    /// A migration failed or the ledger was refused; the tenant keeps `version`.
    Failed { version: i64, error: String },
    /// Not attempted; not a failure (another runner holds it, or it is not live).
    Skipped { reason: String },
    /// Versions were reverted (`migrate down`), newest first; `to` is the version its
    /// ledger now records.
    Reverted {
        from: i64,
        to: i64,
        reverted: Vec<i64>,
    },
    /// An SQL run's statements ran in one transaction, committed or (a dry run) rolled back;
    /// `rows` are the last statement's.
    Ran {
        rows: crate::session::JsonRows,
        committed: bool,
    },
}

/// One tenant's line in a fleet report.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    pub id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of a fleet migration, one entry per tenant in catalog order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    pub tenants: Vec<TenantReport>,
}

impl FleetReport {
    fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.tenants.iter().filter(|t| pred(&t.outcome)).count()
    }

    pub fn migrated(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Migrated { .. }))
    }

    pub fn current(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Current { .. }))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }

    /// The tenants that failed, with their errors.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tenants.iter().filter_map(|t| match &t.outcome {
            Outcome::Failed { error, .. } => Some((t.tenant.as_str(), error.as_str())),
            _ => None,
        })
    }

    pub fn is_success(&self) -> bool {
        self.failed().next().is_none()
    }
}

/// How a rollout treats its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply what is pending and record it.
    Apply,
    /// Apply what is pending inside a transaction that is rolled back; record nothing.
    DryRun,
}

/// Groups tenants into units: a tenant, or the live shared tenants of one server, whose
/// pool is migrated once.
pub(crate) fn units(tenants: Vec<Tenant>) -> Vec<Vec<Tenant>> {
    let mut units: Vec<Vec<Tenant>> = Vec::new();
    let mut pools: BTreeMap<String, usize> = BTreeMap::new();
    for tenant in tenants {
        if tenant.strategy.ops().pooled() && tenant.status.is_live() {
            let server = tenant.server.to_string();
            if let Some(&i) = pools.get(&server) {
                units[i].push(tenant);
                continue;
            }
            pools.insert(server, units.len());
        }
        units.push(vec![tenant]);
    }
    units
}

/// The unit's reports when the catalog already shows it current: live, no error on record,
/// and the version and ledger digest its last run read back equal the set's. A rollout then
/// does not open its storage (`migrate verify` does).
fn current(unit: &[Tenant], set: &MigrationSet, digest: &str) -> Option<Vec<TenantReport>> {
    let lead = unit.first()?;
    is_current(lead, set, digest).then(|| {
        unit.iter()
            .map(|t| TenantReport {
                tenant: t.slug.to_string(),
                id: t.id.to_string(),
                outcome: Outcome::Current { version: t.version },
            })
            .collect()
    })
}

/// A unit's reports when `error` means it was left alone rather than failed: its lock is
/// another runner's (every tenant of the unit skipped), or its lead changed status meanwhile.
pub(super) fn skipped_by(unit: &[Tenant], error: &Error) -> Option<Vec<TenantReport>> {
    let skipped = |t: &Tenant, reason: String| TenantReport {
        tenant: t.slug.to_string(),
        id: t.id.to_string(),
        outcome: Outcome::Skipped { reason },
    };
    match error {
        Error::Locked { .. } => Some(
            unit.iter()
                .map(|t| skipped(t, "held by another runner".to_owned()))
                .collect(),
        ),
        Error::InvalidTransition { status, .. } => {
            let lead = unit.first()?;
            Some(vec![skipped(lead, format!("tenant is {status} now"))])
        }
        _ => None,
    }
}

/// Whether the catalog shows `tenant` current with `set` (whose digest is `digest`): live,
/// no error on record, and the version and ledger digest its last run read back equal the
/// set's.
pub(crate) fn is_current(tenant: &Tenant, set: &MigrationSet, digest: &str) -> bool {
    tenant.status.is_live()
        && tenant.last_error.is_none()
        && tenant.version == set.latest()
        && tenant.ledger_digest.as_deref() == Some(digest)
}

impl Tenantry {
    /// Migrates every live (active or suspended) tenant; tenants that are failed or still
    /// provisioning are reported as skipped (they need `repair`). Calls `progress` as each
    /// tenant finishes.
    pub async fn migrate_all(
        &self,
        set: &MigrationSet,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let tenants = self
            .catalog
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != Status::Deleted)
            .collect();
        self.migrate_tenants(set, tenants, progress).await
    }

    /// Migrates the named tenants. An unknown slug is an error before anything runs.
    pub async fn migrate_slugs(
        &self,
        set: &MigrationSet,
        slugs: &[String],
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let mut tenants = Vec::with_capacity(slugs.len());
        for slug in slugs {
            tenants.push(self.catalog.tenant(slug).await?);
        }
        self.migrate_tenants(set, tenants, progress).await
    }

    /// Migrates `tenants` (as listed from the catalog), as [`Tenantry::migrate_all`] does.
    pub async fn migrate_tenants(
        &self,
        set: &MigrationSet,
        tenants: Vec<Tenant>,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let order: HashMap<String, usize> = tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.to_string(), i))
            .collect();
        let sessions = Sessions::new();
        let mut reports = self
            .run_units(set, units(tenants), Mode::Apply, &sessions, None, progress)
            .await;
        sessions.close().await;
        reports.sort_by_key(|r| order.get(&r.id).copied());
        Ok(FleetReport { tenants: reports })
    }

    /// Runs `units` with the configured concurrency, handing connections on through
    /// `sessions`; every unit's reports, in the order they finished. Once `stop` is set, no
    /// further unit starts (those running finish).
    pub(crate) async fn run_units(
        &self,
        set: &MigrationSet,
        units: Vec<Vec<Tenant>>,
        mode: Mode,
        sessions: &Sessions,
        stop: Option<&AtomicBool>,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Vec<TenantReport> {
        let digest = &set.digest();
        let go_on = move |_: &Vec<Tenant>| {
            let stopped = stop.is_some_and(|s| s.load(Ordering::SeqCst));
            std::future::ready(!stopped)
        };
        futures::stream::iter(units)
            .take_while(go_on)
            .map(|unit| {
                let lead = &unit[0];
                let span =
                    tracing::info_span!("migrate", tenant = %lead.slug, tenant_id = %lead.id);
                async move {
                    let reports = match (mode, current(&unit, set, digest)) {
                        (Mode::Apply, Some(reports)) => reports,
                        (Mode::Apply, None) => {
                            self.migrate_unit(&unit, set, sessions)
                                .instrument(span)
                                .await
                        }
                        (Mode::DryRun, _) => self.dry_run_unit(&unit, set).instrument(span).await,
                    };
                    for report in &reports {
                        progress(report);
                    }
                    reports
                }
            })
            .buffer_unordered(self.config.concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await
    }

    /// Migrates one unit (a tenant, or the live shared tenants of one server) and records the
    /// result in the catalog. Never returns an error: every failure is the unit's outcome, so
    /// a fleet run goes on.
    async fn migrate_unit(
        &self,
        unit: &[Tenant],
        set: &MigrationSet,
        sessions: &Sessions,
    ) -> Vec<TenantReport> {
        let report = |tenant: &Tenant, outcome: Outcome| TenantReport {
            tenant: tenant.slug.to_string(),
            id: tenant.id.to_string(),
            outcome,
        };
        let Some(lead) = unit.first() else {
            return Vec::new();
        };
        if !lead.status.is_live() {
            let reason = format!(
                "tenant is {}; run `tenantry tenant repair {}`",
                lead.status, lead.slug
            );
            return vec![report(lead, Outcome::Skipped { reason })];
        }
        let live = Status::LIVE;
        let run = match self.migration_target_in(lead, Some(sessions)).await {
            Ok(target) => {
                self.run_migrations_in(target, set, false, lead, &live, Some(sessions))
                    .await
            }
            // Storage that cannot be opened: gone with a delete that ran meanwhile, or a
            // server that is down.
            Err(e) => match self.still_live(lead).await {
                Ok(true) => Err(e),
                Ok(false) => Err(Error::InvalidTransition {
                    slug: lead.slug.to_string(),
                    status: Status::Deleted,
                    action: "migrate",
                    hint: "",
                }),
                Err(catalog) => Err(catalog),
            },
        };
        let run = match run {
            Ok(run) => run,
            Err(e) if let Some(skipped) = skipped_by(unit, &e) => return skipped,
            Err(e) => {
                // Nothing ran: the tenant keeps its version, with the error on record.
                let error = e.to_string();
                if let Err(catalog) = self
                    .record_run(lead, &lead.ledger_state(), Some(&error))
                    .await
                {
                    tracing::warn!(tenant = %lead.slug, error = %catalog, "could not record the failure");
                }
                Run {
                    applied: Vec::new(),
                    version: lead.version,
                    error: Some(e),
                    recorded_event: false,
                }
            }
        };
        let error = run.error.as_ref().map(ToString::to_string);
        let mut reports = Vec::with_capacity(unit.len());
        for tenant in unit {
            let outcome = match &error {
                Some(error) => {
                    tracing::info!(tenant = %tenant.slug, %error, "migration failed");
                    if !run.recorded_event {
                        self.event(tenant, "migrate", "failed", None, Some(error.clone()))
                            .await;
                    }
                    Outcome::Failed {
                        version: run.version,
                        error: error.clone(),
                    }
                }
                None if run.applied.is_empty() => Outcome::Current {
                    version: run.version,
                },
                None => {
                    let detail = format!(
                        "{} -> {} (applied {:?})",
                        tenant.version, run.version, run.applied
                    );
                    if !run.recorded_event {
                        self.event(tenant, "migrate", "ok", Some(detail), None)
                            .await;
                    }
                    Outcome::Migrated {
                        from: tenant.version,
                        to: run.version,
                        applied: run.applied.clone(),
                    }
                }
            };
            reports.push(report(tenant, outcome));
        }
        reports
    }

    /// Whether the tenant is still active or suspended in the catalog.
    async fn still_live(&self, tenant: &Tenant) -> Result<bool> {
        Ok(self.catalog.tenant_by_id(tenant.id).await?.status.is_live())
    }
}
