//! Tenant migrations: the migration files ([`source`]), each unit's ledger ([`ledger`]),
//! applying ([`apply`]) and verifying ([`verify`]) one unit, and rolling a set out across the
//! fleet ([`fleet`]). A unit is a tenant's own storage, or a shared pool (migrated once for
//! all its tenants).
//!
//! Invariants: a migration is applied to a unit only while that unit's lock is held; the
//! catalog's recorded version is read back from the unit's ledger after applying, never
//! computed from what was attempted.

pub mod apply;
pub mod fleet;
pub mod ledger;
mod locate;
pub mod source;
pub mod split;
pub mod verify;

pub use fleet::{FleetReport, Outcome, StatusRow, TenantReport};
pub use source::{Migration, MigrationSet};

use sqlx::Connection;

use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::error::{Error, Result};
use crate::storage::MigrationTarget;

/// What one locked run over a unit did.
#[derive(Debug)]
pub(crate) struct Run {
    /// Versions applied in this run.
    pub applied: Vec<i64>,
    /// The highest applied version in the unit's ledger afterwards.
    pub version: i64,
    /// The first error, if any; `applied` and `version` still hold.
    pub error: Option<Error>,
}

impl Tenantry {
    /// Under the unit's lock: applies what is pending and, with `verify`, proves the storage
    /// complete. `Err(Error::Locked)` if another runner kept the lock past the wait.
    pub(crate) async fn run_migrations(
        &self,
        target: MigrationTarget,
        set: &MigrationSet,
        verify: bool,
    ) -> Result<Run> {
        let MigrationTarget {
            owner,
            engine,
            mut conn,
            lock,
            hook,
        } = target;
        let Some(held) = lock
            .acquire(&owner, &mut conn, self.config.lock_wait)
            .await?
        else {
            return Err(Error::Locked { tenant: owner });
        };
        let mut run = match apply::apply_pending(&mut conn, engine, &owner, set, &hook).await {
            Ok(applied) => Run {
                applied,
                version: 0,
                error: None,
            },
            Err(e) => Run {
                applied: Vec::new(),
                version: 0,
                error: Some(e),
            },
        };
        if run.error.is_none() && verify {
            run.error = verify::verify(&mut conn, engine, &owner, set).await.err();
        }
        let ledger = ledger::read(&mut conn).await;
        held.release(&owner, &mut conn).await;
        let _ = conn.close().await;
        run.version =
            ledger::version(&ledger.map_err(Error::storage(&owner, "read the migration ledger"))?);
        Ok(run)
    }

    /// Records the result of a run on a tenant — on every tenant of the pool when the
    /// tenant is shared, since they share one ledger.
    pub(crate) async fn record_run(
        &self,
        tenant: &Tenant,
        version: i64,
        error: Option<&str>,
    ) -> Result<()> {
        if tenant.strategy == Strategy::Shared {
            if let Some(pool) = self.catalog.shared_pool(tenant.server.as_str()).await? {
                self.catalog
                    .record_pool_version(pool.id, version, error)
                    .await?;
            }
            self.catalog
                .record_shared_version(tenant.server.as_str(), version, error)
                .await?;
        }
        self.catalog.record_version(tenant.id, version, error).await
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
        self.record_run(tenant, ledger::version(&rows), None).await
    }
}
