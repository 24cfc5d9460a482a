//! Rolling a migration set out over many tenants: concurrent, one lock per tenant, going on
//! past failures, ending in a report.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use super::{MigrationSet, Run};
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::error::{Error, Result};

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

/// A tenant's migration status, for `migrate status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Migrations in the directory newer than the tenant's version.
    pub pending: usize,
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

    async fn migrate_tenants(
        &self,
        set: &MigrationSet,
        tenants: Vec<Tenant>,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<FleetReport> {
        let order: Vec<String> = tenants.iter().map(|t| t.id.to_string()).collect();
        // Shared tenants of one server form one unit: their pool is migrated once.
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
        let mut reports: Vec<TenantReport> = futures::stream::iter(units)
            .map(|unit| {
                let lead = &unit[0];
                let span =
                    tracing::info_span!("migrate", tenant = %lead.slug, tenant_id = %lead.id);
                async move {
                    let reports = self.migrate_unit(&unit, set).instrument(span).await;
                    for report in &reports {
                        progress(report);
                    }
                    reports
                }
            })
            .buffer_unordered(self.config.concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        reports.sort_by_key(|r| order.iter().position(|id| *id == r.id));
        Ok(FleetReport { tenants: reports })
    }

    /// Migrates one unit (a tenant, or the live shared tenants of one server) and records the
    /// result in the catalog. Never returns an error: every failure is the unit's outcome, so
    /// a fleet run goes on.
    async fn migrate_unit(&self, unit: &[Tenant], set: &MigrationSet) -> Vec<TenantReport> {
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
        let live = [Status::Active, Status::Suspended];
        let run = match self.migration_target(lead).await {
            Ok(target) => self.run_migrations(target, set, false, lead, &live).await,
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
            Err(Error::Locked { .. }) => {
                let reason = "held by another runner".to_owned();
                return unit
                    .iter()
                    .map(|t| {
                        report(
                            t,
                            Outcome::Skipped {
                                reason: reason.clone(),
                            },
                        )
                    })
                    .collect();
            }
            Err(Error::InvalidTransition { status, .. }) => {
                let reason = format!("tenant is {status} now");
                return vec![report(lead, Outcome::Skipped { reason })];
            }
            Err(e) => {
                // Nothing ran: the tenant keeps its version, with the error on record.
                let error = e.to_string();
                if let Err(catalog) = self.record_run(lead, lead.version, Some(&error)).await {
                    tracing::warn!(tenant = %lead.slug, error = %catalog, "could not record the failure");
                }
                Run {
                    applied: Vec::new(),
                    version: lead.version,
                    error: Some(e),
                }
            }
        };
        let error = run.error.as_ref().map(ToString::to_string);
        let mut reports = Vec::with_capacity(unit.len());
        for tenant in unit {
            let outcome = match &error {
                Some(error) => {
                    tracing::info!(tenant = %tenant.slug, %error, "migration failed");
                    self.event(tenant, "migrate", "failed", None, Some(error.clone()))
                        .await;
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
                    self.event(tenant, "migrate", "ok", Some(detail), None)
                        .await;
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

    /// Every tenant that is not deleted, with how many migrations it has pending.
    pub async fn status(&self) -> Result<Vec<StatusRow>> {
        let set = self.migrations()?;
        Ok(self
            .catalog
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != Status::Deleted)
            .map(|tenant| StatusRow {
                pending: set.pending_after(tenant.version),
                tenant,
            })
            .collect())
    }
}
