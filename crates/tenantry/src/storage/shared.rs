//! The shared strategy (PostgreSQL): tenants of a server's shared pool live in the same
//! tables of schema `tenantry_shared`, each row carrying its tenant's id. Row-level security
//! admits only the rows of the tenant named by the connection's tenant context, and that
//! context cannot be forged from SQL:
//!
//! - the runtime sets `tenantry.tenant` to `<tenant id>:<HMAC-SHA256(key, tenant id)>`;
//! - every policy compares the tenant column with `tenantry_private.current_tenant()`, a
//!   `SECURITY DEFINER` function that returns the id only if the HMAC verifies, under a key
//!   kept in `tenantry_private.context_key`, which the runtime role cannot read;
//! - no context, or a wrong one, yields NULL: no row is visible or writable (fail closed).
//!
//! The runtime role owns nothing, has no `BYPASSRLS`, and is a member of no role.

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
use ulid::Ulid;

use super::{Hook, HookError, LockSpec, MigrationTarget, Place};
use crate::Tenantry;
use crate::catalog::{SharedPool, Tenant};
use crate::crypto::{self, Password};
use crate::engine::{Engine, postgres};
use crate::error::{Error, Result};
use crate::ident::{RoleName, ServerName, SqlName};
use crate::migrate::ledger;

/// The schema holding the shared tables.
pub const SHARED_SCHEMA: &str = "tenantry_shared";
/// The schema holding the context key and verifier, closed to the runtime role.
pub const PRIVATE_SCHEMA: &str = "tenantry_private";
/// The setting that carries the tenant context.
pub const CONTEXT_SETTING: &str = "tenantry.tenant";
/// The policy Tenantry puts on every shared table.
const POLICY: &str = "tenantry_tenant_isolation";

/// What the row-level-security hook enforces after each shared migration.
#[derive(Debug, Clone)]
pub struct RlsPolicy {
    pub server: String,
    pub role: RoleName,
    pub column: SqlName,
    pub globals: Vec<SqlName>,
}

fn shared_schema() -> SqlName {
    SqlName::new("schema", SHARED_SCHEMA).unwrap_or_else(|_| unreachable!("constant is valid"))
}

/// The tables of the shared schema (without the ledger), and whether each has the column.
async fn tables(conn: &mut AnyConnection, column: &str) -> sqlx::Result<Vec<(String, bool)>> {
    let rows = sqlx::query(
        "SELECT t.table_name::text AS name, \
         EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = t.table_schema \
                 AND c.table_name = t.table_name AND c.column_name = $1) AS has_column \
         FROM information_schema.tables t \
         WHERE t.table_schema = $2 AND t.table_type = 'BASE TABLE' AND t.table_name <> $3 \
         ORDER BY 1",
    )
    .bind(column)
    .bind(SHARED_SCHEMA)
    .bind(ledger::TABLE)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("has_column")?)))
        .collect()
}

impl RlsPolicy {
    /// Enables and forces row-level security with Tenantry's policy on every table that has
    /// the tenant column, grants the runtime role row access to them (read-only access to
    /// declared global tables), and refuses any other table.
    pub async fn enforce(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        let pg = Engine::Postgres;
        let schema = pg.quote(&shared_schema());
        let role = pg.quote(&self.role);
        let column = pg.quote(&self.column);
        let found = tables(conn, self.column.as_str())
            .await
            .map_err(HookError::Sql)?;
        let mut sql = format!("GRANT USAGE ON SCHEMA {schema} TO {role};\n");
        for (name, has_column) in found {
            let table = SqlName::new("shared table", &name).map_err(HookError::Refused)?;
            let qualified = format!("{schema}.{}", pg.quote(&table));
            if self.globals.contains(&table) {
                sql.push_str(&format!("GRANT SELECT ON {qualified} TO {role};\n"));
                continue;
            }
            if !has_column {
                return Err(HookError::Refused(Error::UnprotectedTable {
                    server: self.server.clone(),
                    table: name,
                    column: self.column.to_string(),
                }));
            }
            let check = format!("({column})::text = (SELECT {PRIVATE_SCHEMA}.current_tenant())");
            sql.push_str(&format!(
                "ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY;\n\
                 ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY;\n\
                 DROP POLICY IF EXISTS {POLICY} ON {qualified};\n\
                 CREATE POLICY {POLICY} ON {qualified} FOR ALL USING ({check}) WITH CHECK ({check});\n\
                 GRANT SELECT, INSERT, UPDATE, DELETE ON {qualified} TO {role};\n"
            ));
        }
        sql.push_str(&format!(
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};\n\
             REVOKE ALL ON TABLE {schema}.{} FROM {role};\n",
            pg.quote(&SqlName::new("table", ledger::TABLE).map_err(HookError::Refused)?)
        ));
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(conn)
            .await
            .map_err(HookError::Sql)?;
        Ok(())
    }
}

