//! Tenant lifecycle: create (verified, resumable), repair, suspend, resume, delete, purge.
//!
//! Invariant: a tenant becomes `active` only after its storage exists, every migration is in
//! its ledger with a matching checksum, and the tables the migrations create are present.
//! The catalog row is written before any storage exists, so storage never outlives its record.

use crate::Tenantry;
use crate::catalog::{NewEvent, Status, Strategy, Tenant};
use crate::engine::dialect::OperationLock;
use crate::error::{Error, Result};
use crate::ident::{ServerName, Slug, StorageName, TenantId};
use crate::migrate::MigrationSet;

/// What becomes of a `provisioning` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provision {
    /// A tenant: its storage is created (or completed), migrated, verified; it turns `active`.
    Tenant,
    /// A spare: created like a tenant, then closed to every login and kept as `spare`.
    Spare,
}

/// What `create_tenant` needs.
#[derive(Debug, Clone, Default)]
pub struct NewTenant {
    pub slug: String,
    /// Display name; the slug when empty.
    pub name: Option<String>,
    /// Server to place it on; the configured default when `None`.
    pub server: Option<String>,
    /// How to keep it apart; the configured default when `None`.
    pub strategy: Option<Strategy>,
}

/// A tenant's new slug and display name (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct RenameTenant {
    pub slug: Option<String>,
    pub name: Option<String>,
}

