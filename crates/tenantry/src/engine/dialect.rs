//! [`Dialect`]: everything that differs per engine, behind one interface. Each engine's module
//! implements it ([`super::sqlite::Sqlite`], [`super::postgres::Postgres`],
//! [`super::mysql::Mysql`]); [`Engine::dialect`] is the one place an engine is mapped to its
//! behaviour. Adding an engine is adding a module that implements this trait.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::Engine;
use super::shape::Shape;
use super::value::{Class, ColumnSpec, Neutral};
use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::error::Result;
use crate::ident::SqlName;
use crate::storage::{MigrationTarget, Place};

/// A lock's name as an engine takes it: derived from the master key for the engines whose
/// locks a tenant could otherwise name, a file path on SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockName(pub String);

/// A lock an engine holds for a runner. Dropping it (or the connection, or the process)
/// releases it too.
#[derive(Debug)]
pub struct HeldLock {
    pub name: LockName,
    /// The open lock file, where the engine locks files.
    pub file: Option<std::fs::File>,
}

/// The lock that marks an operation on a tenant's data (an import, a restore) as under way:
/// held by the process doing it for as long as it runs, released when that process ends or
/// dies. Dropping it releases it.
#[derive(Debug)]
pub struct OperationLock {
    /// The session holding it, where the engine's locks belong to a session.
    pub conn: Option<AnyConnection>,
    pub held: HeldLock,
}

/// How the catalog serialises its own migrations across processes.
#[derive(Debug, Clone, Copy)]
pub struct CatalogLock {
    /// Takes the lock; returns one row with one integer, 1 when taken. Bound: the key, then,
    /// if `bounded`, how many seconds to wait.
    pub take: &'static str,
    pub release: &'static str,
    /// Whether `take` gives up by itself after the bound wait (else the statement timeout
    /// ends the wait).
    pub bounded: bool,
}

/// What differs per database engine.
pub trait Dialect: Send + Sync {
    fn engine(&self) -> Engine;

    // SQL text.

