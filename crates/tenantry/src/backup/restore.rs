//! Restoring a backup: in place (the tenant suspended meanwhile, its storage emptied and
//! reloaded, checked against the backup's manifest, then migrated to the fleet's version and
//! resumed if it was active), or into a new tenant (an import of the archive).
//!
//! An operation record marks a restore in place until it completes: a tenant found so after
//! a crash stays suspended, and `resume` and `repair` say to run the restore again.

use super::{Backup, BackupMethod};
use crate::Tenantry;
use crate::archive::ImportTenant;
use crate::archive::file::ArchiveReader;
use crate::archive::import::{check_migrations, read_header};
use crate::archive::scope::DataScope;
use crate::catalog::{Status, Tenant};
use crate::error::{Error, Result};

/// The operation record of a restore in place; its detail is the backup's id.
pub(crate) const RESTORE: &str = "restore";

impl Tenantry {
    /// Restores backup `id` of tenant `slug` in place, or, with `as_slug`, into a new tenant
    /// (a portable backup only), which is returned.
    pub async fn restore_tenant(
        &self,
        slug: &str,
        id: &str,
        as_slug: Option<&str>,
    ) -> Result<Tenant> {
        let backup = self.backup(slug, id).await?;
        backup.check_file()?;
        match as_slug {
            Some(new) => self.restore_as(&backup, new).await,
            None => self.restore_in_place(slug, &backup).await,
        }
    }

    async fn restore_as(&self, backup: &Backup, new: &str) -> Result<Tenant> {
        if backup.method != BackupMethod::Archive {
            return Err(Error::ArchiveRefused {
                path: backup.path(),
                detail: "a native backup restores in place only; a new tenant comes from a portable backup (`tenantry tenant backup` without --native)".into(),
            });
        }
        let imported = self
            .import_tenant(
                &backup.path(),
                ImportTenant {
                    slug: new.to_owned(),
                    ..ImportTenant::default()
                },
            )
            .await?;
        Ok(imported.tenant)
    }

