//! Operations on a tenant's data (an import, a restore in place, a move). A catalog record says one
//! is under way; a lock held by the process running it says whether that process is alive.
//! A record whose lock can be taken was left by a process that died: an import's tenant is
//! then removed, a restore's tenant kept suspended until the restore is run again.

use crate::Tenantry;
use crate::archive::IMPORT;
use crate::backup::RESTORE;
use crate::catalog::Tenant;
use crate::engine::dialect::OperationLock;
use crate::error::{Error, Result};
use crate::moves::MOVE;

impl Tenantry {
    /// Takes the tenant's operation lock without waiting; `Ok(None)`: a live process holds
    /// it.
    pub(crate) async fn operation_lock(&self, tenant: &Tenant) -> Result<Option<OperationLock>> {
        let place = self.place(tenant).await?;
        place
            .engine()
            .dialect()
            .try_operation_lock(self, &place, tenant)
            .await
    }

    /// Holds the tenant's operation lock as an import or a restore does, so that none starts
    /// while it is held (during a repair by hand, say); `Ok(None)`: one is running.
    pub async fn hold_operation_lock(&self, slug: &str) -> Result<Option<OperationLock>> {
        let tenant = self.catalog.tenant(slug).await?;
        self.operation_lock(&tenant).await
    }

    /// Refuses to serve, repair, back up, export or move a tenant with an operation recorded
    /// on it: running elsewhere, or left unfinished. A move whose process died is finished
    /// instead (undone before its switch, its old storage dropped after).
    pub(crate) async fn refuse_unfinished(&self, tenant: &Tenant) -> Result<()> {
        let Some(op) = self.catalog.operation(tenant.id).await? else {
            return Ok(());
        };
        let slug = tenant.slug.to_string();
        if op.kind == MOVE {
            // The mover holds the lock where the tenant came from.
            let origin = self.move_origin(tenant, &op)?;
            let Some(lock) = self.operation_lock(&origin).await? else {
                return Err(Error::OperationRunning {
                    slug,
                    kind: op.kind,
                });
            };
            // The move may have ended, or switched, between the read and the lock.
            return match self.catalog.operation(tenant.id).await? {
                None => Ok(()),
                Some(now) if now == op => {
                    let tenant = self.catalog.tenant_by_id(tenant.id).await?;
                    self.finish_dead_move(&tenant, &op, lock).await
                }
                Some(now) => Err(Error::OperationRunning {
                    slug,
                    kind: now.kind,
                }),
            };
        }
        if self.operation_lock(tenant).await?.is_none() {
            return Err(Error::OperationRunning {
                slug,
                kind: op.kind,
            });
        }
        match op.kind.as_str() {
            RESTORE => Err(Error::RestoreUnfinished {
                slug,
                backup: crate::backup::restore_detail(op.detail.as_deref()).0,
            }),
            kind => Err(Error::InvalidTransition {
                slug,
                status: tenant.status,
                action: "use it",
                hint: if kind == IMPORT {
                    "; its import did not finish: `tenantry tenant repair` removes it"
                } else {
                    "; an operation on it did not finish"
                },
            }),
        }
    }
}