    /// The character that quotes identifiers (doubled inside one).
    fn quote_char(&self) -> char;
    /// Whether bound parameters are numbered (`$1`) rather than `?`.
    fn numbered_placeholders(&self) -> bool;
    /// A query listing the base tables of the connected tenant storage, one `name` column.
    fn list_tables_sql(&self) -> &'static str;
    /// Which of `names` (lowercase) are base tables of the connected tenant storage. By
    /// default read from [`Dialect::list_tables_sql`].
    fn present_tables<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        names: &'a [String],
    ) -> BoxFuture<'a, sqlx::Result<std::collections::BTreeSet<String>>> {
        async move {
            let rows = sqlx::query(self.list_tables_sql())
                .fetch_all(&mut *conn)
                .await?;
            let mut present = std::collections::BTreeSet::new();
            for row in &rows {
                let name = sqlx::Row::try_get::<String, _>(row, "name")?.to_ascii_lowercase();
                if names.contains(&name) {
                    present.insert(name);
                }
            }
            Ok(present)
        }
        .boxed()
    }
    /// The connected storage's base tables with their columns, indexes and constraints
    /// (`migrate verify`): the current schema on PostgreSQL, the current database on MySQL,
    /// the file on SQLite.
    fn introspect<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, sqlx::Result<Shape>>;
    /// Whether DDL commits with its transaction. Where it does not, a migration runs statement
    /// by statement and is recorded `dirty` until its last statement ran.
    fn transactional_ddl(&self) -> bool;
    /// Whether `#` starts a comment.
    fn hash_comments(&self) -> bool;

    // What its servers offer.

    /// The strategies a server of this engine offers.
    fn strategies(&self) -> &'static [Strategy];
    /// What to tell someone who asks for another strategy.
    fn offers(&self) -> &'static str;
    /// Whether tenants log in with roles whose passwords are sealed with the master key.
    fn has_logins(&self) -> bool;

    // The catalog.

    /// The URL the catalog pool connects to; `create`: an embedded catalog file may be made.
    fn catalog_url(&self, url: &str, create: bool) -> Result<String>;
    /// What runs once on a freshly opened catalog.
    fn catalog_setup(&self) -> Option<&'static str>;
    /// What follows `CREATE TABLE (…)` in the catalog's DDL.
    fn catalog_table_options(&self) -> &'static str;
    /// An index of the catalog, created idempotently.
    fn catalog_index(&self, name: &str, table: &str, columns: &str) -> String;
    /// Whether an error says an index exists already.
    fn is_duplicate_index(&self, e: &sqlx::Error) -> bool;
    /// The lock that serialises catalog migrations, if the engine needs one.
    fn catalog_lock(&self) -> Option<CatalogLock>;

    // Connections.

    /// Sets the statement timeout of a connection Tenantry opened (`None`: no limit).
    fn set_statement_timeout<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        limit: Duration,
    ) -> BoxFuture<'a, sqlx::Result<()>>;
    /// What every administrative connection runs first.
    fn prepare_admin<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, ()>;
    /// Puts an administrative connection back in the state a fresh one has (but for the
    /// settings `connect` makes, which [`super::reuse`] makes again), so another unit's
    /// migration can reuse it: `Ok(false)` where connections are not reused.
    fn reset_admin<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, sqlx::Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    // A tenant's rows (archives, moves): see [`super::value`].

    /// The class of a column of declared type `data_type`.
    fn value_class(&self, data_type: &str) -> Class;
    /// A `SELECT` of `columns` of `table` (in the connection's scope), each as text (bytes as
    /// hex); with `tenant_column`, only the rows whose tenant column equals the one bound
    /// parameter.
    fn select_rows(
        &self,
        table: &SqlName,
        columns: &[ColumnSpec],
        tenant_column: Option<&SqlName>,
    ) -> String;
    /// Inserts `rows` (values in `columns` order) into `table` in one statement.
    fn insert_rows<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        columns: &'a [ColumnSpec],
        rows: &'a [Vec<Neutral>],
    ) -> BoxFuture<'a, sqlx::Result<u64>>;
    /// Deletes from a table every row whose primary key equals one of `rows`', in one
    /// statement; with `tenant` (its column
    /// and id), only among that tenant's rows.
    fn delete_rows<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        rows: super::rows::KeyedRows<'a>,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>>;
    /// Deletes every row of `table`; with `tenant` (its column and id), that tenant's.
    fn delete_all<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>>;
    /// How many rows of `columns` values one [`Dialect::insert_rows`] takes (within every
    /// engine's limit on bound parameters).
    fn batch_rows(&self, columns: usize) -> usize {
        (30_000 / columns.max(1)).clamp(1, 1_000)
    }
    /// What a connection that reads or writes rows runs first.
    fn data_session(&self) -> Option<&'static str> {
        None
    }
    /// What the first statement of a transaction runs so that every table it reads comes
    /// from one snapshot, where the engine's default does not.
    fn snapshot(&self) -> Option<&'static str> {
        None
    }
    /// Waits, on a connection to a tenant's storage that was just shut out, until no unit of
    /// work of the tenant can still commit, where shutting out does not wait for that
    /// itself (SQLite: a commit that passed its check may be under way).
    fn quiesce<'a>(&'a self, _conn: &'a mut AnyConnection) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Moves `table`'s identity sequences past its highest value, where the engine's do not
    /// follow explicit values by themselves.
    fn continue_identities<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _table: &'a SqlName,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    // Native backups: the engine's own copy of one database tenant's storage.

    /// Whether [`Dialect::native_backup`] runs inside a snapshot transaction on `conn`
    /// (whose checksums then describe the copy), rather than on a plain connection (the copy
    /// is then read back through [`Dialect::native_backup_url`]).
    fn native_backup_in_snapshot(&self) -> bool {
        false
    }
    /// Writes a copy of a tenant's own storage to `dest` with the engine's own means, where
    /// Tenantry uses one (SQLite's `VACUUM INTO`, PostgreSQL's `pg_dump` of a database or
    /// schema, `mysqldump`), and returns how long the tenant's writes were held for it, if
    /// they were; `None` where the engine has no native backup of such a tenant.
    fn native_backup<'a>(
        &'a self,
        _place: &'a Place,
        _tenant: &'a Tenant,
        _conn: &'a mut AnyConnection,
        _dest: &'a std::path::Path,
    ) -> Option<BoxFuture<'a, Result<Option<std::time::Duration>>>> {
        None
    }
    /// A read-only URL for a native backup file, where the copy is itself a database.
    fn native_backup_url(&self, _file: &std::path::Path) -> Option<String> {
        None
    }
    /// Whether a native restore loads into freshly provisioned storage (rather than
    /// putting a copy in place of it).
    fn native_restore_into_fresh_storage(&self) -> bool {
        false
    }
    /// Restores a native backup into a tenant's own storage (which nothing uses); `None`
    /// where the engine has no native backups of such a tenant.
    fn native_restore<'a>(
        &'a self,
        _place: &'a Place,
        _tenant: &'a Tenant,
        _file: &'a std::path::Path,
    ) -> Option<BoxFuture<'a, Result<()>>> {
        None
    }

    // Locks.

    /// The name of a unit's lock (`tenant:<id>`, …), as derived by [`Tenantry::lock_secret`],
    /// or for engines that lock files, `file`.
    fn lock_name(&self, t: &Tenantry, unit: &str, file: &std::path::Path) -> Result<LockName>;
    /// Takes the tenant's [`OperationLock`] if it is free, without waiting; `Ok(None)`: a
    /// live process holds it. By default a lock by name on an administrative session of
    /// the server, kept open with it.
    fn try_operation_lock<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<Option<OperationLock>>> {
        async move {
            let mut conn = place.admin_at(None).await?;
            self.keep_session(&mut conn).await;
            let unit = format!("operation:{}", tenant.id);
            let name = self.lock_name(t, &unit, std::path::Path::new(""))?;
            let held = self
                .try_lock(tenant.slug.as_str(), &mut conn, &name)
                .await?;
            Ok(held.map(|held| OperationLock {
                conn: Some(conn),
                held,
            }))
        }
        .boxed()
    }
    /// Keeps an idle session open as long as it is held (PostgreSQL's
    /// `idle_session_timeout` would end it, and the locks it holds with it).
    fn keep_session<'a>(&'a self, _conn: &'a mut AnyConnection) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Removes what the operation lock leaves behind once the tenant's record is purged
    /// (SQLite: its file).
    fn forget_operation_lock(&self, _place: &Place, _tenant: &Tenant) -> Result<()> {
        Ok(())
    }
    /// Takes the lock if it is free: `Ok(None)` if another runner holds it.
    fn try_lock<'a>(
        &'a self,
        owner: &'a str,
        conn: &'a mut AnyConnection,
        name: &'a LockName,
    ) -> BoxFuture<'a, Result<Option<HeldLock>>>;
    /// Releases a lock on the connection that took it.
    fn unlock<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        held: HeldLock,
    ) -> BoxFuture<'a, sqlx::Result<()>>;

    // A database of its own for one tenant (the database strategy).

    /// Creates (or completes) the tenant's database and its login. Idempotent.
    fn provision_database<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>>;
    /// An administrative connection in the tenant's existing database, its lock and hook.
    fn database_target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<MigrationTarget>>;
    /// Drops the tenant's database and login; absent is fine.
    fn drop_database<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>>;
    /// What the server still holds under the tenant's names, whatever its strategy was:
    /// a database, schema, login role or user, large objects, files. Empty once purged.
    fn leftovers<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<Vec<String>>>;
    /// Whether the tenant's database exists.
    fn database_exists<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Lets the tenant's login in, or shuts it out and ends its sessions.
    fn set_database_access<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>>;
}

impl Engine {
    /// The engine's behaviour.
    pub fn dialect(self) -> &'static dyn Dialect {
        match self {
            Engine::Sqlite => &super::sqlite::Sqlite,
            Engine::Postgres => &super::postgres::Postgres,
            Engine::Mysql => &super::mysql::Mysql,
        }
    }
}
