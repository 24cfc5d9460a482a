//! Moving a tenant to another server or strategy while it serves
//! ([docs/0005](../../../docs/0005-tenant-data.md)): the new place is provisioned hidden and
//! filled from a snapshot of the old one ([`copy`]); then the old place is shut out (the write
//! pause begins), the rows changed meanwhile are copied again, both places are compared, the
//! new place is opened and the catalog switched in one transaction (the pause ends), and the
//! old storage is dropped.
//!
//! Invariant: before the switch the old place is the only one that serves, after it the new
//! one. An operation record (`move`) carries the phase (`copying` with the destination,
//! `switched` with the origin) and the mover holds the tenant's operation lock; a move whose
//! process died is finished by the next command that finds it: before the switch the new
//! place is dropped and the old one reopened, after it the old storage is dropped.

mod copy;
pub mod drain;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Tenantry;
use crate::catalog::{NewEvent, Operation, Status, Strategy, Tenant};
use crate::error::{Error, Result};
use crate::ident::ServerName;
use crate::migrate::{MigrationSet, apply, ledger, verify};

/// The operation record a move keeps on its tenant.
pub(crate) const MOVE: &str = "move";

/// Where to move a tenant.
#[derive(Debug, Clone, Default)]
pub struct MoveTenant {
    pub to_server: String,
    /// The strategy in the new place; the tenant's own when `None`.
    pub strategy: Option<Strategy>,
}

/// A move's steps, reported as they are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveStep {
    /// Recorded; the new place is being provisioned and filled.
    Copying,
    /// The first copy is in; the old place is about to be shut out.
    Copied,
    /// The old place is shut out: writes are paused.
    Paused,
    /// The catalog points at the new place: writes go there.
    Switched,
}

/// A finished move and what it took.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Moved {
    pub tenant: Tenant,
    pub from_server: String,
    pub from_strategy: Strategy,
    /// Rows the tenant has, verified in the new place.
    pub rows: u64,
    /// Rows written or deleted while the first copy ran, copied again during the pause.
    pub changed: u64,
    /// The first copy, while the tenant served.
    pub copy_ms: u64,
    /// The write pause: from shutting the old place out to the switch in the catalog.
    pub pause_ms: u64,
    pub total_ms: u64,
    /// Whether the old storage was dropped (if not, the next command on the tenant does it).
    pub old_dropped: bool,
}

/// A move's phase, as its operation record's detail says: `copying <server> <strategy>`
/// (the destination) or `switched <server> <strategy>` (the origin).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Copying(ServerName, Strategy),
    Switched(ServerName, Strategy),
}

impl Phase {
    fn detail(&self) -> String {
        match self {
            Phase::Copying(server, strategy) => format!("copying {server} {strategy}"),
            Phase::Switched(server, strategy) => format!("switched {server} {strategy}"),
        }
    }

