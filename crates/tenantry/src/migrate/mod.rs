//! Tenant migrations: the migration files ([`source`]), each tenant's ledger ([`ledger`]),
//! applying ([`apply`]) and verifying ([`verify`]) one tenant, and rolling a set out across
//! the fleet ([`fleet`]).
//!
//! Invariants: a migration is applied to a tenant only while that tenant's lock is held; the
//! catalog's recorded version is read back from the tenant's ledger after applying, never
//! computed from what was attempted.

pub mod apply;
pub mod fleet;
pub mod ledger;
pub mod source;
pub mod verify;

pub use fleet::{FleetReport, Outcome, StatusRow, TenantReport};
pub use source::{Migration, MigrationSet};

use sqlx::Connection;

use crate::Tenantry;
use crate::catalog::Tenant;
use crate::error::{Error, Result};
use crate::storage::Place;

/// What one locked run over a tenant's storage did.
#[derive(Debug)]
pub(crate) struct Run {
    /// Versions applied in this run.
    pub applied: Vec<i64>,
    /// The highest version in the tenant's ledger afterwards.
    pub version: i64,
    /// The first error, if any; `applied` and `version` still hold.
    pub error: Option<Error>,
}

impl Tenantry {
    /// Under the tenant's lock: applies what is pending and, with `verify`, proves the
    /// storage complete. `Err(Error::Locked)` if another runner kept the lock past the wait.
    pub(crate) async fn run_migrations(
        &self,
        place: &Place,
        tenant: &Tenant,
        set: &MigrationSet,
        verify: bool,
    ) -> Result<Run> {
        let slug = tenant.slug.as_str();
        let mut conn = place.connect(tenant).await?;
        let Some(lock) = place.lock(tenant, &mut conn, self.config.lock_wait).await? else {
            return Err(Error::Locked {
                tenant: slug.to_owned(),
            });
        };
        let engine = place.engine();
        let mut run = match apply::apply_pending(&mut conn, engine, slug, set).await {
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
            run.error = verify::verify(&mut conn, engine, slug, set).await.err();
        }
        let ledger = ledger::read(&mut conn).await;
        lock.release(&mut conn).await;
        let _ = conn.close().await;
        run.version = ledger
            .map_err(Error::storage(slug, "read the migration ledger"))?
            .last()
            .map_or(0, |row| row.version);
        Ok(run)
    }
}