    async fn restore_in_place(&self, slug: &str, backup: &Backup) -> Result<Tenant> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.id.to_string() != backup.tenant_id {
            return Err(Error::ArchiveRefused {
                path: backup.path(),
                detail: format!(
                    "backup {} is of another tenant; restore it with --as",
                    backup.id
                ),
            });
        }
        if !matches!(tenant.status, Status::Active | Status::Suspended) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "restore",
                hint: "; only an active or suspended tenant is restored in place",
            });
        }
        let set = self.migrations()?;
        // Everything that can refuse the backup does so before the tenant is touched.
        let archive = match backup.method {
            BackupMethod::Archive => Some(self.check_restorable(&tenant, backup).await?),
            BackupMethod::Native => None,
        };
        // Held until the restore ends: while it is, nobody takes its record for a dead one's.
        let Some(_running) = self.operation_lock(&tenant).await? else {
            return Err(Error::OperationRunning {
                slug: slug.to_owned(),
                kind: RESTORE.into(),
            });
        };
        let recorded = self.catalog.operation(tenant.id).await?;
        if let Some(op) = &recorded
            && op.kind != RESTORE
        {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "restore",
                hint: if op.kind == crate::archive::IMPORT {
                    "; its import did not finish"
                } else {
                    "; another operation on it did not finish"
                },
            });
        }
        // Suspended first, recorded second: a restore stopped between the two left the
        // storage untouched, and the tenant only needs resuming.
        let was_active = match &recorded {
            // An earlier restore of it stopped halfway: this one finishes the job, and
            // resumes the tenant if it was active when that one began.
            Some(op) => restore_detail(op.detail.as_deref()).1,
            None => tenant.status == Status::Active,
        };
        let tenant = match tenant.status {
            Status::Active => self.suspend_tenant(slug).await?,
            _ => tenant,
        };
        if recorded.is_none() {
            let state = if was_active { "active" } else { "suspended" };
            let detail = format!("{}:{state}", backup.id);
            self.catalog
                .begin_operation(tenant.id, RESTORE, Some(&detail))
                .await?;
        }
        self.event(
            &tenant,
            "tenant.restore",
            "started",
            Some(backup.id.clone()),
            None,
        )
        .await;
        let done = async {
            self.forget_pool(&tenant).await;
            match archive {
                Some((header, mut reader)) => {
                    self.drop_storage(&tenant).await?;
                    self.load(&tenant, &header, &mut reader, &set, &[Status::Suspended])
                        .await?;
                }
                None => self.reload_native(&tenant, backup).await?,
            }
            self.set_access(&tenant, false).await?;
            self.verify_storage(&tenant, &set, &[Status::Suspended])
                .await
        }
        .await;
        if let Err(e) = done {
            self.event(
                &tenant,
                "tenant.restore",
                "failed",
                None,
                Some(e.to_string()),
            )
            .await;
            return Err(e);
        }
        self.catalog.end_operation(tenant.id).await?;
        self.event(
            &tenant,
            "tenant.restore",
            "ok",
            Some(backup.id.clone()),
            None,
        )
        .await;
        if was_active {
            return self.resume_tenant(slug).await;
        }
        self.catalog.tenant(slug).await
    }

    /// The archive's header, checked against the fleet's migrations and, for a shared
    /// tenant, its pool's version, with the reader positioned at its first table.
    async fn check_restorable(
        &self,
        tenant: &Tenant,
        backup: &Backup,
    ) -> Result<(crate::archive::Header, ArchiveReader)> {
        let mut reader = ArchiveReader::open(&backup.path())?;
        let header = read_header(&mut reader)?;
        let set = self.migrations()?;
        check_migrations(&header, &set, &backup.path())?;
        if tenant.strategy.ops().pooled() {
            let pool = self.catalog.shared_pool(tenant.server.as_str()).await?;
            let at = pool.map_or(0, |p| p.version);
            if at != header.version {
                return Err(Error::ArchiveRefused {
                    path: backup.path(),
                    detail: format!(
                        "the shared pool on {} is at version {at} and the backup at {}: restore it as a new database or schema tenant (--as)",
                        tenant.server, header.version
                    ),
                });
            }
        }
        Ok((header, reader))
    }

    /// The engine's copy restored (into fresh storage, its grants set as migrations set
    /// them; or put in place of the file), then its rows read back and checked against the
    /// manifest.
    async fn reload_native(&self, tenant: &Tenant, backup: &Backup) -> Result<()> {
        let slug = tenant.slug.as_str();
        let place = self.place(tenant).await?;
        let dialect = place.engine().dialect();
        let path = backup.path();
        let refuse = || Error::ArchiveRefused {
            path: path.clone(),
            detail: format!("{} has no native backups", place.engine()),
        };
        let hook_failed = |e: crate::storage::HookError| match e {
            crate::storage::HookError::Sql(e) => Error::storage(slug, "grant its role")(e),
            crate::storage::HookError::Refused(e) => e,
        };
        if dialect.native_restore_into_fresh_storage() {
            self.drop_storage(tenant).await?;
            self.provision_storage(tenant, false).await?;
            let tenant = &self.catalog.tenant(slug).await?;
            self.set_access(tenant, false).await?;
            let mut target = self.migration_target(tenant).await?;
            target
                .hook
                .before(&mut target.conn)
                .await
                .map_err(hook_failed)?;
            dialect
                .native_restore(&place, tenant, &path)
                .ok_or_else(refuse)?
                .await?;
            target
                .hook
                .after(&mut target.conn)
                .await
                .map_err(hook_failed)?;
        } else {
            dialect
                .native_restore(&place, tenant, &path)
                .ok_or_else(refuse)?
                .await?;
        }
        let mut scope = DataScope::open(self, tenant).await?;
        let read = super::take::sums(&mut scope.conn, scope.engine, tenant, &scope.tables).await?;
        if read != backup.tables {
            return Err(Error::ContentMismatch {
                tenant: slug.to_owned(),
                table: "*".into(),
                detail: format!(
                    "after restoring backup {} its tables do not hold what the backup's manifest says",
                    backup.id
                ),
            });
        }
        Ok(())
    }
}

/// A restore record's backup id, and whether the tenant was active when it began.
pub(crate) fn restore_detail(detail: Option<&str>) -> (String, bool) {
    let detail = detail.unwrap_or_default();
    match detail.split_once(':') {
        Some((id, state)) => (id.to_owned(), state == "active"),
        None => (detail.to_owned(), false),
    }
}
