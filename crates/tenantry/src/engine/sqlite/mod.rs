//! SQLite: one database file per tenant in a server directory, file locks per tenant.

mod backup;
mod data;
mod dialect;
mod introspect;

pub use dialect::Sqlite;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::ident::StorageName;

/// Tables of the connected database, without SQLite's internal ones.
pub const LIST_TABLES: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";

/// The database file of storage `name` in directory `dir`.
pub fn file_path(dir: &Path, name: &StorageName) -> PathBuf {
    dir.join(format!("{name}.db"))
}

/// The file locked by the process running an operation on a tenant's data. It is not one of
/// [`all_files`]: a restore drops and recreates the storage while holding it, so it goes
/// only with the tenant's record (`Dialect::forget_operation_lock`).
pub fn operation_lock_path(dir: &Path, name: &StorageName) -> PathBuf {
    dir.join(format!("{name}.operation"))
}

/// The lock file beside a tenant's database file.
pub fn lock_path(dir: &Path, name: &StorageName) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

/// Every file that belongs to storage `name`: database, journals, lock, revocation marker;
/// the database file first, so storage is gone for every reader as soon as anything is.
pub fn all_files(dir: &Path, name: &StorageName) -> Vec<PathBuf> {
    let db = file_path(dir, name);
    let mut files = vec![db.clone()];
    files.extend(
        ["-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display()))),
    );
    files.push(lock_path(dir, name));
    files.push(revoked_path(dir, name));
    files
}

/// A connection URL for the file at `path`, creating it if missing: for provisioning only.
pub fn url_creating(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A connection URL for the existing file at `path`; opening it fails if the file is gone,
/// so a runner never recreates a deleted tenant's storage.
pub fn url_existing(path: &Path) -> String {
    format!("sqlite://{}?mode=rw", path.display())
}

/// Creates the lock file at `path` if missing (provisioning).
pub fn create_lock_file(path: &Path) -> std::io::Result<()> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map(drop)
}

/// Takes an exclusive OS lock on the existing file at `path` if it is free. The lock is
/// released when the returned file is dropped or the process exits. A missing file is an
/// error (`NotFound`): the storage it guards is gone.
pub fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = File::options().write(true).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The marker beside a tenant's file that shuts its application connections out while it
/// is suspended or being deleted.
pub fn revoked_path(dir: &Path, name: &StorageName) -> PathBuf {
    dir.join(format!("{name}.revoked"))
}

/// Whether a tenant's application connections may work: its file is there and no revocation
/// marker is. Cheap (two `stat` calls), so it runs at every begin and commit.
pub fn admitted(file: &Path, revoked: &Path) -> bool {
    file.exists() && !revoked.exists()
}
