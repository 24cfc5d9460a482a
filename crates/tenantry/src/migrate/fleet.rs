//! Rolling a migration set out over many tenants: concurrent, one lock per tenant, going on
//! past failures, ending in a report.

use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use super::MigrationSet;
use crate::Tenantry;
use crate::catalog::{NewEvent, Status, Tenant};
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
        let mut reports: Vec<TenantReport> = futures::stream::iter(tenants)
            .map(|tenant| {
                let span =
                    tracing::info_span!("migrate", tenant = %tenant.slug, tenant_id = %tenant.id);
                async move {
                    let outcome = self.migrate_one(&tenant, set).instrument(span).await;
                    let report = TenantReport {
                        tenant: tenant.slug.to_string(),
                        id: tenant.id.to_string(),
                        outcome,
                    };
                    progress(&report);
                    report
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        reports.sort_by_key(|r| order.iter().position(|id| *id == r.id));
        Ok(FleetReport { tenants: reports })
    }

    /// Migrates one tenant and records the result in the catalog. Never returns an error:
    /// every failure is this tenant's outcome, so a fleet run goes on.
    async fn migrate_one(&self, tenant: &Tenant, set: &MigrationSet) -> Outcome {
        if !tenant.status.is_live() {
            return Outcome::Skipped {
                reason: format!(
                    "tenant is {}; run `tenantry tenant repair {}`",
                    tenant.status, tenant.slug
                ),
            };
        }
        let run = match self.place(tenant).await {
            Ok(place) => self.run_migrations(&place, tenant, set, false).await,
            Err(e) => Err(e),
        };
        let run = match run {
            Ok(run) => run,
            Err(Error::Locked { .. }) => {
                return Outcome::Skipped {
                    reason: "held by another runner".into(),
                };
            }
            Err(e) => return self.record_failure(tenant, tenant.version, &e).await,
        };
        if let Some(e) = &run.error {
            // Part of the set may have gone in before the failure: the ledger says how far.
            return self.record_failure(tenant, run.version, e).await;
        }
        if let Err(e) = self
            .catalog
            .record_version(tenant.id, run.version, None)
            .await
        {
            return Outcome::Failed {
                version: run.version,
                error: e.to_string(),
            };
        }
        if run.applied.is_empty() {
            return Outcome::Current {
                version: run.version,
            };
        }
        let _ = self
            .catalog
            .record(NewEvent {
                tenant: Some(tenant),
                action: "migrate",
                outcome: "ok",
                detail: Some(format!(
                    "{} -> {} (applied {:?})",
                    tenant.version, run.version, run.applied
                )),
                error: None,
            })
            .await;
        Outcome::Migrated {
            from: tenant.version,
            to: run.version,
            applied: run.applied,
        }
    }

    async fn record_failure(&self, tenant: &Tenant, version: i64, e: &Error) -> Outcome {
        let error = e.to_string();
        tracing::info!(tenant = %tenant.slug, %error, "migration failed");
        let _ = self
            .catalog
            .record_version(tenant.id, version, Some(&error))
            .await;
        let _ = self
            .catalog
            .record(NewEvent {
                tenant: Some(tenant),
                action: "migrate",
                outcome: "failed",
                detail: None,
                error: Some(error.clone()),
            })
            .await;
        Outcome::Failed { version, error }
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
