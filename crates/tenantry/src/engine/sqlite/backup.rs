//! SQLite's own backup: `VACUUM INTO` writes a consistent, compacted copy of a tenant's file
//! while it serves; a restore puts such a copy in place of the file.

use std::path::Path;

use sqlx::AnyConnection;

use crate::ident::StorageName;

/// Writes a consistent copy of the connected database to `dest`, which must not exist.
pub(super) async fn vacuum_into(conn: &mut AnyConnection, dest: &Path) -> sqlx::Result<()> {
    sqlx::query("VACUUM INTO ?")
        .bind(dest.to_string_lossy().into_owned())
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts the database file `from` in place of storage `name` in `dir`: copied beside it,
/// the old file's journals removed, then renamed over it (one step for every reader).
pub(super) fn replace_file(dir: &Path, name: &StorageName, from: &Path) -> std::io::Result<()> {
    let target = super::file_path(dir, name);
    let staged = dir.join(format!("{name}.restoring"));
    std::fs::copy(from, &staged)?;
    std::fs::File::open(&staged)?.sync_all()?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let journal = dir.join(format!("{name}.db{suffix}"));
        match std::fs::remove_file(&journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(&staged, &target)
}

/// A read-only connection URL for a backup file.
pub(super) fn url_reading(path: &Path) -> String {
    format!("sqlite://{}?mode=ro", path.display())
}
