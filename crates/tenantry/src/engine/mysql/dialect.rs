//! MySQL's and MariaDB's [`Dialect`]: a tenant's own database with a login user of its own,
//! named locks whose names derive from the master key (they are server-wide), DDL that is not
//! transactional.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::engine::dialect::{CatalogLock, Dialect, HeldLock, LockName};
use crate::engine::shape::Shape;
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::storage::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};

/// MySQL and MariaDB.
#[derive(Debug, Clone, Copy)]
pub struct Mysql;

/// MySQL's `ER_DUP_KEYNAME` (an index exists already) has this SQLSTATE.
const DUPLICATE_INDEX: &str = "42000";

impl Dialect for Mysql {
    fn engine(&self) -> Engine {
        Engine::Mysql
    }

    fn quote_char(&self) -> char {
        '`'
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

    fn delete_rows<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        rows: crate::engine::rows::KeyedRows<'a>,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        crate::engine::rows::values_delete(Engine::Mysql, "UNHEX(?)", conn, rows, tenant)
    }

    fn delete_all<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        crate::engine::rows::delete_all(Engine::Mysql, conn, table, tenant, |c| format!("{c} = ?"))
    }

    fn data_session(&self) -> Option<&'static str> {
        Some(super::data::DATA_SESSION)
    }

    fn native_backup_in_snapshot(&self) -> bool {
        true
    }

    fn native_backup<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        conn: &'a mut AnyConnection,
        dest: &'a Path,
    ) -> Option<BoxFuture<'a, Result<Option<Duration>>>> {
        if tenant.strategy != Strategy::Database {
            return None;
        }
        Some(
            async move {
                let slug = tenant.slug.as_str();
                let url = engine::url_with(place.url()?, Some(tenant.storage.as_str()), None)?;
                let ledger = SqlName::new("table", crate::migrate::ledger::TABLE)?;
                let mut lock = connect_as_admin(place, slug, &url).await?;
                let held = async {
                    super::backup::lock_tables(&mut lock)
                        .await
                        .map_err(Error::tool(slug))?;
                    let locked_at = Instant::now();
                    // The snapshot of `conn`'s transaction, which the manifest is read in,
                    // starts at its first read: now, while nothing can write.
                    let sql = format!("SELECT COUNT(*) FROM {}", Engine::Mysql.quote(&ledger));
                    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(Error::storage(slug, "start its backup's snapshot"))?;
                    let connect = place.timeouts().connect;
                    super::backup::dump(&url, connect, &tenant.storage, dest, &mut lock, locked_at)
                        .await
                        .map_err(Error::tool(slug))
                }
                .await;
                // Closing the session ends its lock, whatever happened.
                let _ = sqlx::Connection::close(lock).await;
                held.map(Some)
            }
            .boxed(),
        )
    }

    fn native_restore_into_fresh_storage(&self) -> bool {
        true
    }

    fn native_restore<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        file: &'a Path,
    ) -> Option<BoxFuture<'a, Result<()>>> {
        if tenant.strategy != Strategy::Database {
            return None;
        }
        Some(
            async move {
                let url = engine::url_with(place.url()?, Some(tenant.storage.as_str()), None)?;
                super::backup::restore(&url, place.timeouts().connect, &tenant.storage, file)
                    .await
                    .map_err(Error::tool(tenant.slug.as_str()))
            }
            .boxed(),
        )
    }

    fn transactional_ddl(&self) -> bool {
        false
    }

    fn hash_comments(&self) -> bool {
        true
    }

    fn strategies(&self) -> &'static [Strategy] {
        &[Strategy::Database]
    }

    fn offers(&self) -> &'static str {
        "MySQL/MariaDB servers support: database; schema and shared need a PostgreSQL server"
    }

    fn has_logins(&self) -> bool {
        true
    }

    fn catalog_url(&self, url: &str, _create: bool) -> Result<String> {
        Ok(engine::driver_url(url).into_owned())
    }

    fn catalog_setup(&self) -> Option<&'static str> {
        None
    }

    fn catalog_table_options(&self) -> &'static str {
        " DEFAULT CHARSET=utf8mb4"
    }

    fn catalog_index(&self, name: &str, table: &str, columns: &str) -> String {
        // No IF NOT EXISTS here: an existing index is recognised by its error.
        format!("CREATE INDEX {name} ON {table} ({columns})")
    }

    fn is_duplicate_index(&self, e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(DUPLICATE_INDEX))
    }

    fn catalog_lock(&self) -> Option<CatalogLock> {
        Some(CatalogLock {
            take: "SELECT CAST(GET_LOCK(CAST(? AS CHAR), ?) AS SIGNED)",
            release: "SELECT RELEASE_LOCK(CAST(? AS CHAR))",
            bounded: true,
        })
    }

    fn set_statement_timeout<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        limit: Duration,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        super::set_statement_timeout(conn, limit).boxed()
    }

    fn prepare_admin<'a>(&'a self, _conn: &'a mut AnyConnection) -> BoxFuture<'a, ()> {
        async {}.boxed()
    }

    fn lock_name(&self, t: &Tenantry, unit: &str, _file: &std::path::Path) -> Result<LockName> {
        let secret = t.lock_secret(unit)?;
        // Lock names are at most 64 characters.
        Ok(LockName(format!(
            "tenantry:{}",
            secret.get(..40).unwrap_or(&secret)
        )))
    }

    fn try_lock<'a>(
        &'a self,
        owner: &'a str,
        conn: &'a mut AnyConnection,
        name: &'a LockName,
    ) -> BoxFuture<'a, Result<Option<HeldLock>>> {
        async move {
            let taken = super::try_lock(conn, &name.0)
                .await
                .map_err(Error::storage(owner, "take its lock"))?;
            Ok(taken.then(|| HeldLock {
                name: name.clone(),
                file: None,
            }))
        }
        .boxed()
    }

    fn unlock<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        held: HeldLock,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        async move { super::unlock(conn, &held.name.0).await }.boxed()
    }

    fn provision_database<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let slug = tenant.slug.as_str();
            let mut admin = place.admin_at(None).await?;
            let (role, password) = t.issue_credentials(tenant).await?;
            super::create_database(&mut admin, &tenant.storage)
                .await
                .map_err(Error::storage(slug, "create its database"))?;
            super::ensure_user(&mut admin, &role, &password, &tenant.storage)
                .await
                .map_err(Error::storage(slug, "create its user"))
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
            let slug = tenant.slug.to_string();
            let url = engine::url_with(place.url()?, Some(tenant.storage.as_str()), None)?;
            let conn = connect_as_admin(place, &slug, &url).await?;
            Ok(MigrationTarget {
                owner: slug,
                engine: Engine::Mysql,
                conn,
                lock: LockSpec::for_unit(t, Engine::Mysql, &format!("tenant:{}", tenant.id))?,
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
            let slug = tenant.slug.as_str();
            let mut admin = place.admin_at(None).await?;
            super::drop_database(&mut admin, &tenant.storage)
                .await
                .map_err(Error::storage(slug, "drop its database"))?;
            super::drop_user(&mut admin, &tenant.id.role_name())
                .await
                .map_err(Error::storage(slug, "drop its user"))
        }
        .boxed()
    }

    fn leftovers<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let mut admin = place.admin_at(None).await?;
            sqlx::query_scalar(
                "SELECT CAST(CONCAT('database ', schema_name) AS CHAR) FROM information_schema.schemata \
                 WHERE schema_name = ? \
                 UNION ALL SELECT CAST(CONCAT('user ', user) AS CHAR) FROM mysql.user WHERE user = ?",
            )
            .bind(tenant.storage.as_str())
            .bind(tenant.id.role_name().as_str())
            .fetch_all(&mut admin)
            .await
            .map_err(Error::storage(tenant.slug.as_str(), "look for what is left of it"))
        }
        .boxed()
    }

    fn database_exists<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            let mut admin = place.admin_at(None).await?;
            super::database_exists(&mut admin, &tenant.storage)
                .await
                .map_err(Error::storage(tenant.slug.as_str(), "look up its database"))
        }
        .boxed()
    }

    fn set_database_access<'a>(
        &'a self,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let slug = tenant.slug.as_str();
            let role = tenant.id.role_name();
            let mut admin = place.admin_at(None).await?;
            let action = if allow {
                "unlock its account"
            } else {
                "lock its account"
            };
            super::set_login(&mut admin, &role, allow)
                .await
                .map_err(Error::storage(slug, action))?;
            if !allow {
                super::terminate_role(&mut admin, &role)
                    .await
                    .map_err(Error::storage(slug, "end its sessions"))?;
            }
            Ok(())
        }
        .boxed()
    }
}