/// The server's shared pool, created (catalog row, key, runtime role, schemas) on first use.
pub(crate) async fn ensure_pool(t: &Tenantry, place: &Place) -> Result<SharedPool> {
    let Place::Server { name, .. } = place else {
        return Err(Error::StrategyUnsupported {
            strategy: "shared".into(),
            engine: "sqlite".into(),
            server: place_name(place),
            supported: "the shared strategy needs a PostgreSQL server",
        });
    };
    if let Some(pool) = t.catalog.shared_pool(name).await? {
        return Ok(pool);
    }
    let key = t.master_key()?;
    let id = Ulid::new();
    let password = Password::generate();
    let context_key = crypto::random_key();
    let fresh = SharedPool {
        id,
        server: ServerName::new(name)?,
        role: RoleName::for_pool(id),
        role_secret: key.seal(password.as_str()),
        context_key: key.seal(&hex::encode(context_key)),
        version: 0,
        last_error: None,
    };
    let pool = t.catalog.insert_shared_pool(&fresh).await?;
    setup(t, place, &pool).await?;
    Ok(pool)
}

fn place_name(place: &Place) -> String {
    match place {
        Place::SqliteDir(dir) => dir.display().to_string(),
        Place::Server { name, .. } => name.clone(),
    }
}

/// The pool's decrypted context key.
pub(crate) fn context_key(t: &Tenantry, pool: &SharedPool) -> Result<Vec<u8>> {
    let what = format!("the shared pool on {}", pool.server);
    let hex_key = t.master_key()?.open(&pool.context_key, &what)?;
    hex::decode(hex_key).map_err(|_| Error::CorruptCatalog {
        field: "pools.context_key",
        value: "(sealed)".into(),
    })
}

/// The context value that admits `tenant`'s rows.
pub(crate) fn context_token(key: &[u8], tenant: &Tenant) -> String {
    let id = tenant.id.to_string();
    format!("{id}:{}", crypto::hmac_hex(key, &id))
}