    fn parse(tenant: &Tenant, detail: Option<&str>) -> Result<Phase> {
        let corrupt = || Error::CorruptCatalog {
            field: "tenantry_operations.detail",
            value: format!("{}: {detail:?}", tenant.slug),
        };
        let mut parts = detail.unwrap_or_default().split(' ');
        let (Some(phase), Some(server), Some(strategy)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        let server = ServerName::new(server).map_err(|_| corrupt())?;
        let strategy: Strategy = strategy.parse().map_err(|_| corrupt())?;
        match phase {
            "copying" => Ok(Phase::Copying(server, strategy)),
            "switched" => Ok(Phase::Switched(server, strategy)),
            _ => Err(corrupt()),
        }
    }
}

/// The tenant as it would be on `server` with `strategy`.
fn placed(tenant: &Tenant, server: &ServerName, strategy: Strategy) -> Tenant {
    Tenant {
        server: server.clone(),
        strategy,
        ..tenant.clone()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Tenantry {
    /// Moves an active or suspended tenant to `req.to_server` (and strategy) while it keeps
    /// serving (see the module). An error before the switch leaves it serving from where it
    /// was, the new place dropped.
    pub async fn move_tenant(&self, slug: &str, req: MoveTenant) -> Result<Moved> {
        self.move_tenant_with(slug, req, |_| {}).await
    }

    /// [`Tenantry::move_tenant`], calling `step` as each step is reached.
    pub async fn move_tenant_with(
        &self,
        slug: &str,
        req: MoveTenant,
        step: impl Fn(MoveStep) + Sync,
    ) -> Result<Moved> {
        let started = Instant::now();
        let tenant = self.catalog.tenant(slug).await?;
        // A move (or another operation) left by a dead process is finished or refused first.
        self.refuse_unfinished(&tenant).await?;
        let from = self.catalog.tenant(slug).await?;
        if !matches!(from.status, Status::Active | Status::Suspended) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: from.status,
                action: "move",
                hint: "; only an active or suspended tenant can be moved",
            });
        }
        let server = self.catalog.server(&req.to_server).await?;
        let to = placed(&from, &server.name, req.strategy.unwrap_or(from.strategy));
        self.check_move(&from, &to, &server).await?;
        let Some(lock) = self.operation_lock(&from).await? else {
            return Err(Error::OperationRunning {
                slug: slug.to_owned(),
                kind: self
                    .catalog
                    .operation(from.id)
                    .await?
                    .map_or_else(|| MOVE.to_owned(), |op| op.kind),
            });
        };
        let phase = Phase::Copying(to.server.clone(), to.strategy);
        self.catalog
            .begin_operation(from.id, MOVE, Some(&phase.detail()))
            .await?;
        let whither = format!("to {} ({})", to.server, to.strategy);
        self.event(&from, "tenant.move", "started", Some(whither.clone()), None)
            .await;
        step(MoveStep::Copying);
        let result = self.copy_and_switch(&from, &to, &step).await;
        let (tenant, done) = match result {
            Ok(switched) => switched,
            Err(e) => {
                if let Err(cleanup) = self.abandon_move(&from, &to).await {
                    tracing::error!(tenant = slug, error = %cleanup, "could not undo the failed move");
                }
                self.event(
                    &from,
                    "tenant.move",
                    "failed",
                    Some(whither),
                    Some(e.to_string()),
                )
                .await;
                return Err(e);
            }
        };
        let old_dropped = match self.drop_old_place(&from, lock).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(tenant = slug, error = %e, "moved; its old storage is dropped by the next command on it");
                false
            }
        };
        Ok(Moved {
            tenant,
            from_server: from.server.to_string(),
            from_strategy: from.strategy,
            rows: done.rows,
            changed: done.changed,
            copy_ms: done.copy_ms,
            pause_ms: done.pause_ms,
            total_ms: millis(started.elapsed()),
            old_dropped,
        })
    }

    /// Refuses a move that cannot be made, before anything is written.
    async fn check_move(&self, from: &Tenant, to: &Tenant, server: &crate::Server) -> Result<()> {
        let refuse = |detail: String| Error::MoveRefused {
            slug: from.slug.to_string(),
            detail,
        };
        if from.server == to.server && from.strategy == to.strategy {
            return Err(refuse(format!(
                "it is already on {} as {}",
                to.server, to.strategy
            )));
        }
        let place = crate::storage::Place::of(server, &self.config);
        place.check_strategy(to.strategy, server.name.as_str())?;
        let own_login = |s: Strategy| !s.ops().pooled() && place.engine().dialect().has_logins();
        if from.server == to.server && own_login(from.strategy) && own_login(to.strategy) {
            return Err(refuse(format!(
                "its {} and a {} on one server would share its login role; move it through another server",
                from.strategy, to.strategy
            )));
        }
        if !self
            .catalog
            .server_accepts_tenants(server.name.as_str())
            .await?
        {
            return Err(refuse(format!("server {} takes no tenants", server.name)));
        }
        self.check_room(server).await?;
        if place.engine().dialect().has_logins() {
            self.master_key()?;
        }
        place.check_reachable().await?;
        if !to.strategy.ops().pooled() && self.storage_exists(to).await? {
            return Err(refuse(format!(
                "storage of it already exists on {}; remove it first",
                to.server
            )));
        }
        Ok(())
    }

    /// Provisions and fills the new place, shuts the old one out, syncs, verifies, opens the
    /// new place and switches the catalog.
    async fn copy_and_switch(
        &self,
        from: &Tenant,
        to: &Tenant,
        step: &(dyn Fn(MoveStep) + Sync),
    ) -> Result<(Tenant, Done)> {
        let slug = from.slug.as_str();
        let set = self.migrations()?;
        let version = from.version;
        self.provision_storage(to, false).await?;
        // Provisioning may have given the tenant its login role (a shared tenant moving to
        // storage of its own): the new place's migrations grant it access.
        let now = self.catalog.tenant_by_id(from.id).await?;
        let to = &Tenant {
            role: now.role,
            role_secret: now.role_secret,
            ..to.clone()
        };
        // Hidden until the switch: nothing reaches the new place before it is verified.
        self.set_access(to, false).await?;
        self.migrate_hidden(to, &set, version).await?;
        let copying = Instant::now();
        let mut copy = copy::Copy::first(self, from, to, version).await?;
        let copy_ms = millis(copying.elapsed());
        step(MoveStep::Copied);
        // The old place's migration lock is held from here to the switch: no migration can
        // commit there while its last rows are copied.
        let mut guard = self.migration_target(from).await?;
        let Some(held) = guard
            .lock
            .acquire(&guard.owner, &mut guard.conn, self.config.lock_wait)
            .await?
        else {
            return Err(Error::Locked {
                tenant: guard.owner.clone(),
            });
        };
        let result = async {
            let pause = Instant::now();
            self.set_access(from, false).await?;
            step(MoveStep::Paused);
            let synced = copy.finish(self, from, to).await?;
            let active = self.catalog.tenant_by_id(from.id).await?.status == Status::Active;
            self.set_access(to, active).await?;
            let phase = Phase::Switched(from.server.clone(), from.strategy);
            let detail = format!(
                "from {} ({}) to {} ({}): {} rows, {} changed while copying, writes paused {} ms",
                from.server,
                from.strategy,
                to.server,
                to.strategy,
                synced.rows,
                synced.changed,
                millis(pause.elapsed())
            );
            let event = NewEvent {
                tenant: Some(from),
                action: "tenant.move",
                outcome: "ok",
                target: None,
                detail: Some(detail),
                error: None,
            };
            let Some(moved) = self
                .catalog
                .switch_place(from, to, &phase.detail(), event)
                .await?
            else {
                return Err(Error::MoveRefused {
                    slug: slug.to_owned(),
                    detail:
                        "it was changed by another command while it moved; it stays where it was"
                            .into(),
                });
            };
            let pause_ms = millis(pause.elapsed());
            step(MoveStep::Switched);
            // A suspend that raced the switch shut out the old place only.
            if moved.status != Status::Active && active {
                self.set_access(&moved, false).await?;
            }
            Ok((
                moved,
                Done {
                    rows: synced.rows,
                    changed: synced.changed,
                    copy_ms,
                    pause_ms,
                },
            ))
        }
        .await;
        held.release(&guard.owner, &mut guard.conn).await;
        result
    }

    /// Brings the hidden new place to `version` and proves it complete, without touching
    /// the catalog. A shared pool is migrated only while it is empty of migrations (it
    /// serves other tenants): otherwise it must be at `version` already.
    async fn migrate_hidden(&self, to: &Tenant, set: &MigrationSet, version: i64) -> Result<()> {
        let at = set.up_to(version);
        let mut target = self.migration_target(to).await?;
        let owner = target.owner.clone();
        let Some(held) = target
            .lock
            .acquire(&owner, &mut target.conn, self.config.lock_wait)
            .await?
        else {
            return Err(Error::Locked { tenant: owner });
        };
        let conn = &mut target.conn;
        let result = async {
            ledger::ensure(conn)
                .await
                .map_err(Error::storage(&owner, "create the migration ledger"))?;
            let before = ledger::read(conn)
                .await
                .map_err(Error::storage(&owner, "read the migration ledger"))?;
            if !to.strategy.ops().pooled() || before.is_empty() {
                apply::apply_pending(conn, target.engine, &owner, &at, &target.hook).await?;
            }
            verify::verify(conn, target.engine, &owner, &at).await?;
            let rows = ledger::read(conn)
                .await
                .map_err(Error::storage(&owner, "read the migration ledger"))?;
            let now = ledger::version(&rows);
            if now != version {
                return Err(Error::MoveRefused {
                    slug: to.slug.to_string(),
                    detail: format!(
                        "{owner} is at version {now}, the tenant at {version}; migrate them to one version first"
                    ),
                });
            }
            Ok(())
        }
        .await;
        held.release(&owner, conn).await;
        result
    }

    /// Undoes a move before its switch: the old place opened again (as its status says),
    /// the new one dropped, the record ended. The caller holds the operation lock.
    async fn abandon_move(&self, from: &Tenant, to: &Tenant) -> Result<()> {
        let now = self.catalog.tenant_by_id(from.id).await?;
        if now.server != from.server || now.strategy != from.strategy {
            // Switched after all: the new place is the tenant's.
            return Ok(());
        }
        if matches!(now.status, Status::Active) {
            self.set_access(&now, true).await?;
        }
        self.drop_storage(to).await?;
        self.catalog.end_operation(from.id).await
    }

    /// After the switch: the old storage dropped, the record ended, the lock let go.
    async fn drop_old_place(
        &self,
        from: &Tenant,
        lock: crate::engine::dialect::OperationLock,
    ) -> Result<()> {
        self.forget_pool(from).await;
        self.drop_storage(from).await?;
        self.catalog.end_operation(from.id).await?;
        drop(lock);
        let place = self.place(from).await?;
        place.engine().dialect().forget_operation_lock(&place, from)
    }

    /// Finishes a move whose process died (the caller found its lock free and holds it):
    /// before the switch, undone; after it, its old storage dropped.
    pub(crate) async fn finish_dead_move(
        &self,
        tenant: &Tenant,
        op: &Operation,
        lock: crate::engine::dialect::OperationLock,
    ) -> Result<()> {
        match Phase::parse(tenant, op.detail.as_deref())? {
            Phase::Copying(server, strategy) => {
                let to = placed(tenant, &server, strategy);
                self.abandon_move(tenant, &to).await?;
                self.event(
                    tenant,
                    "tenant.move",
                    "failed",
                    None,
                    Some("its process died before the switch; undone".into()),
                )
                .await;
                Ok(())
            }
            Phase::Switched(server, strategy) => {
                let from = placed(tenant, &server, strategy);
                self.drop_old_place(&from, lock).await
            }
        }
    }

    /// The tenant whose place holds a move's lock: the origin, before and after the switch.
    pub(crate) fn move_origin(&self, tenant: &Tenant, op: &Operation) -> Result<Tenant> {
        Ok(match Phase::parse(tenant, op.detail.as_deref())? {
            Phase::Copying(..) => tenant.clone(),
            Phase::Switched(server, strategy) => placed(tenant, &server, strategy),
        })
    }
}

/// What the copy and the switch measured.
struct Done {
    rows: u64,
    changed: u64,
    copy_ms: u64,
    pause_ms: u64,
}
