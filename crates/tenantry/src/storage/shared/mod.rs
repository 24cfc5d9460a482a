//! The shared strategy (PostgreSQL): tenants of a server's shared pool live in the same
//! tables, each row carrying its tenant's id, in a database Tenantry creates for the pool
//! alone (`tenantry_pool_<pool id>`). Row-level security admits only the rows of the tenant
//! named by the connection's tenant context, and that context cannot be forged from SQL:
//!
//! - the runtime sets `tenantry.tenant` to `<tenant id>:<HMAC-SHA256(key, tenant id)>`;
//! - every policy compares the tenant column with `tenantry_private.current_tenant()`, a
//!   `SECURITY DEFINER` function that returns the id only if the HMAC verifies under the
//!   pool's key (kept in `tenantry_private`, which the runtime role cannot read) **and** the
//!   tenant is admitted (listed in `tenantry_private.admitted`: active, not suspended or
//!   deleted);
//! - no context, or a wrong or revoked one, yields NULL: no row is visible or writable.
//!
//! Because the database is the pool's own, what a tenant's SQL must not reach is revoked
//! there from `PUBLIC` without touching any other database: large objects, advisory locks,
//! other sessions' activity and signalling other backends ([`access`]). The runtime role
//! owns nothing, has no `BYPASSRLS`, is a member of no role, and may only connect.

mod access;
mod rls;
mod rows;

pub use access::ROLE_SETTINGS;
pub(crate) use access::{admit, check_role_settings, enter_sql, is_admitted, restore_role, revoke};
pub use rls::RlsPolicy;
use rows::{delete_rows, has_rows};
pub(crate) use rows::{enter_rows, leave_rows};

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use ulid::Ulid;

use super::strategy::StrategyOps;

use super::{Hook, LockSpec, MigrationTarget, Place};
use crate::Tenantry;
use crate::catalog::{SharedPool, Tenant};
use crate::crypto::{self, Password};
use crate::engine::{Engine, postgres};
use crate::error::{Error, Result};
use crate::ident::{ServerName, SqlName};

/// The schema holding the shared tables.
pub const SHARED_SCHEMA: &str = "tenantry_shared";
/// The schema holding the context key, the admitted tenants and the verifier, closed to the
/// runtime role.
pub const PRIVATE_SCHEMA: &str = "tenantry_private";
/// The setting that carries the tenant context.
pub const CONTEXT_SETTING: &str = "tenantry.tenant";
/// The first key of the transaction-level advisory lock that marks a unit of work as a
/// tenant's (the second is a hash of the tenant id): held by Tenantry's `SECURITY DEFINER`
/// function for the whole unit, it cannot be released or changed by the tenant's SQL, so
/// [`revoke`] finds the tenant's units in flight by it.
pub(crate) const UNIT_MARK: i32 = 0x7465;

fn constant_name(kind: &'static str, value: &str) -> SqlName {
    SqlName::new(kind, value).unwrap_or_else(|_| unreachable!("constant {value} is valid"))
}

pub(crate) fn shared_schema() -> SqlName {
    constant_name("schema", SHARED_SCHEMA)
}

/// The pool's own database on its server.
pub fn pool_database(pool: &SharedPool) -> SqlName {
    constant_name(
        "database",
        &format!("tenantry_pool_{}", pool.id.to_string().to_ascii_lowercase()),
    )
}

/// Who a pool is, in messages.
pub(crate) fn owner(pool: &SharedPool) -> String {
    format!("shared pool on {}", pool.server)
}

/// The server's shared pool: its catalog row (created on first use) and its objects on the
/// server, set up unless this process already completed that (`refresh` sets them up again
/// regardless: provisioning and repair), so a pool whose setup was interrupted is completed
/// by the next caller.
pub(crate) async fn ensure_pool(t: &Tenantry, place: &Place, refresh: bool) -> Result<SharedPool> {
    let Place::Server { name, .. } = place else {
        return Err(Error::StrategyUnsupported {
            strategy: "shared".into(),
            engine: "sqlite".into(),
            server: place.name(),
            supported: "the shared strategy needs a PostgreSQL server",
        });
    };
    let pool = match t.catalog.shared_pool(name).await? {
        Some(pool) => pool,
        None => {
            let key = t.sealing_key().await?;
            let id = Ulid::new();
            let fresh = SharedPool {
                id,
                server: ServerName::new(name)?,
                role: crate::ident::RoleName::for_pool(id),
                role_secret: key.seal(Password::generate().as_str()),
                context_key: key.seal(&hex::encode(crypto::random_key())),
                version: 0,
                last_error: None,
            };
            t.catalog.insert_shared_pool(&fresh).await?
        }
    };
    if refresh || !t.ready_pools.contains(pool.id) {
        setup(t, place, &pool).await?;
        t.ready_pools.insert(pool.id);
    }
    Ok(pool)
}

/// The shared pools whose setup completed in this process: later calls skip it. A pool whose
/// setup never completed (a row written, then a killed process) is never in it, so its next
/// caller, in any process, completes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadyPools(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<Ulid>>>);