/// Creates or refreshes, idempotently and under the pool's lock, everything the pool needs
/// on the server: the private schema with the key and verifier, the runtime role, the shared
/// schema.
async fn setup(t: &Tenantry, place: &Place, pool: &SharedPool) -> Result<()> {
    let owner = format!("shared pool on {}", pool.server);
    let storage = |action| Error::storage(&owner, action);
    let key = t.master_key()?;
    let password = Password::parse(key.open(&pool.role_secret, &owner)?).ok_or_else(|| {
        Error::CorruptCatalog {
            field: "pools.role_secret",
            value: "(sealed)".into(),
        }
    })?;
    let context: [u8; 32] =
        context_key(t, pool)?
            .try_into()
            .map_err(|_| Error::CorruptCatalog {
                field: "pools.context_key",
                value: "(sealed)".into(),
            })?;
    let (ipad, opad) = crypto::hmac_pads(&context);
    let pg = Engine::Postgres;
    let role = pg.quote(&pool.role);
    let pool_id = pool.id.to_string();

    let mut admin = place.admin_at(None).await?;
    let mut tx = admin.begin().await.map_err(storage("begin setup"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(pool_lock_key(pool) ^ 1)
        .execute(&mut *tx)
        .await
        .map_err(storage("lock the pool"))?;
    let private = format!(
        "CREATE SCHEMA IF NOT EXISTS {PRIVATE_SCHEMA};
         REVOKE ALL ON SCHEMA {PRIVATE_SCHEMA} FROM PUBLIC;
         CREATE TABLE IF NOT EXISTS {PRIVATE_SCHEMA}.context_key (
             pool   VARCHAR(26) PRIMARY KEY,
             k_ipad BYTEA NOT NULL,
             k_opad BYTEA NOT NULL
         );
         REVOKE ALL ON {PRIVATE_SCHEMA}.context_key FROM PUBLIC;
         CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA};
         REVOKE ALL ON SCHEMA {SHARED_SCHEMA} FROM PUBLIC;"
    );
    sqlx::raw_sql(AssertSqlSafe(private))
        .execute(&mut *tx)
        .await
        .map_err(storage("create the private schema"))?;
    sqlx::query(
        "INSERT INTO tenantry_private.context_key (pool, k_ipad, k_opad) VALUES ($1, $2, $3) \
         ON CONFLICT (pool) DO UPDATE SET k_ipad = EXCLUDED.k_ipad, k_opad = EXCLUDED.k_opad",
    )
    .bind(&pool_id)
    .bind(ipad)
    .bind(opad)
    .execute(&mut *tx)
    .await
    .map_err(storage("store the context key"))?;
    // A context verifies under any pool key stored here, so catalogs that share a server
    // database do not lock each other out; tenant ids are unique, so a context still admits
    // one tenant's rows only.
    let verifier = format!(
        "CREATE OR REPLACE FUNCTION {PRIVATE_SCHEMA}.current_tenant() RETURNS text
         LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
           SELECT split_part(s.v, ':', 1)
           FROM (SELECT current_setting('{CONTEXT_SETTING}', true) AS v) AS s
           WHERE s.v IS NOT NULL AND s.v <> '' AND EXISTS (
             SELECT 1 FROM {PRIVATE_SCHEMA}.context_key AS k
             WHERE encode(sha256(k.k_opad || sha256(k.k_ipad
                     || convert_to(split_part(s.v, ':', 1), 'UTF8'))), 'hex') = split_part(s.v, ':', 2))
         $fn$;
         REVOKE ALL ON FUNCTION {PRIVATE_SCHEMA}.current_tenant() FROM PUBLIC;"
    );
    sqlx::raw_sql(AssertSqlSafe(verifier))
        .execute(&mut *tx)
        .await
        .map_err(storage("create the context verifier"))?;
    postgres::ensure_role(&mut tx, &pool.role, &password, Some(&shared_schema()))
        .await
        .map_err(storage("create the pool's runtime role"))?;
    let grants = format!(
        "GRANT USAGE ON SCHEMA {PRIVATE_SCHEMA} TO {role};
         GRANT EXECUTE ON FUNCTION {PRIVATE_SCHEMA}.current_tenant() TO {role};
         GRANT USAGE ON SCHEMA {SHARED_SCHEMA} TO {role};"
    );
    sqlx::raw_sql(AssertSqlSafe(grants))
        .execute(&mut *tx)
        .await
        .map_err(storage("grant the pool's runtime role"))?;
    tx.commit().await.map_err(storage("commit setup"))
}

/// The pool's migration lock key (its setup uses this key with the last bit flipped, so a
/// setup never waits for a whole migration run).
fn pool_lock_key(pool: &SharedPool) -> i64 {
    (pool.id.0 as u64) as i64
}

pub(crate) fn policy(t: &Tenantry, pool: &SharedPool) -> Result<RlsPolicy> {
    Ok(RlsPolicy {
        server: pool.server.to_string(),
        role: pool.role.clone(),
        column: SqlName::new("tenant column", &t.config.tenant_column)?,
        globals: t
            .config
            .shared_global_tables
            .iter()
            .map(|g| SqlName::new("global table", g))
            .collect::<Result<_>>()?,
    })
}

pub(super) async fn target(
    t: &Tenantry,
    place: &Place,
    pool: &SharedPool,
) -> Result<MigrationTarget> {
    setup(t, place, pool).await?;
    let owner = format!("shared pool on {}", pool.server);
    let mut conn = place.admin_at(None).await?;
    postgres::set_search_path(&mut conn, &shared_schema())
        .await
        .map_err(Error::storage(&owner, "enter the shared schema"))?;
    Ok(MigrationTarget {
        owner,
        engine: Engine::Postgres,
        conn,
        lock: LockSpec::Advisory(pool_lock_key(pool)),
        hook: Hook::SharedRls(policy(t, pool)?),
    })
}

/// The shared tables that carry the tenant column.
async fn tenant_tables(
    t: &Tenantry,
    conn: &mut AnyConnection,
    owner: &str,
) -> Result<Vec<SqlName>> {
    let column = &t.config.tenant_column;
    tables(conn, column)
        .await
        .map_err(Error::storage(owner, "list the shared tables"))?
        .into_iter()
        .filter(|(_, has)| *has)
        .map(|(name, _)| SqlName::new("shared table", &name))
        .collect()
}

/// Sets the tenant context for the rest of the transaction on `conn`.
pub(crate) async fn set_context(conn: &mut AnyConnection, token: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(CONTEXT_SETTING)
        .bind(token)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a row-level operation on one shared tenant needs: an admin connection, the tenant's
/// context, and its tables (qualified) with the quoted tenant column.
struct RowScope {
    admin: AnyConnection,
    token: String,
    tables: Vec<(SqlName, String)>,
    column: String,
}

async fn row_scope(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<Option<RowScope>> {
    let Some(pool) = t.catalog.shared_pool(tenant.server.as_str()).await? else {
        return Ok(None);
    };
    let token = context_token(&context_key(t, &pool)?, tenant);
    let mut admin = place.admin_at(None).await?;
    let pg = Engine::Postgres;
    let tables = tenant_tables(t, &mut admin, tenant.slug.as_str())
        .await?
        .into_iter()
        .map(|table| {
            let qualified = format!("{}.{}", pg.quote(&shared_schema()), pg.quote(&table));
            (table, qualified)
        })
        .collect();
    let column = pg.quote(&SqlName::new("tenant column", &t.config.tenant_column)?);
    Ok(Some(RowScope {
        admin,
        token,
        tables,
        column,
    }))
}

async fn count_rows(
    conn: &mut AnyConnection,
    qualified: &str,
    column: &str,
    tenant: &Tenant,
) -> Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {qualified} WHERE ({column})::text = $1"
    )))
    .bind(tenant.id.to_string())
    .fetch_one(conn)
    .await
    .map_err(Error::storage(tenant.slug.as_str(), "count its rows"))
}

