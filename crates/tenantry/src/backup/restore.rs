//! Restoring a backup: in place (the tenant suspended meanwhile, its storage emptied and
//! reloaded, checked against the backup's manifest, then migrated to the fleet's version and
//! resumed if it was active), or into a new tenant (an import of the archive).
//!
//! An operation record marks a restore in place until it completes: a tenant found so after
//! a crash stays suspended, and `resume` and `repair` say to run the restore again.

use super::{Backup, BackupMethod};
use crate::Tenantry;
use crate::archive::export::read_table;
use crate::archive::file::ArchiveReader;
use crate::archive::import::{check_migrations, read_header};
use crate::archive::scope::DataScope;
use crate::archive::{ImportTenant, TableSummary};
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
        let set = self.migrations()?;
        let was_active = tenant.status == Status::Active;
        let resumed_from = self.catalog.operation(tenant.id).await?;
        let tenant = match tenant.status {
            Status::Active => self.suspend_tenant(slug).await?,
            Status::Suspended => tenant,
            status => {
                return Err(Error::InvalidTransition {
                    slug: slug.to_owned(),
                    status,
                    action: "restore",
                    hint: "; only an active or suspended tenant is restored in place",
                });
            }
        };
        match resumed_from {
            Some(op) if op.kind == RESTORE => {}
            Some(op) => {
                return Err(Error::InvalidTransition {
                    slug: slug.to_owned(),
                    status: tenant.status,
                    action: "restore",
                    hint: if op.kind == crate::archive::IMPORT {
                        "; its import did not finish"
                    } else {
                        "; another operation is under way on it"
                    },
                });
            }
            None => {
                self.catalog
                    .begin_operation(tenant.id, RESTORE, Some(&backup.id))
                    .await?
            }
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
            match backup.method {
                BackupMethod::Archive => self.reload_archive(&tenant, backup).await?,
                BackupMethod::Native => self.reload_native(&tenant, backup).await?,
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

    /// The tenant's storage dropped (a shared tenant's rows deleted) and loaded again from
    /// the archive, at its version, checked as an import is.
    async fn reload_archive(&self, tenant: &Tenant, backup: &Backup) -> Result<()> {
        let mut reader = ArchiveReader::open(&backup.path())?;
        let header = read_header(&mut reader)?;
        let set = self.migrations()?;
        check_migrations(&header, &set, &backup.path())?;
        self.drop_storage(tenant).await?;
        self.load(tenant, &header, &mut reader, &set, &[Status::Suspended])
            .await?;
        Ok(())
    }

    /// The engine's copy put in place of the storage, then its rows read back and checked
    /// against the manifest.
    async fn reload_native(&self, tenant: &Tenant, backup: &Backup) -> Result<()> {
        let slug = tenant.slug.as_str();
        let place = self.place(tenant).await?;
        let path = backup.path();
        let replaced = place
            .engine()
            .dialect()
            .native_restore(&place, tenant, &path)
            .ok_or_else(|| Error::ArchiveRefused {
                path: path.clone(),
                detail: format!("{} has no native backups", place.engine()),
            })?;
        replaced.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut scope = DataScope::open(self, tenant).await?;
        let mut read = Vec::with_capacity(scope.tables.len());
        for table in &scope.tables {
            let sum = read_table(&mut scope.conn, scope.engine, tenant, table, None, |_| {
                Ok(())
            })
            .await?;
            read.push(TableSummary {
                name: table.name.to_string(),
                rows: sum.rows,
                checksum: sum.checksum(),
            });
        }
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

    /// Refuses to serve or repair a tenant whose restore in place did not finish.
    pub(crate) async fn refuse_unfinished_restore(&self, tenant: &Tenant) -> Result<()> {
        match self.catalog.operation(tenant.id).await? {
            Some(op) if op.kind == RESTORE => Err(Error::RestoreUnfinished {
                slug: tenant.slug.to_string(),
                backup: op.detail.unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }
}
