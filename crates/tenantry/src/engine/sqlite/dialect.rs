//! SQLite's [`Dialect`]: a tenant's own file in a server directory, no logins (access is a
//! revocation marker beside the file), OS file locks.

use std::path::Path;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::engine::Engine;
use crate::engine::dialect::{CatalogLock, Dialect, HeldLock, LockName, OperationLock};
use crate::engine::shape::Shape;
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::storage::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};

/// SQLite.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

/// A file error about one tenant's storage.
fn file_error(
    tenant: &Tenant,
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let tenant = tenant.slug.to_string();
    let path = path.to_owned();
    move |source| Error::StorageFile {
        tenant,
        action,
        path,
        source,
    }
}

impl Dialect for Sqlite {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn quote_char(&self) -> char {
        '"'
    }

    fn numbered_placeholders(&self) -> bool {
        false
    }

    fn list_tables_sql(&self) -> &'static str {
        super::LIST_TABLES
    }

    fn introspect<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, sqlx::Result<Shape>> {
        super::introspect::shape(conn).boxed()
    }

    fn value_class(&self, data_type: &str) -> Class {
        super::data::value_class(data_type)
    }

    fn select_rows(
        &self,
        table: &SqlName,
        columns: &[ColumnSpec],
        tenant_column: Option<&SqlName>,
    ) -> String {
        super::data::select_rows(table, columns, tenant_column)
    }

    fn insert_rows<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        columns: &'a [ColumnSpec],
        rows: &'a [Vec<Neutral>],
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        super::data::insert_rows(conn, table, columns, rows)
    }

    fn quiesce<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, sqlx::Result<()>> {
        // A commit checks the revocation marker while it holds the write lock: once the
        // lock is had after the marker was written, every commit that missed it has ended.
        async move {
            sqlx::raw_sql("BEGIN IMMEDIATE; COMMIT")
                .execute(conn)
                .await
                .map(drop)
        }
        .boxed()
    }

    fn delete_rows<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        rows: crate::engine::rows::KeyedRows<'a>,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        crate::engine::rows::values_delete(Engine::Sqlite, "unhex(?)", conn, rows, tenant)
    }

    fn delete_all<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        crate::engine::rows::delete_all(Engine::Sqlite, conn, table, tenant, |c| format!("{c} = ?"))
    }

    fn native_backup<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        conn: &'a mut AnyConnection,
        dest: &'a Path,
    ) -> Option<BoxFuture<'a, Result<Option<Duration>>>> {
        Some(
            async move {
                super::backup::vacuum_into(conn, dest)
                    .await
                    .map_err(Error::storage(tenant.slug.as_str(), "copy its storage"))?;
                let _ = place;
                // `VACUUM INTO` reads in one transaction: writers wait only for its commit.
                Ok(None)
            }
            .boxed(),
        )
    }

    fn native_backup_url(&self, file: &Path) -> Option<String> {
        Some(super::backup::url_reading(file))
    }

    fn native_restore<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        file: &'a Path,
    ) -> Option<BoxFuture<'a, Result<()>>> {
        Some(
            async move {
                let dir = place.dir()?;
                super::backup::replace_file(dir, &tenant.storage, file).map_err(|source| {
                    Error::StorageFile {
                        tenant: tenant.slug.to_string(),
                        action: "put its backup in place",
                        path: file.to_owned(),
                        source,
                    }
                })
            }
            .boxed(),
        )
    }

    fn transactional_ddl(&self) -> bool {
        true
    }

    fn hash_comments(&self) -> bool {
        false
    }

    fn strategies(&self) -> &'static [Strategy] {
        &[Strategy::Database]
    }

    fn offers(&self) -> &'static str {
        "SQLite servers support: database (one file per tenant); schema and shared need a PostgreSQL server"
    }

    fn has_logins(&self) -> bool {
        false
    }

    fn catalog_url(&self, url: &str, create: bool) -> Result<String> {
        catalog_url(url, create)
    }

    fn catalog_setup(&self) -> Option<&'static str> {
        Some("PRAGMA journal_mode = WAL")
    }

    fn catalog_table_options(&self) -> &'static str {
        ""
    }

    fn catalog_index(&self, name: &str, table: &str, columns: &str) -> String {
        format!("CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    }

    fn is_duplicate_index(&self, _e: &sqlx::Error) -> bool {
        false
    }

    fn catalog_lock(&self) -> Option<CatalogLock> {
        // The database's write lock serialises catalog migrations.
        None
    }

    fn set_statement_timeout<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _limit: Duration,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        async { Ok(()) }.boxed()
    }

    fn prepare_admin<'a>(&'a self, _conn: &'a mut AnyConnection) -> BoxFuture<'a, ()> {
        async {}.boxed()
    }

    fn lock_name(&self, _t: &Tenantry, _unit: &str, file: &Path) -> Result<LockName> {
        Ok(LockName(file.display().to_string()))
    }

    fn try_operation_lock<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<Option<OperationLock>>> {
        async move {
            let path = super::operation_lock_path(place.dir()?, &tenant.storage);
            let failed = |source| Error::StorageFile {
                tenant: tenant.slug.to_string(),
                action: "lock for an operation",
                path: path.clone(),
                source,
            };
            super::create_lock_file(&path).map_err(failed)?;
            let file = super::try_lock(&path).map_err(failed)?;
            Ok(file.map(|file| OperationLock {
                conn: None,
                held: HeldLock {
                    name: LockName(path.display().to_string()),
                    file: Some(file),
                },
            }))
        }
        .boxed()
    }

    fn forget_operation_lock(&self, place: &Place, tenant: &Tenant) -> Result<()> {
        let path = super::operation_lock_path(place.dir()?, &tenant.storage);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(file_error(tenant, "remove", &path)(e))
            }
            _ => Ok(()),
        }
    }

    fn try_lock<'a>(
        &'a self,
        owner: &'a str,
        _conn: &'a mut AnyConnection,
        name: &'a LockName,
    ) -> BoxFuture<'a, Result<Option<HeldLock>>> {
        async move {
            let path = Path::new(&name.0);
            let file = super::try_lock(path).map_err(|source| Error::StorageFile {
                tenant: owner.to_owned(),
                action: "lock",
                path: path.to_owned(),
                source,
            })?;
            Ok(file.map(|file| HeldLock {
                name: name.clone(),
                file: Some(file),
            }))
        }
        .boxed()
    }

    fn unlock<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        held: HeldLock,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        drop(held);
        async { Ok(()) }.boxed()
    }

    fn provision_database<'a>(
        &'a self,
        _t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let dir = place.dir()?;
            std::fs::create_dir_all(dir).map_err(file_error(
                tenant,
                "create the directory",
                dir,
            ))?;
            // Opening with mode=rwc creates the file; the lock file beside it is made here
            // too, and only here.
            let lock = super::lock_path(dir, &tenant.storage);
            super::create_lock_file(&lock).map_err(file_error(
                tenant,
                "create the lock file",
                &lock,
            ))?;
            let path = super::file_path(dir, &tenant.storage);
            connect_as_admin(place, tenant.slug.as_str(), &super::url_creating(&path))
                .await
                .map(drop)
        }
        .boxed()
    }

    fn database_target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<MigrationTarget>> {
        async move {
            let dir = place.dir()?;
            let slug = tenant.slug.to_string();
            let url = super::url_existing(&super::file_path(dir, &tenant.storage));
            let lock = LockSpec::new(
                Engine::Sqlite,
                self.lock_name(t, "", &super::lock_path(dir, &tenant.storage))?,
            );
            Ok(MigrationTarget {
                conn: connect_as_admin(place, &slug, &url).await?,
                owner: slug,
                engine: Engine::Sqlite,
                lock,
                hook: Hook::None,
                reuse: None,
            })
        }
        .boxed()
    }

    fn drop_database<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            for path in super::all_files(place.dir()?, &tenant.storage) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(file_error(tenant, "remove", &path)(source)),
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn leftovers<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let dir = place.dir()?;
            let mut files = super::all_files(dir, &tenant.storage);
            files.push(super::operation_lock_path(dir, &tenant.storage));
            Ok(files
                .into_iter()
                .filter(|f| f.exists())
                .map(|f| format!("file {}", f.display()))
                .collect())
        }
        .boxed()
    }

    fn database_exists<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>> {
        async move { Ok(super::file_path(place.dir()?, &tenant.storage).exists()) }.boxed()
    }

    fn set_database_access<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let marker = super::revoked_path(place.dir()?, &tenant.storage);
            let result = if allow {
                match std::fs::remove_file(&marker) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            } else {
                std::fs::write(&marker, b"")
            };
            let action = if allow { "admit" } else { "revoke" };
            result.map_err(file_error(tenant, action, &marker))
        }
        .boxed()
    }
}

/// The catalog's URL: a file path, opened read-write; `create`: made (with its directory)
/// when missing, else a missing file is [`Error::CatalogMissing`].
fn catalog_url(url: &str, create: bool) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(Error::UnsupportedUrl {
            url: url.to_owned(),
            reason: "the catalog needs a file path".into(),
        });
    }
    let mode = match create {
        false => {
            if !Path::new(path).exists() {
                return Err(Error::CatalogMissing { path: path.into() });
            }
            // The file exists: open it read-write, never create it (it may vanish meanwhile).
            "mode=rw"
        }
        true => {
            if let Some(parent) = Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            "mode=rwc"
        }
    };
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        mode.to_owned()
    } else {
        format!("{query}&{mode}")
    };
    Ok(format!("sqlite://{path}?{query}"))
}