/// Deletes the tenant's rows from every shared table in one transaction, and proves none
/// are left before committing. Runs under the tenant's own context, so it holds whether or
/// not the administrator is subject to row-level security.
pub(super) async fn delete_rows(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let Some(mut scope) = row_scope(t, place, tenant).await? else {
        return Ok(());
    };
    let mut tx = scope
        .admin
        .begin()
        .await
        .map_err(Error::storage(slug, "begin deletion"))?;
    set_context(&mut tx, &scope.token)
        .await
        .map_err(Error::storage(slug, "set its context"))?;
    for (table, qualified) in &scope.tables {
        let column = &scope.column;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {qualified} WHERE ({column})::text = $1"
        )))
        .bind(tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::storage(slug, "delete its rows"))?;
        let left = count_rows(&mut tx, qualified, column, tenant).await?;
        if left != 0 {
            return Err(Error::VerifyFailed {
                tenant: slug.to_owned(),
                detail: format!("{left} row(s) left in {table} after deleting them"),
            });
        }
    }
    tx.commit()
        .await
        .map_err(Error::storage(slug, "commit deletion"))
}

/// Whether any shared table still holds a row of the tenant.
pub(super) async fn has_rows(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<bool> {
    let slug = tenant.slug.as_str();
    let Some(mut scope) = row_scope(t, place, tenant).await? else {
        return Ok(false);
    };
    let mut tx = scope
        .admin
        .begin()
        .await
        .map_err(Error::storage(slug, "begin a count"))?;
    set_context(&mut tx, &scope.token)
        .await
        .map_err(Error::storage(slug, "set its context"))?;
    for (_, qualified) in &scope.tables {
        if count_rows(&mut tx, qualified, &scope.column, tenant).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes a server's shared pool: its tables (with any rows left), its key, its role and its
/// catalog row. Refused while the server has shared tenants that are not deleted.
pub(crate) async fn drop_pool(t: &Tenantry, place: &Place, pool: &SharedPool) -> Result<()> {
    let owner = format!("shared pool on {}", pool.server);
    let mut admin = place.admin_at(None).await?;
    // Other catalogs may keep pools in the same database: the tables go only with the last key.
    let sql = format!(
        "DO $$ BEGIN
           IF to_regclass('{PRIVATE_SCHEMA}.context_key') IS NOT NULL THEN
             DELETE FROM {PRIVATE_SCHEMA}.context_key WHERE pool = '{}';
             IF NOT EXISTS (SELECT 1 FROM {PRIVATE_SCHEMA}.context_key) THEN
               DROP SCHEMA IF EXISTS {SHARED_SCHEMA} CASCADE;
             END IF;
           ELSE
             DROP SCHEMA IF EXISTS {SHARED_SCHEMA} CASCADE;
           END IF;
         END $$;",
        pool.id
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .map_err(Error::storage(&owner, "drop its tables"))?;
    postgres::drop_role(&mut admin, &pool.role)
        .await
        .map_err(Error::storage(&owner, "drop its role"))?;
    t.catalog.delete_shared_pool(pool.id).await
}
