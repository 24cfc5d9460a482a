//! PostgreSQL's [`Dialect`]: a tenant's own database with a login role of its own, advisory
//! locks keyed by the master key.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::Tenantry;
use crate::catalog::{Strategy, Tenant};
use crate::engine::dialect::{CatalogLock, Dialect, HeldLock, LockName};
use crate::engine::shape::Shape;
use crate::engine::value::{Class, ColumnSpec, Neutral};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::ident::{SqlName, StorageName};
use crate::storage::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};

/// PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

/// The advisory-lock key a lock name stands for.
fn key(name: &LockName) -> i64 {
    super::advisory_key(&name.0)
}

impl Dialect for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn quote_char(&self) -> char {
        '"'
    }

    fn numbered_placeholders(&self) -> bool {
        true
    }

    fn list_tables_sql(&self) -> &'static str {
        super::LIST_TABLES
    }

    /// Through `pg_class`'s index on (name, namespace): its cost does not grow with the
    /// relations the server holds, unlike `information_schema.tables`, which reads them all.
    fn present_tables<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        names: &'a [String],
    ) -> BoxFuture<'a, sqlx::Result<BTreeSet<String>>> {
        async move {
            if names.is_empty() {
                return Ok(BTreeSet::new());
            }
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT relname::text AS name FROM pg_catalog.pg_class \
                 WHERE relnamespace = current_schema()::regnamespace \
                 AND relkind IN ('r', 'p') AND relname IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for name in names {
                query = query.bind(name.as_str());
            }
            let rows = query.fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|row| row.try_get::<String, _>("name"))
                .collect()
        }
        .boxed()
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
        super::data::delete_rows(conn, rows, tenant)
    }

    fn delete_all<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
        tenant: Option<(&'a SqlName, &'a str)>,
    ) -> BoxFuture<'a, sqlx::Result<u64>> {
        crate::engine::rows::delete_all(Engine::Postgres, conn, table, tenant, |c| {
            format!("CAST({c} AS text) = ?")
        })
    }

    fn snapshot(&self) -> Option<&'static str> {
        Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    }

    fn continue_identities<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        table: &'a SqlName,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        super::data::continue_identities(conn, table)
    }

    fn keep_session<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, ()> {
        async move {
            if let Err(e) = sqlx::raw_sql("SET idle_session_timeout = 0")
                .execute(conn)
                .await
            {
                tracing::warn!(error = %e, "could not keep an operation's session open");
            }
        }
        .boxed()
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
        if !dumps(tenant.strategy) {
            return None;
        }
        Some(
            async move {
                let slug = tenant.slug.as_str();
                if let (Strategy::Schema, Some(role)) = (tenant.strategy, &tenant.role) {
                    // Large objects belong to the database, not to a schema: a schema's
                    // dump would leave them out.
                    let owned: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_largeobject_metadata m \
                         JOIN pg_roles r ON r.oid = m.lomowner WHERE r.rolname = $1",
                    )
                    .bind(role.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(Error::storage(slug, "count its large objects"))?;
                    if owned > 0 {
                        return Err(Error::ArchiveRefused {
                            path: dest.to_owned(),
                            detail: format!(
                                "tenant {slug} owns {owned} large objects, which a schema's pg_dump leaves out: move it to a database of its own (tenant move --strategy database) to back them up"
                            ),
                        });
                    }
                }
                let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(Error::storage(slug, "export its snapshot"))?;
                let (url, schema) = dumped(place, tenant)?;
                super::backup::dump(&url, place.timeouts().connect, &snapshot, schema, dest)
                    .await
                    .map_err(Error::tool(slug))?;
                // The snapshot was exported: the tenant's writes never waited.
                Ok(None)
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
        if !dumps(tenant.strategy) {
            return None;
        }
        Some(
            async move {
                let (url, schema) = dumped(place, tenant)?;
                super::backup::restore(&url, place.timeouts().connect, file, schema.is_some())
                    .await
                    .map_err(Error::tool(tenant.slug.as_str()))
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
        &Strategy::ALL
    }

    fn offers(&self) -> &'static str {
        "PostgreSQL servers support: database, schema, shared"
    }

    fn has_logins(&self) -> bool {
        true
    }

    fn catalog_url(&self, url: &str, _create: bool) -> Result<String> {
        Ok(url.to_owned())
    }

    fn catalog_setup(&self) -> Option<&'static str> {
        None
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
        Some(CatalogLock {
            take: "SELECT 1::int8 FROM (SELECT pg_advisory_lock($1)) AS l",
            release: "SELECT pg_advisory_unlock($1)",
            bounded: false,
        })
    }

    fn set_statement_timeout<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        limit: Duration,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        super::set_statement_timeout(conn, limit).boxed()
    }

    fn prepare_admin<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, ()> {
        super::watch_client(conn).boxed()
    }

    fn reset_admin<'a>(&'a self, conn: &'a mut AnyConnection) -> BoxFuture<'a, sqlx::Result<bool>> {
        super::reset_session(conn).map(|r| r.map(|()| true)).boxed()
    }

    fn lock_name(&self, t: &Tenantry, unit: &str, _file: &std::path::Path) -> Result<LockName> {
        Ok(LockName(t.lock_secret(unit)?))
    }

    fn try_lock<'a>(
        &'a self,
        owner: &'a str,
        conn: &'a mut AnyConnection,
        name: &'a LockName,
    ) -> BoxFuture<'a, Result<Option<HeldLock>>> {
        async move {
            let taken = super::try_lock(conn, key(name))
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
        async move { super::unlock(conn, key(&held.name)).await }.boxed()
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
            super::ensure_role(&mut admin, &role, &password, None)
                .await
                .map_err(Error::storage(slug, "create its role"))?;
            super::grant_database(&mut admin, &tenant.storage, &role)
                .await
                .map_err(Error::storage(slug, "grant its role its database"))
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
            let hook = match &tenant.role {
                Some(role) => Hook::Grant {
                    schema: SqlName::new("schema", "public")?,
                    role: role.clone(),
                },
                None => Hook::None,
            };
            Ok(MigrationTarget {
                owner: slug,
                engine: Engine::Postgres,
                conn,
                lock: LockSpec::for_unit(t, Engine::Postgres, &format!("tenant:{}", tenant.id))?,
                hook,
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
            super::drop_role(&mut admin, &tenant.id.role_name())
                .await
                .map_err(Error::storage(slug, "drop its role"))
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
                "SELECT 'database ' || datname FROM pg_database WHERE datname = $1 \
                 UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname = $1 \
                 UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname = $2 \
                 UNION ALL SELECT 'large object ' || m.oid::text FROM pg_largeobject_metadata m \
                   JOIN pg_roles r ON r.oid = m.lomowner WHERE r.rolname = $2",
            )
            .bind(tenant.storage.as_str())
            .bind(tenant.id.role_name().as_str())
            .fetch_all(&mut admin)
            .await
            .map_err(Error::storage(
                tenant.slug.as_str(),
                "look for what is left of it",
            ))
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
        async move { super::set_role_access(place, tenant, allow).await }.boxed()
    }
}

/// Whether a tenant of `strategy` has native backups: its own database or schema does.
fn dumps(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::Database | Strategy::Schema)
}

/// Where a tenant's native backup is dumped from and restored to: its own database, or its
/// schema in the server's database.
fn dumped<'a>(place: &Place, tenant: &'a Tenant) -> Result<(String, Option<&'a StorageName>)> {
    match tenant.strategy {
        Strategy::Schema => Ok((place.url()?.to_owned(), Some(&tenant.storage))),
        _ => Ok((
            engine::url_with(place.url()?, Some(tenant.storage.as_str()), None)?,
            None,
        )),
    }
}
