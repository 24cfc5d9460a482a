//! SQLite: one database file per tenant in a server directory, file locks per tenant.

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

/// The lock file beside a tenant's database file.
pub fn lock_path(dir: &Path, name: &StorageName) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

/// Every file that belongs to storage `name`: database, journals, lock.
pub fn all_files(dir: &Path, name: &StorageName) -> Vec<PathBuf> {
    let db = file_path(dir, name);
    let mut files: Vec<PathBuf> = ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .collect();
    files.push(db);
    files.push(lock_path(dir, name));
    files
}

/// A connection URL for the file at `path`, creating it if missing.
pub fn url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Takes an exclusive OS lock on the file at `path` if it is free. The lock is released when
/// the returned file is dropped or the process exits.
pub fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
