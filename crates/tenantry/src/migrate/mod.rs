//! Tenant migrations: the migration files ([`source`]), each unit's ledger ([`ledger`]),
//! applying ([`apply`]) and verifying ([`verify`]) one unit, rolling a set out across the
//! fleet ([`fleet`]), and reverting it with its down scripts ([`down`]). A unit is a tenant's own storage, or a shared pool (migrated once for
//! all its tenants).
//!
//! Seeing where migrations stand: the fleet from the catalog alone ([`status`]), one
//! tenant's ledger ([`history`]), and every ledger and schema against a reference
//! ([`audit`], [`drift`]).
//!
//! Invariants: a migration is applied to a unit only while that unit's lock is held; the
//! catalog's recorded version is read back from the unit's ledger after applying, never
//! computed from what was attempted.

pub mod apply;
pub mod audit;
pub mod down;
pub mod drift;
mod dry_run;
pub mod fleet;
pub mod history;
pub mod ledger;
pub mod lexer;
mod locate;
pub mod revert_rollout;
pub mod rollout;
pub mod source;
pub mod split;
mod sql_run;
pub mod status;
pub mod verify;

pub use audit::{UnitReport, Verdict, VerifyReport, VerifyRequest};
pub use down::RevertTarget;

/// The kinds of rollout a runner can run, as the catalog records them.
pub mod kinds {
    pub use super::revert_rollout::{DOWN_DRY_RUN_KIND, DOWN_KIND, UNDO_DRY_RUN_KIND, UNDO_KIND};
    pub use super::rollout::{DRY_RUN_KIND, UP_KIND};
    pub use super::sql_run::{DRY_RUN_KIND as SQL_DRY_RUN_KIND, KIND as SQL_KIND};
}
pub use fleet::{FleetReport, Mode, Outcome, TenantReport};
pub use history::{MigrationEntry, MigrationState, TenantMigrations};
pub use rollout::{
    Budget, OrderKey, REPORT_ALL_UP_TO, RolloutOptions, RolloutRun, Selection, StopReason,
};
pub use source::{DownScript, Migration, MigrationSet};
pub use status::{MigrationSummary, StatusRow};

use sqlx::Connection;

use crate::Tenantry;
use crate::catalog::{FleetMigration, LedgerState, NewEvent, RunRecord, Status, Tenant};
use crate::error::{Error, Result};
use crate::storage::{MigrationTarget, Sessions};

/// What one locked run over a unit did.
#[derive(Debug)]
pub(crate) struct Run {
    /// Versions applied in this run.
    pub applied: Vec<i64>,
    /// The highest applied version in the unit's ledger afterwards.
    pub version: i64,
    /// The first error, if any; `applied` and `version` still hold.
    pub error: Option<Error>,
    /// The tenant's `migrate` event went into the catalog with the run's result.
    pub recorded_event: bool,
}

/// A rollout's event for a tenant's run: failed with its error, or the versions it moved
/// through; none when nothing was pending.
fn run_event<'a>(tenant: &'a Tenant, run: &Run, error: Option<&str>) -> Option<NewEvent<'a>> {
    let (outcome, detail) = match error {
        Some(_) => ("failed", None),
        None if run.applied.is_empty() => return None,
        None => (
            "ok",
            Some(format!(
                "{} -> {} (applied {:?})",
                tenant.version, run.version, run.applied
            )),
        ),
    };
    Some(NewEvent {
        tenant: Some(tenant),
        action: "migrate",
        outcome,
        target: None,
        detail,
        error: error.map(str::to_owned),
    })
}

impl Tenantry {
    /// Under the unit's lock: checks that `tenant` is still in one of `expect` (a delete or
    /// another command may have moved it while this run waited), applies what is pending
    /// and, with `verify`, proves the storage complete, then records the result in the
    /// catalog — all before the lock is released, so a slower runner can never overwrite a
    /// newer result. `Err(Error::Locked)` if another runner kept the lock past the wait;
    /// `Err(Error::InvalidTransition)` if the tenant moved.
    pub(crate) async fn run_migrations(
        &self,
        target: MigrationTarget,
        set: &MigrationSet,
        verify: bool,
        tenant: &Tenant,
        expect: &[Status],
    ) -> Result<Run> {
        self.run_migrations_in(target, set, verify, tenant, expect, None)
            .await
    }