impl Tenantry {
    /// Creates a tenant: catalog row `provisioning` → storage → every migration → verified →
    /// `active`. On failure the tenant is `failed` with the error recorded and the error is
    /// returned; calling this again for the same slug (or [`Tenantry::repair_tenant`])
    /// resumes where it stopped.
    pub async fn create_tenant(&self, req: NewTenant) -> Result<Tenant> {
        let slug = Slug::new(&req.slug)?;
        crate::spares::refuse_spare_slug(&slug)?;
        let set = self.migrations()?;
        if let Some(existing) = self.catalog.find_tenant(slug.as_str()).await? {
            return match existing.status {
                Status::Provisioning | Status::Failed => {
                    self.provision(existing, &set, Provision::Tenant).await
                }
                status => Err(Error::TenantExists {
                    slug: slug.to_string(),
                    status,
                }),
            };
        }
        let name = req
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| slug.to_string());
        let strategy = req.strategy.unwrap_or(self.config.default_strategy);
        let server = match req.server {
            Some(server) => server,
            None => self.choose_server(strategy, None).await?,
        };
        let server = server.as_str();
        if let Some(tenant) = self
            .create_from_spare(&slug, &name, server, strategy, &set)
            .await?
        {
            return Ok(tenant);
        }
        let (tenant, _) = self
            .insert_provisioning(slug, name, (server, strategy), &set, None, None)
            .await?;
        self.event(&tenant, "tenant.create", "started", None, None)
            .await;
        self.provision(tenant, &set, Provision::Tenant).await
    }

    /// Checks what a new tenant needs (a set consistent with the fleet, the server, the
    /// strategy, room on it, the master key, a server that answers) and writes its
    /// `provisioning` row on a server with a strategy, with `operation` recorded on it in the same transaction; no
    /// storage exists yet (or, for an adopted one, `storage` names what exists).
    pub(crate) async fn insert_provisioning(
        &self,
        slug: Slug,
        name: String,
        (server_name, strategy): (&str, Strategy),
        set: &MigrationSet,
        operation: Option<(&str, Option<&str>)>,
        storage: Option<StorageName>,
    ) -> Result<(Tenant, Option<OperationLock>)> {
        // A set whose applied files were edited would create a tenant unlike the fleet.
        self.check_against_fleet(set, slug.as_str()).await?;
        let server = self.catalog.server(server_name).await?;
        let place = crate::storage::Place::of(&server, &self.config);
        place.check_strategy(strategy, server.name.as_str())?;
        self.check_room(&server).await?;
        if place.engine().dialect().has_logins() {
            // Its credentials will be sealed with the master key: refuse now, before any
            // row exists, if there is none.
            self.master_key()?;
        }
        place.check_reachable().await?;
        let id = TenantId::generate();
        let tenant = Tenant::provisioning(
            id,
            slug,
            name,
            (ServerName::new(server.name.as_str())?, strategy),
            storage.unwrap_or_else(|| id.storage_name()),
        );
        // An operation's lock is taken before its record can be seen: nobody ever finds the
        // record with the lock free while the operation lives.
        let lock = match operation {
            Some((kind, _)) => match place
                .engine()
                .dialect()
                .try_operation_lock(self, &place, &tenant)
                .await?
            {
                Some(lock) => Some(lock),
                None => {
                    return Err(Error::OperationRunning {
                        slug: tenant.slug.to_string(),
                        kind: kind.to_owned(),
                    });
                }
            },
            None => None,
        };
        self.catalog.insert_tenant_with(&tenant, operation).await?;
        // A removal of the server that started meanwhile wins: it counts tenants after
        // marking the server, this checks the server after inserting the row.
        if !self
            .catalog
            .server_accepts_tenants(server.name.as_str())
            .await?
        {
            self.catalog.end_operation(tenant.id).await?;
            self.catalog.discard_tenant(tenant.id).await?;
            return Err(Error::ServerRemoving {
                name: server.name.to_string(),
            });
        }
        Ok((tenant, lock))
    }

    /// Brings a tenant back to a consistent state: resumes provisioning of a `failed` or
    /// `provisioning` tenant, finishes the deletion of a `deleting` one, and re-applies and
    /// re-verifies a live one (clearing its last error on success).
    pub async fn repair_tenant(&self, slug: &str) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        match tenant.status {
            Status::Provisioning | Status::Failed => {
                let set = self.migrations()?;
                let to = match tenant.slug.as_str().starts_with(crate::spares::SLUG_PREFIX) {
                    true => Provision::Spare,
                    false => Provision::Tenant,
                };
                self.provision(tenant, &set, to).await
            }
            Status::Deleting => self.finish_delete(tenant).await,
            Status::Active | Status::Suspended | Status::Spare => {
                self.refuse_unfinished(&tenant).await?;
                let set = self.migrations()?;
                // Re-provisioning sets the login role's password back to the one sealed in
                // the catalog (for shared tenants: the pool's), so a role whose password was
                // changed behind Tenantry's back works again.
                self.provision_storage(&tenant, true).await?;
                self.forget_pool(&tenant).await;
                let tenant = self.catalog.tenant(slug).await?;
                let live = Status::LIVE;
                self.verify_storage(&tenant, &set, &live).await?;
                // Access as the status says (repair never lets a suspended tenant in).
                let tenant = self.catalog.tenant(slug).await?;
                self.set_access(&tenant, tenant.status == Status::Active)
                    .await?;
                self.event(&tenant, "tenant.repair", "ok", None, None).await;
                self.catalog.tenant(slug).await
            }
            Status::Deleted => Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "repair",
                hint: "; its storage is gone",
            }),
        }
    }

    /// Provisioning → storage → every migration → verified → `active` (or `spare`, closed to
    /// every login).
    pub(crate) async fn provision(
        &self,
        tenant: Tenant,
        set: &MigrationSet,
        how: Provision,
    ) -> Result<Tenant> {
        // A killed import left rows nobody verified: removed, never served.
        let operation = self.catalog.operation(tenant.id).await?;
        if operation.is_some_and(|op| op.kind == crate::archive::IMPORT) {
            // Only an import whose process died is removed; a running one is left alone.
            let Some(_dead) = self.operation_lock(&tenant).await? else {
                return Err(Error::OperationRunning {
                    slug: tenant.slug.to_string(),
                    kind: crate::archive::IMPORT.into(),
                });
            };
            // The import may have ended between the read and the lock: look again.
            let still = self.catalog.operation(tenant.id).await?;
            if still.is_some_and(|op| op.kind == crate::archive::IMPORT) {
                self.abandon_import(&tenant).await?;
                return Err(Error::ImportAbandoned {
                    slug: tenant.slug.to_string(),
                });
            }
            let now = self.catalog.tenant_by_id(tenant.id).await?;
            return match now.status {
                Status::Provisioning | Status::Failed => {
                    Box::pin(self.provision(now, set, how)).await
                }
                _ => Ok(now),
            };
        }
        // A failed tenant is being repaired: what it shares is set up again too.
        let repair = tenant.status == Status::Failed;
        let tenant = if tenant.status == Status::Failed {
            match self
                .catalog
                .transition(tenant.id, &[Status::Failed], Status::Provisioning, None)
                .await?
            {
                Some(moved) => moved,
                // Someone else moved it first (a delete, or another resume): re-read.
                None => self.catalog.tenant(tenant.slug.as_str()).await?,
            }
        } else {
            tenant
        };
        if tenant.status != Status::Provisioning {
            return Err(Error::InvalidTransition {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                action: "provision",
                hint: "; another command changed it meanwhile",
            });
        }
        let (to, action) = match how {
            Provision::Spare => (Status::Spare, "spare.create"),
            Provision::Tenant => (Status::Active, "tenant.create"),
        };
        let result = async {
            self.provision_storage(&tenant, repair).await?;
            // Provisioning recorded the tenant's role: read it back.
            let tenant = self.catalog.tenant(tenant.slug.as_str()).await?;
            let version = self
                .verify_storage(&tenant, set, &[Status::Provisioning])
                .await?;
            self.set_access(&tenant, to == Status::Active).await?;
            Ok(version)
        }
        .await;
        match result {
            Ok(version) => {
                let detail = format!("{to} at version {version}");
                // The status and its event in one catalog write.
                let event = NewEvent {
                    tenant: Some(&tenant),
                    action,
                    outcome: "ok",
                    target: None,
                    detail: Some(detail),
                    error: None,
                };
                let active = self
                    .catalog
                    .transition_recorded(tenant.id, &[Status::Provisioning], to, None, Some(event))
                    .await?;
                match active {
                    Some(t) => Ok(t),
                    None => {
                        // Another runner finished it first, or it was deleted meanwhile.
                        let now = self.catalog.tenant(tenant.slug.as_str()).await?;
                        if now.status == to {
                            Ok(now)
                        } else {
                            Err(Error::InvalidTransition {
                                slug: now.slug.to_string(),
                                status: now.status,
                                action: "activate",
                                hint: "; another command changed it while it was being provisioned",
                            })
                        }
                    }
                }
            }
            Err(e @ Error::Locked { .. }) => Err(e),
            Err(e) => {
                let error = e.to_string();
                if let Err(catalog) = self
                    .catalog
                    .transition(
                        tenant.id,
                        &[Status::Provisioning],
                        Status::Failed,
                        Some(&error),
                    )
                    .await
                {
                    // The provisioning error is the one to report; the row stays
                    // `provisioning`, which `repair` resumes just the same.
                    tracing::error!(tenant = %tenant.slug, error = %catalog, "could not record the failure");
                }
                self.event(&tenant, action, "failed", None, Some(error))
                    .await;
                Err(e)
            }
        }
    }

    /// Gives a tenant a new slug, display name, or both. Its storage, role and id stay as
    /// they are (they derive from the id); routing caches in every process drop the old
    /// slug within one poll of the change counter. Refused for a deleted tenant.
    pub async fn rename_tenant(&self, slug: &str, rename: RenameTenant) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        if matches!(tenant.status, Status::Deleted | Status::Deleting) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "rename",
                hint: "a deleted tenant keeps its name; purge it to free the slug",
            });
        }
        let new_slug = match &rename.slug {
            Some(s) => Slug::new(s)?,
            None => tenant.slug.clone(),
        };
        let name = match rename.name {
            Some(name) if name.trim().is_empty() => new_slug.to_string(),
            Some(name) => name,
            None => tenant.name.clone(),
        };
        let event = NewEvent {
            tenant: Some(&tenant),
            action: "tenant.rename",
            outcome: "ok",
            target: None,
            detail: Some(format!(
                "slug {} → {new_slug}; name {:?}",
                tenant.slug, name
            )),
            error: None,
        };
        match self
            .catalog
            .rename_tenant(&tenant, &new_slug, &name, event)
            .await?
        {
            Some(renamed) => Ok(renamed),
            // Its status moved meanwhile: say where it is now.
            None => Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: self.catalog.tenant(slug).await?.status,
                action: "rename",
                hint: "it changed while it was being renamed; try again",
            }),
        }
    }

    /// `active` → `suspended`: from when this returns, no unit of work of the tenant
    /// succeeds in any process (its login role may not log in and its open sessions are
    /// ended; a shared tenant's context no longer verifies; an SQLite tenant's file is marked
    /// revoked). If the revocation fails halfway, the tenant is suspended in the catalog and
    /// `repair` applies the revocation again.
    pub async fn suspend_tenant(&self, slug: &str) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        let moved = self
            .catalog
            .transition(
                tenant.id,
                &[Status::Active],
                Status::Suspended,
                tenant.last_error.as_deref(),
            )
            .await?
            .ok_or_else(|| Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "suspend",
                hint: "",
            })?;
        self.forget_pool(&moved).await;
        self.set_access(&moved, false).await?;
        self.event(&moved, "tenant.suspend", "ok", None, None).await;
        Ok(moved)
    }

    /// `suspended` → `active`, after checking its storage as `repair` does (ledger complete
    /// with matching checksums, tables present; pending migrations applied).
    pub async fn resume_tenant(&self, slug: &str) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.status != Status::Suspended {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "resume",
                hint: "; only a suspended tenant can be resumed",
            });
        }
        self.refuse_unfinished(&tenant).await?;
        let set = self.migrations()?;
        self.verify_storage(&tenant, &set, &[Status::Suspended])
            .await?;
        self.set_access(&tenant, true).await?;
        let moved = self
            .catalog
            .transition(
                tenant.id,
                &[Status::Suspended],
                Status::Active,
                tenant.last_error.as_deref(),
            )
            .await?;
        let Some(moved) = moved else {
            // Deleted (or changed) meanwhile: take the access back.
            let now = self.catalog.tenant(slug).await?;
            if now.status != Status::Active {
                self.set_access(&now, false).await?;
            }
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: now.status,
                action: "resume",
                hint: "; another command changed it meanwhile",
            });
        };
        self.event(&moved, "tenant.resume", "ok", None, None).await;
        Ok(moved)
    }

    /// Applies what is pending and proves the tenant's storage complete, under its lock,
    /// while it is in one of `expect`. Returns the version its ledger records.
    pub(crate) async fn verify_storage(
        &self,
        tenant: &Tenant,
        set: &MigrationSet,
        expect: &[Status],
    ) -> Result<i64> {
        let target = self.migration_target(tenant).await?;
        let run = self
            .run_migrations(target, set, true, tenant, expect)
            .await?;
        match run.error {
            Some(e) => Err(e),
            None => Ok(run.version),
        }
    }

    /// Drops the tenant's storage and keeps its row as `deleted`; with `purge`, removes the
    /// row too, freeing the slug. Purging an already deleted tenant only removes the row.
    pub async fn delete_tenant(&self, slug: &str, purge: bool) -> Result<Option<Tenant>> {
        let tenant = self.catalog.tenant(slug).await?;
        // Not under an import, restore or move running elsewhere (a dead one's is no
        // obstacle; a dead move is finished first, so that no storage of it is left).
        let _held = match self.catalog.operation(tenant.id).await? {
            Some(op) if op.kind == crate::moves::MOVE => {
                self.refuse_unfinished(&tenant).await?;
                None
            }
            Some(op) => match self.operation_lock(&tenant).await? {
                Some(lock) => Some(lock),
                None => {
                    return Err(Error::OperationRunning {
                        slug: slug.to_owned(),
                        kind: op.kind,
                    });
                }
            },
            None => None,
        };
        self.delete_held(slug, purge).await
    }

    /// [`Tenantry::delete_tenant`] by a caller that holds the tenant's operation lock, or
    /// knows no operation is recorded.
    pub(crate) async fn delete_held(&self, slug: &str, purge: bool) -> Result<Option<Tenant>> {
        let tenant = self.catalog.tenant(slug).await?;
        let deleted = if tenant.status == Status::Deleted {
            if !purge {
                return Err(Error::InvalidTransition {
                    slug: slug.to_owned(),
                    status: tenant.status,
                    action: "delete",
                    hint: "; pass --purge to remove its record",
                });
            }
            tenant
        } else {
            if tenant.status == Status::Provisioning {
                // A create may be running: deleting under it could leave storage behind.
                return Err(Error::InvalidTransition {
                    slug: slug.to_owned(),
                    status: tenant.status,
                    action: "delete",
                    hint: "; wait for the running create, or run `tenantry tenant repair` after a killed one, then delete",
                });
            }
            let from = [
                Status::Active,
                Status::Suspended,
                Status::Failed,
                Status::Deleting,
                Status::Spare,
            ];
            let Some(deleting) = self
                .catalog
                .transition(tenant.id, &from, Status::Deleting, None)
                .await?
            else {
                return Err(Error::InvalidTransition {
                    slug: slug.to_owned(),
                    status: tenant.status,
                    action: "delete",
                    hint: "",
                });
            };
            self.event(&deleting, "tenant.delete", "started", None, None)
                .await;
            self.forget_routes(&deleting).await?;
            self.finish_delete(deleting).await?
        };
        if purge {
            // Its entries keep ids only from here on (while its record is there, a failure
            // here leaves a purge that can run again); the purge's own entry names none.
            let (erased, unsealed) = self.catalog.erase_tenant_events(deleted.id).await?;
            self.catalog.purge_tenant(deleted.id).await?;
            let place = self.place(&deleted).await?;
            place
                .engine()
                .dialect()
                .forget_operation_lock(&place, &deleted)?;
            let left = self.leftovers(&deleted).await?;
            let mut detail = format!("{erased} audit entries erased to ids");
            if unsealed > 0 {
                detail.push_str(&format!(
                    "; {unsealed} written before entries were sealed keep their fields"
                ));
            }
            if !left.is_empty() {
                let error = Error::PurgeIncomplete {
                    tenant: deleted.id.to_string(),
                    left,
                };
                self.purged_event(&deleted, "failed", Some(detail), Some(error.to_string()))
                    .await;
                return Err(error);
            }
            detail.insert_str(0, "nothing of it remains; ");
            self.purged_event(&deleted, "ok", Some(detail), None).await;
            return Ok(None);
        }
        Ok(Some(deleted))
    }

    /// Revokes access at once, then, under the tenant's lock (so no migration run is inside
    /// its storage, and none that was waiting recreates it), drops its storage and proves it
    /// gone.
    async fn finish_delete(&self, tenant: Tenant) -> Result<Tenant> {
        self.forget_pool(&tenant).await;
        let dropped = async {
            if self.storage_exists(&tenant).await? {
                self.set_access(&tenant, false).await?;
            }
            self.wait_for_runs(&tenant).await?;
            self.drop_storage(&tenant).await?;
            if self.storage_exists(&tenant).await? {
                return Err(Error::VerifyFailed {
                    tenant: tenant.slug.to_string(),
                    detail: "its storage still exists after the drop".into(),
                });
            }
            Ok(())
        }
        .await;
        if let Err(e) = dropped {
            let error = e.to_string();
            self.catalog
                .transition(
                    tenant.id,
                    &[Status::Deleting],
                    Status::Deleting,
                    Some(&error),
                )
                .await?;
            self.event(&tenant, "tenant.delete", "failed", None, Some(error))
                .await;
            return Err(e);
        }
        let deleted = self
            .catalog
            .transition(tenant.id, &[Status::Deleting], Status::Deleted, None)
            .await?;
        self.event(&tenant, "tenant.delete", "ok", None, None).await;
        match deleted {
            Some(t) => Ok(t),
            None => self.catalog.tenant(tenant.slug.as_str()).await,
        }
    }

    /// Waits for any migration run inside the tenant's storage to end, by taking and releasing
    /// its lock. The tenant is `deleting` already, so a run that takes the lock after this
    /// finds it so and leaves it alone (and never creates storage): the drop need not hold
    /// the lock. Nothing to wait for when the storage is gone already, or the tenant is shared
    /// (its pool is migrated as one unit, and no run is recorded on a deleting tenant).
    async fn wait_for_runs(&self, tenant: &Tenant) -> Result<()> {
        if tenant.strategy.ops().pooled() {
            return Ok(());
        }
        let mut target = match self.migration_target(tenant).await {
            Ok(target) => target,
            Err(e) => {
                return if self.storage_exists(tenant).await? {
                    Err(e)
                } else {
                    Ok(())
                };
            }
        };
        let held = target
            .lock
            .acquire(&target.owner, &mut target.conn, self.config.lock_wait)
            .await?;
        let Some(held) = held else {
            return Err(Error::Locked {
                tenant: target.owner,
            });
        };
        held.release(&target.owner, &mut target.conn).await;
        let _ = sqlx::Connection::close(target.conn).await;
        Ok(())
    }

    /// Appends the entry closing a purge, of the tenant's id alone.
    async fn purged_event(
        &self,
        tenant: &Tenant,
        outcome: &'static str,
        detail: Option<String>,
        error: Option<String>,
    ) {
        let recorded = self
            .catalog
            .record_purged(tenant.id, outcome, detail, error)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(tenant = %tenant.id, error = %e, "could not append an event");
        }
    }

    /// Appends an event; a failure to log is reported but does not undo the action.
    pub(crate) async fn event(
        &self,
        tenant: &Tenant,
        action: &'static str,
        outcome: &'static str,
        detail: Option<String>,
        error: Option<String>,
    ) {
        let event = NewEvent {
            tenant: Some(tenant),
            action,
            outcome,
            target: None,
            detail,
            error,
        };
        if let Err(e) = self.catalog.record(event).await {
            tracing::warn!(tenant = %tenant.slug, error = %e, "could not append an event");
        }
    }
}
