//! Taking a backup: the data written into a directory of its own, then its manifest, so a
//! directory with a manifest is a complete backup.

use std::path::Path;

use sqlx::Connection;

use super::{Backup, BackupMethod, MANIFEST, digest_file, io};
use crate::Tenantry;
use crate::archive::TableSummary;
use crate::archive::export::read_table;
use crate::archive::scope::{self, DataScope, TableSpec};
use crate::catalog::{Status, Tenant, now};
use crate::error::{Error, Result};
use crate::migrate::ledger;

/// A backup's data as written, before its manifest.
struct Taken {
    method: BackupMethod,
    file: &'static str,
    version: i64,
    tables: Vec<TableSummary>,
    /// How long the tenant's writes were held for it, if they were.
    paused: Option<std::time::Duration>,
}

impl Tenantry {
    /// Backs the tenant up while it serves. `native`: with the engine's own copy of its
    /// storage (a database tenant's, or a PostgreSQL schema tenant's), else the portable
    /// archive. The backup exists, and
    /// is listed, only once complete.
    pub async fn backup_tenant(&self, slug: &str, native: bool) -> Result<Backup> {
        let tenant = self.catalog.tenant(slug).await?;
        if !matches!(tenant.status, Status::Active | Status::Suspended) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "back up",
                hint: "; only an active or suspended tenant's storage is complete",
            });
        }
        self.refuse_unfinished(&tenant).await?;
        let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let dir = self.backups_dir(tenant.id).join(&id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let taken = match native {
            true => self.native_backup(&tenant, &dir).await,
            false => self.archive_backup(&tenant, &dir).await,
        };
        let Taken {
            method,
            file,
            version,
            tables,
            paused,
        } = match taken {
            Ok(taken) => taken,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let (bytes, sha256) = digest_file(&dir.join(file))?;
        let place = self.place(&tenant).await?;
        let backup = Backup {
            id,
            tenant_id: tenant.id.to_string(),
            slug: tenant.slug.to_string(),
            created_at: now(),
            method,
            engine: place.engine().to_string(),
            strategy: tenant.strategy.to_string(),
            file: file.to_owned(),
            bytes,
            sha256,
            version,
            tables,
            writes_held_ms: paused.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            dir: dir.clone(),
        };
        let manifest = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&backup).map_err(|e| Error::Io {
            path: manifest.clone(),
            source: std::io::Error::other(e),
        })?;
        let staged = dir.join("manifest.partial");
        std::fs::write(&staged, text).map_err(io(&staged))?;
        std::fs::rename(&staged, &manifest).map_err(io(&manifest))?;
        let mut detail = format!("{} ({:?}, {} rows)", backup.id, method, backup.rows());
        if let Some(ms) = backup.writes_held_ms {
            detail.push_str(&format!(", writes held {ms} ms"));
        }
        self.event(&tenant, "tenant.backup", "ok", Some(detail), None)
            .await;
        Ok(backup)
    }

    async fn archive_backup(&self, tenant: &Tenant, dir: &Path) -> Result<Taken> {
        let file = super::ARCHIVE_FILE;
        let manifest = self
            .export_tenant(tenant.slug.as_str(), &dir.join(file))
            .await?;
        Ok(Taken {
            method: BackupMethod::Archive,
            file,
            version: manifest.header.version,
            tables: manifest.totals.tables,
            paused: None,
        })
    }

    /// The engine's own copy, then its tables read from the copy itself.
    async fn native_backup(&self, tenant: &Tenant, dir: &Path) -> Result<Taken> {
        let slug = tenant.slug.as_str();
        let file = super::NATIVE_FILE;
        let dest = dir.join(file);
        let place = self.place(tenant).await?;
        let engine = place.engine();
        let dialect = engine.dialect();
        let refuse = || Error::ArchiveRefused {
            path: dest.clone(),
            detail: format!(
                "a native backup is taken of a tenant's own database (or PostgreSQL schema); tenant {slug} is a {} tenant on {}: take the portable one",
                tenant.strategy, engine
            ),
        };
        if tenant.strategy.ops().pooled() {
            return Err(refuse());
        }
        if dialect.native_backup_in_snapshot() {
            // The copy and the manifest's checksums from one snapshot.
            let mut scope = DataScope::open(self, tenant).await?;
            let mut tx = scope
                .conn
                .begin()
                .await
                .map_err(Error::storage(slug, "begin its backup"))?;
            if let Some(sql) = dialect.snapshot() {
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(slug, "take a snapshot"))?;
            }
            let Some(copying) = dialect.native_backup(&place, tenant, &mut tx, &dest) else {
                return Err(refuse());
            };
            let paused = copying.await?;
            let rows = ledger::read(&mut tx)
                .await
                .map_err(Error::storage(slug, "read its ledger"))?;
            let tables = scope::tables_in(self, tenant, engine, &mut tx, false).await?;
            let sums = sums(&mut tx, engine, tenant, &tables).await?;
            return Ok(Taken {
                method: BackupMethod::Native,
                file,
                version: ledger::version(&rows),
                tables: sums,
                paused,
            });
        }
        let mut target = self.migration_target(tenant).await?;
        let Some(copying) = dialect.native_backup(&place, tenant, &mut target.conn, &dest) else {
            return Err(refuse());
        };
        let paused = copying.await?;
        // The manifest is read from the copy itself.
        let url = dialect.native_backup_url(&dest).ok_or_else(refuse)?;
        let conn = crate::storage::connect_as_admin(&place, slug, &url).await?;
        let mut scope = DataScope::of_conn(self, tenant, engine, conn, false).await?;
        let rows = ledger::read(&mut scope.conn)
            .await
            .map_err(Error::storage(slug, "read its backup's ledger"))?;
        let sums = sums(&mut scope.conn, engine, tenant, &scope.tables).await?;
        Ok(Taken {
            method: BackupMethod::Native,
            file,
            version: ledger::version(&rows),
            tables: sums,
            paused,
        })
    }
}

/// Every table's rows and checksum, read on `conn`.
pub(super) async fn sums(
    conn: &mut sqlx::AnyConnection,
    engine: crate::engine::Engine,
    tenant: &Tenant,
    tables: &[TableSpec],
) -> Result<Vec<TableSummary>> {
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let sum = read_table(conn, engine, tenant, table, None, |_| Ok(())).await?;
        out.push(TableSummary {
            name: table.name.to_string(),
            rows: sum.rows,
            checksum: sum.checksum(),
        });
    }
    Ok(out)
}