impl ReadyPools {
    fn contains(&self, id: Ulid) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    fn insert(&self, id: Ulid) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    /// Forgets a pool (after it was dropped).
    pub(crate) fn remove(&self, id: Ulid) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// The pool's decrypted context key.
pub(crate) fn context_key(t: &Tenantry, pool: &SharedPool) -> Result<Vec<u8>> {
    let hex_key = t.open_sealed(&pool.context_key, &owner(pool))?;
    hex::decode(hex_key).map_err(|_| Error::CorruptCatalog {
        field: "pools.context_key",
        value: "(sealed)".into(),
    })
}

/// The context value that admits `tenant`'s rows: `<ULID>:<hex>`, nothing else, so it can
/// be written into SQL text as a literal.
pub(crate) fn context_token(key: &[u8], tenant: &Tenant) -> String {
    let id = tenant.id.to_string();
    format!("{id}:{}", crypto::hmac_hex(key, &id))
}

/// The pool role's password, from the catalog.
pub(crate) fn role_password(t: &Tenantry, pool: &SharedPool) -> Result<Password> {
    Password::parse(t.open_sealed(&pool.role_secret, &owner(pool))?).ok_or_else(|| {
        Error::CorruptCatalog {
            field: "pools.role_secret",
            value: "(sealed)".into(),
        }
    })
}

/// An administrative connection to the pool's own database.
pub(crate) async fn admin(place: &Place, pool: &SharedPool) -> Result<AnyConnection> {
    place.admin_at(Some(pool_database(pool).as_str())).await
}

/// Creates or completes, idempotently, everything the pool needs on the server: its
/// database, the runtime role (password and settings as the catalog says), the private
/// schema with the key, the admitted list and the verifier, the shared schema, and the
/// revocations. Serialised by a transaction-level lock in the pool's database.
async fn setup(t: &Tenantry, place: &Place, pool: &SharedPool) -> Result<()> {
    let owner = owner(pool);
    let storage = |action| Error::storage(&owner, action);
    let password = role_password(t, pool)?;
    let context: [u8; 32] =
        context_key(t, pool)?
            .try_into()
            .map_err(|_| Error::CorruptCatalog {
                field: "pools.context_key",
                value: "(sealed)".into(),
            })?;
    let (ipad, opad) = crypto::hmac_pads(&context);
    let database = pool_database(pool);
    {
        let mut server = place.admin_at(None).await?;
        postgres::create_database(&mut server, &database)
            .await
            .map_err(storage("create its database"))?;
    }
    let mut conn = admin(place, pool).await?;
    let mut tx = conn.begin().await.map_err(storage("begin setup"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(postgres::advisory_key(
            &t.lock_secret(&format!("pool-setup:{}", pool.id))?,
        ))
        .execute(&mut *tx)
        .await
        .map_err(storage("lock the pool"))?;
    let pg = Engine::Postgres;
    let role = pg.quote(&pool.role);
    let db = pg.quote(&database);
    postgres::ensure_role(&mut tx, &pool.role, &password, None)
        .await
        .map_err(storage("create the pool's runtime role"))?;
    access::reset_role_settings(&mut tx, &pool.role)
        .await
        .map_err(storage("set the runtime role's settings"))?;
    let objects = format!(
        "REVOKE ALL ON DATABASE {db} FROM PUBLIC;
         GRANT CONNECT ON DATABASE {db} TO {role};
         REVOKE ALL ON SCHEMA public FROM PUBLIC;
         CREATE SCHEMA IF NOT EXISTS {PRIVATE_SCHEMA};
         REVOKE ALL ON SCHEMA {PRIVATE_SCHEMA} FROM PUBLIC;
         CREATE TABLE IF NOT EXISTS {PRIVATE_SCHEMA}.context_key (
             pool   VARCHAR(26) PRIMARY KEY,
             k_ipad BYTEA NOT NULL,
             k_opad BYTEA NOT NULL
         );
         CREATE TABLE IF NOT EXISTS {PRIVATE_SCHEMA}.admitted (
             tenant VARCHAR(26) PRIMARY KEY
         );
         REVOKE ALL ON ALL TABLES IN SCHEMA {PRIVATE_SCHEMA} FROM PUBLIC;
         CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA};
         REVOKE ALL ON SCHEMA {SHARED_SCHEMA} FROM PUBLIC;"
    );
    sqlx::raw_sql(AssertSqlSafe(objects))
        .execute(&mut *tx)
        .await
        .map_err(storage("create the pool's schemas"))?;
    sqlx::query(
        "INSERT INTO tenantry_private.context_key (pool, k_ipad, k_opad) VALUES ($1, $2, $3) \
         ON CONFLICT (pool) DO UPDATE SET k_ipad = EXCLUDED.k_ipad, k_opad = EXCLUDED.k_opad",
    )
    .bind(pool.id.to_string())
    .bind(ipad)
    .bind(opad)
    .execute(&mut *tx)
    .await
    .map_err(storage("store the context key"))?;
    let verifier = format!(
        "CREATE OR REPLACE FUNCTION {PRIVATE_SCHEMA}.current_tenant() RETURNS text
         LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
           SELECT a.tenant
           FROM (SELECT current_setting('{CONTEXT_SETTING}', true) AS v) AS s,
                {PRIVATE_SCHEMA}.admitted AS a,
                {PRIVATE_SCHEMA}.context_key AS k
           WHERE s.v IS NOT NULL AND a.tenant = split_part(s.v, ':', 1)
             AND encode(sha256(k.k_opad || sha256(k.k_ipad || convert_to(a.tenant, 'UTF8'))),
                        'hex') = split_part(s.v, ':', 2)
           LIMIT 1
         $fn$;
         REVOKE ALL ON FUNCTION {PRIVATE_SCHEMA}.current_tenant() FROM PUBLIC;
         CREATE OR REPLACE FUNCTION {PRIVATE_SCHEMA}.mark_unit(tenant text) RETURNS boolean
         LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
           SELECT true FROM (SELECT pg_advisory_xact_lock_shared({UNIT_MARK}, hashtext(tenant))) AS l
         $fn$;
         REVOKE ALL ON FUNCTION {PRIVATE_SCHEMA}.mark_unit(text) FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION {PRIVATE_SCHEMA}.mark_unit(text) TO {role};
         GRANT USAGE ON SCHEMA {PRIVATE_SCHEMA} TO {role};
         GRANT EXECUTE ON FUNCTION {PRIVATE_SCHEMA}.current_tenant() TO {role};
         GRANT USAGE ON SCHEMA {SHARED_SCHEMA} TO {role};"
    );
    sqlx::raw_sql(AssertSqlSafe(verifier))
        .execute(&mut *tx)
        .await
        .map_err(storage("create the context verifier"))?;
    sqlx::raw_sql(access::REVOKE_SESSION_FUNCTIONS)
        .execute(&mut *tx)
        .await
        .map_err(storage("revoke session functions"))?;
    tx.commit().await.map_err(storage("commit setup"))
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

/// The pool's migration target: an administrative connection in its database, in the shared
/// schema, locked by a key no tenant can take (advisory locks are revoked there).
async fn target(t: &Tenantry, place: &Place, pool: &SharedPool) -> Result<MigrationTarget> {
    let owner = owner(pool);
    let mut conn = admin(place, pool).await?;
    postgres::set_search_path(&mut conn, &shared_schema())
        .await
        .map_err(Error::storage(&owner, "enter the shared schema"))?;
    Ok(MigrationTarget {
        owner,
        engine: Engine::Postgres,
        conn,
        lock: LockSpec::for_unit(t, Engine::Postgres, &format!("pool:{}", pool.id))?,
        hook: Hook::SharedRls(policy(t, pool)?),
        reuse: None,
    })
}

/// Removes a server's shared pool: its database (tables and rows with it), its role and its
/// catalog row.
pub(crate) async fn drop_pool(place: &Place, pool: &SharedPool) -> Result<()> {
    let owner = owner(pool);
    let mut admin = place.admin_at(None).await?;
    postgres::drop_database(&mut admin, &pool_database(pool))
        .await
        .map_err(Error::storage(&owner, "drop its database"))?;
    postgres::drop_role(&mut admin, &pool.role)
        .await
        .map_err(Error::storage(&owner, "drop its role"))
}

/// Rows in the server's shared pool, kept apart by row-level security.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shared;

impl StrategyOps for Shared {
    fn provision<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        _tenant: &'a Tenant,
        repair: bool,
    ) -> BoxFuture<'a, Result<()>> {
        // A repair sets the pool up again: its role's password and settings back to what the
        // catalog says.
        ensure_pool(t, place, repair).map(|r| r.map(drop)).boxed()
    }

    fn target<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        _tenant: &'a Tenant,
        _reused: Option<sqlx::AnyConnection>,
    ) -> BoxFuture<'a, Result<MigrationTarget>> {
        async move {
            let pool = ensure_pool(t, place, false).await?;
            target(t, place, &pool).await
        }
        .boxed()
    }

    fn drop<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            delete_rows(t, place, tenant).await?;
            // A tenant deleted with no row left was never shut out by its rows' removal:
            // its admission goes with it.
            if let Some(pool) = t.catalog.shared_pool(tenant.server.as_str()).await? {
                revoke(place, &pool, tenant).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn exists<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<bool>> {
        has_rows(t, place, tenant).boxed()
    }

    fn set_access<'a>(
        &'a self,
        t: &'a Tenantry,
        place: &'a Place,
        tenant: &'a Tenant,
        allow: bool,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let Some(pool) = t.catalog.shared_pool(tenant.server.as_str()).await? else {
                return Ok(());
            };
            if allow {
                admit(place, &pool, tenant).await
            } else {
                revoke(place, &pool, tenant).await
            }
        }
        .boxed()
    }

    fn login_database(&self, _tenant: &Tenant) -> Option<String> {
        None
    }

    fn pooled(&self) -> bool {
        true
    }
}
