//! Per-tenant backups ([docs/0005](../../../docs/0005-tenant-data.md)): one directory per
//! backup under `<backup dir>/<tenant id>/`, holding the data and a manifest of what it holds
//! (method, file digest, version, every table's rows and checksum). A backup is the portable
//! archive, or the engine's own copy of a tenant's own storage (SQLite's `VACUUM INTO`,
//! `pg_dump` of a database or schema, `mysqldump`); both are checked against their manifest
//! when restored.

mod restore;
mod take;

pub(crate) use restore::{RESTORE, restore_detail};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Tenantry;
use crate::archive::TableSummary;
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// The manifest of a backup.
const MANIFEST: &str = "manifest.json";
/// The data file of a portable backup.
const ARCHIVE_FILE: &str = "data.tnt.gz";
/// The data file of a native backup.
const NATIVE_FILE: &str = "data.native";

/// How a backup holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BackupMethod {
    /// The portable archive (`tenant export`): restorable on any engine and strategy.
    Archive,
    /// The engine's own copy of a database tenant's storage: restorable in place.
    Native,
}

/// What a backup holds, as its manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backup {
    pub id: String,
    pub tenant_id: String,
    pub slug: String,
    pub created_at: String,
    pub method: BackupMethod,
    pub engine: String,
    pub strategy: String,
    /// The data file's name in the backup's directory.
    pub file: String,
    pub bytes: u64,
    /// SHA-256 of the data file.
    pub sha256: String,
    pub version: i64,
    pub tables: Vec<TableSummary>,
    /// How long the tenant's writes waited for the backup to start, where they did (a
    /// MySQL/MariaDB native backup's read lock); in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_held_ms: Option<u64>,
    /// The backup's directory.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub dir: PathBuf,
}

impl Backup {
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Refuses a data file that is not the one the manifest describes.
    fn check_file(&self) -> Result<()> {
        let path = self.path();
        let (bytes, sha256) = digest_file(&path)?;
        if bytes != self.bytes || sha256 != self.sha256 {
            return Err(Error::ArchiveInvalid {
                path,
                line: 0,
                detail: format!(
                    "the backup file is {bytes} bytes with SHA-256 {sha256}; its manifest says {} with {}",
                    self.bytes, self.sha256
                ),
            });
        }
        Ok(())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A file's size and SHA-256.
fn digest_file(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hash = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hash).map_err(io(path))?;
    Ok((bytes, hex::encode(hash.finalize())))
}

impl Tenantry {
    /// The directory of a tenant's backups.
    fn backups_dir(&self, tenant: TenantId) -> PathBuf {
        self.config.backup_dir.join(tenant.to_string())
    }

    /// The backups of the tenant with this slug (or, once it is purged, of any tenant that
    /// had it), newest first. Directories without a readable manifest are not backups
    /// (an unfinished one, say) and are left out.
    pub async fn backups(&self, slug: &str) -> Result<Vec<Backup>> {
        // A live tenant's backups are those in its own directory, whatever slug it had
        // then (never another tenant's that once had its slug); a purged tenant's are found
        // by the slug it had, in directories no live tenant owns.
        let live = self.catalog.find_tenant(slug).await?;
        let dirs = match &live {
            Some(tenant) => vec![self.backups_dir(tenant.id)],
            None => subdirectories(&self.config.backup_dir)?,
        };
        let mut found = Vec::new();
        for dir in dirs {
            if live.is_none() {
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let Ok(id) = TenantId::parse(name) else {
                    continue;
                };
                if self.catalog.find_tenant_by_id(id).await?.is_some() {
                    continue;
                }
            }
            found.extend(
                subdirectories(&dir)?
                    .iter()
                    .filter_map(|d| read_manifest(d))
                    .filter(|backup| live.is_some() || backup.slug == slug),
            );
        }
        found.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(found)
    }

    /// One backup of the tenant with this slug, by id.
    pub async fn backup(&self, slug: &str, id: &str) -> Result<Backup> {
        self.backups(slug)
            .await?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| Error::BackupNotFound {
                slug: slug.to_owned(),
                id: id.to_owned(),
            })
    }

    /// Deletes the tenant, purges its record and removes every backup of it (`tenant
    /// delete --purge --with-backups`).
    pub async fn purge_tenant_with_backups(&self, slug: &str) -> Result<()> {
        let tenant = self.catalog.tenant(slug).await?;
        self.delete_tenant(slug, true).await?;
        let dir = self.backups_dir(tenant.id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir)(e)),
            _ => Ok(()),
        }
    }
}

/// The directories in `dir` (none if it does not exist); files are not backups.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(dir)(e)),
    }
}

/// A backup's manifest, if `dir` holds a readable one that describes `dir` itself: its id
/// and tenant are the directory's names, and its data file is the one its method writes
/// (never a path elsewhere).
fn read_manifest(dir: &Path) -> Option<Backup> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let mut backup: Backup = serde_json::from_str(&text).ok()?;
    let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let expected = match backup.method {
        BackupMethod::Archive => ARCHIVE_FILE,
        BackupMethod::Native => NATIVE_FILE,
    };
    let consistent = backup.file == expected
        && name_of(dir).as_deref() == Some(backup.id.as_str())
        && dir.parent().and_then(name_of).as_deref() == Some(backup.tenant_id.as_str());
    if !consistent {
        return None;
    }
    backup.dir = dir.to_owned();
    Some(backup)
}