    /// [`Tenantry::run_migrations`], handing the connection on to `sessions` after a run
    /// without error, where its strategy allows.
    pub(crate) async fn run_migrations_in(
        &self,
        target: MigrationTarget,
        set: &MigrationSet,
        verify: bool,
        tenant: &Tenant,
        expect: &[Status],
        sessions: Option<&Sessions>,
    ) -> Result<Run> {
        let MigrationTarget {
            owner,
            engine,
            mut conn,
            lock,
            hook,
            reuse,
        } = target;
        let held = match lock.acquire(&owner, &mut conn, self.config.lock_wait).await {
            Ok(Some(held)) => held,
            Ok(None) => return Err(Error::Locked { tenant: owner }),
            Err(e) => {
                // A lock file that is gone: the tenant was deleted meanwhile.
                self.still(tenant, expect).await?;
                return Err(e);
            }
        };
        let result = async {
            let row = self.still(tenant, expect).await?;
            let mut run = match apply::apply_pending(&mut conn, engine, &owner, set, &hook).await {
                Ok(applied) => Run {
                    applied,
                    version: 0,
                    error: None,
                    recorded_event: false,
                },
                Err(e) => Run {
                    applied: Vec::new(),
                    version: 0,
                    error: Some(e),
                    recorded_event: false,
                },
            };
            if run.error.is_none() && verify {
                run.error = verify::verify(&mut conn, engine, &owner, set).await.err();
            }
            let rows = ledger::read(&mut conn)
                .await
                .map_err(Error::storage(&owner, "read the migration ledger"))?;
            run.version = ledger::version(&rows);
            let error = run.error.as_ref().map(ToString::to_string);
            // In a rollout, a tenant's own event goes in the same catalog write.
            let event = match sessions.is_some() && !tenant.strategy.ops().pooled() {
                true => run_event(tenant, &run, error.as_deref()),
                false => None,
            };
            run.recorded_event = event.is_some();
            let state = ledger::state(&rows);
            // A run that found the row as it leaves it (a claimed spare's verification, a
            // repair with nothing to do) writes nothing.
            let unchanged = row.as_ref().is_some_and(|row| {
                event.is_none()
                    && row.ledger_state() == state
                    && row.last_error.as_deref() == error.as_deref()
            });
            if !unchanged {
                self.catalog
                    .record_run(
                        self.run_record(tenant).await?,
                        &state,
                        error.as_deref(),
                        event,
                    )
                    .await?;
            }
            // Only a run that applied something can add a version the fleet has not seen.
            if !run.applied.is_empty() {
                self.record_fleet(&rows).await?;
            }
            Ok(run)
        }
        .await;
        held.release(&owner, &mut conn).await;
        match (sessions, reuse, &result) {
            (Some(sessions), Some(reuse), Ok(run)) if run.error.is_none() => {
                sessions.give(&reuse, engine, conn).await;
            }
            _ => {
                let _ = conn.close().await;
            }
        }
        result
    }

    /// The tenant's row if it is still in one of `expect`; shared tenants are migrated as
    /// their pool, which is checked by its own lock (`None`).
    async fn still(&self, tenant: &Tenant, expect: &[Status]) -> Result<Option<Tenant>> {
        if tenant.strategy.ops().pooled() {
            return Ok(None);
        }
        let now = self.catalog.tenant_by_id(tenant.id).await?;
        if now.server != tenant.server || now.strategy != tenant.strategy {
            // Moved while the run waited: this storage is no longer the tenant's.
            return Err(Error::TenantMoved {
                slug: now.slug.to_string(),
                server: now.server.to_string(),
                strategy: now.strategy.to_string(),
            });
        }
        if expect.contains(&now.status) {
            return Ok(Some(now));
        }
        Err(Error::InvalidTransition {
            slug: now.slug.to_string(),
            status: now.status,
            action: "migrate",
            hint: "; it changed while the run waited for its lock",
        })
    }

    /// Records a run's version and error on the tenant — or, for a shared tenant, on its
    /// pool and the pool's live tenants, which share one ledger — in one catalog write.
    pub(crate) async fn record_run(
        &self,
        tenant: &Tenant,
        state: &LedgerState,
        error: Option<&str>,
    ) -> Result<()> {
        let record = self.run_record(tenant).await?;
        self.catalog.record_run(record, state, error, None).await
    }

    /// Where a run's result on `tenant` is recorded: the tenant, or its pool and the pool's
    /// live tenants, which share one ledger.
    async fn run_record<'a>(&self, tenant: &'a Tenant) -> Result<RunRecord<'a>> {
        let pool = match tenant.strategy.ops().pooled() {
            true => self.catalog.shared_pool(tenant.server.as_str()).await?,
            false => None,
        };
        Ok(match pool {
            Some(pool) => RunRecord::Pool {
                pool: pool.id,
                server: tenant.server.as_str(),
                provisioning: (!tenant.status.is_live()).then_some(tenant.id),
            },
            None => RunRecord::Tenant(tenant.id),
        })
    }

    /// Remembers the checksum of every version in a unit's ledger, for creations to come.
    async fn record_fleet(&self, rows: &[ledger::LedgerRow]) -> Result<()> {
        let seen = |v: i64| {
            self.fleet_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&v)
        };
        if rows
            .iter()
            .filter(|r| r.is_applied())
            .all(|r| seen(r.version))
        {
            return Ok(());
        }
        let known = self.catalog.fleet_migrations().await?;
        let fresh: Vec<FleetMigration> = rows
            .iter()
            .filter(|r| r.is_applied() && !known.iter().any(|k| k.version == r.version))
            .map(|r| FleetMigration {
                version: r.version,
                description: r.description.clone(),
                checksum: r.checksum.clone(),
            })
            .collect();
        self.catalog.record_fleet_migrations(&fresh).await?;
        let mut seen = self.fleet_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.extend(known.iter().map(|k| k.version));
        seen.extend(fresh.iter().map(|f| f.version));
        Ok(())
    }

    /// Refuses a migration set that disagrees with what the fleet applied: an applied version
    /// whose file changed or is gone. Creating a tenant from such a set would make it diverge
    /// from every tenant created before.
    pub(crate) async fn check_against_fleet(&self, set: &MigrationSet, slug: &str) -> Result<()> {
        for applied in self.catalog.fleet_migrations().await? {
            let Some(migration) = set.get(applied.version) else {
                return Err(Error::MigrationMissing {
                    tenant: slug.to_owned(),
                    version: applied.version,
                    description: applied.description,
                });
            };
            if hex::encode(&migration.checksum) != applied.checksum {
                return Err(Error::ChecksumMismatch {
                    tenant: slug.to_owned(),
                    version: applied.version,
                    file: migration.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Settles a dirty migration (MySQL) after an operator has looked at it: with `applied`,
    /// records it as applied (the operator finished it by hand); otherwise forgets it so the
    /// next run applies it again from its first statement (the operator undid it).
    pub async fn resolve_dirty(&self, slug: &str, version: i64, applied: bool) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        let set = self.migrations()?;
        let mut target = self.migration_target(&tenant).await?;
        // A runner still working on the migration also shows it dirty: settle it only under
        // the lock.
        let Some(held) = target
            .lock
            .acquire(&target.owner, &mut target.conn, self.config.lock_wait)
            .await?
        else {
            return Err(Error::Locked {
                tenant: target.owner,
            });
        };
        let result = self
            .settle_dirty(&mut target, &tenant, &set, version, applied)
            .await;
        held.release(&target.owner, &mut target.conn).await;
        result?;
        let outcome = if applied {
            "marked applied"
        } else {
            "forgotten, to retry"
        };
        self.event(
            &tenant,
            "migrate.resolve",
            "ok",
            Some(format!("{version} {outcome}")),
            None,
        )
        .await;
        self.catalog.tenant(slug).await
    }

    async fn settle_dirty(
        &self,
        target: &mut MigrationTarget,
        tenant: &Tenant,
        set: &MigrationSet,
        version: i64,
        applied: bool,
    ) -> Result<()> {
        let slug = tenant.slug.as_str();
        let rows = ledger::read(&mut target.conn)
            .await
            .map_err(Error::storage(slug, "read the migration ledger"))?;
        if !rows.iter().any(|r| r.version == version && !r.is_applied()) {
            return Err(Error::VerifyFailed {
                tenant: slug.to_owned(),
                detail: format!("migration {version} is not dirty in its ledger"),
            });
        }
        if applied {
            let migration = set.get(version).ok_or_else(|| Error::MigrationMissing {
                tenant: slug.to_owned(),
                version,
                description: String::new(),
            })?;
            ledger::mark_applied(
                &mut target.conn,
                target.engine,
                version,
                &hex::encode(&migration.checksum),
                0,
            )
            .await
            .map_err(Error::storage(slug, "mark the migration applied"))?;
        } else {
            ledger::forget_dirty(&mut target.conn, target.engine, version)
                .await
                .map_err(Error::storage(slug, "forget the dirty migration"))?;
        }
        let rows = ledger::read(&mut target.conn)
            .await
            .map_err(Error::storage(slug, "read the migration ledger"))?;
        self.record_run(tenant, &ledger::state(&rows), None).await
    }
}
