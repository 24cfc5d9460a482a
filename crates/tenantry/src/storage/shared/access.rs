//! Who may use a shared pool, and what its runtime role may do.
//!
//! - **Admitted tenants.** A context verifies only for a tenant listed in
//!   `tenantry_private.admitted`: [`admit`] on activation and resume, [`revoke`] on suspend and
//!   delete (which also ends the tenant's units of work in flight). The verifier runs in
//!   every statement, so a revocation holds at once in every process.
//! - **Session functions.** In the pool's database, `PUBLIC` loses large objects, advisory
//!   locks, other sessions' activity and lock lists, and signalling other backends.
//! - **Role settings.** Every tenant's SQL runs as the one runtime role, which PostgreSQL lets
//!   change its own defaults and password. Tenantry pins the defaults it expects
//!   ([`ROLE_SETTINGS`]), checks them on every new connection ([`check_role_settings`]) and
//!   restores them and the sealed password ([`restore_role`]) before any connection is used.

use sqlx::{AnyConnection, AssertSqlSafe};

use super::{CONTEXT_SETTING, PRIVATE_SCHEMA, SHARED_SCHEMA, admin, owner};
use crate::catalog::{SharedPool, Tenant};
use crate::crypto::{self, Password};
use crate::engine::{Engine, postgres};
use crate::error::{Error, Result};
use crate::ident::RoleName;
use crate::storage::Place;

/// The runtime role's settings, exactly: its sessions record no query text for others to
/// read (a superuser-only setting the role cannot undo).
pub const ROLE_SETTINGS: &[&str] = &["track_activities=off"];

/// Revokes from `PUBLIC`, in the connected (pool's own) database, every function that would
/// let one tenant's session reach another's: large objects (not covered by row-level
/// security), advisory locks (Tenantry's own included), other sessions' activity, locks and
/// query text, cancelling or terminating other backends, and the statistics and sizes of the
/// shared tables (exact counts of every tenant's inserts and deletes).
pub(super) const REVOKE_SESSION_FUNCTIONS: &str = r"
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace AND (
      p.proname LIKE 'lo\_%' OR p.proname IN ('loread', 'lowrite')
      OR p.proname LIKE 'pg\_advisory\_%' OR p.proname LIKE 'pg\_try\_advisory\_%'
      OR p.proname LIKE 'pg\_stat\_get\_%'
      OR (p.proname LIKE 'pg\_%\_size' AND p.proname <> 'pg_column_size')
      OR p.proname IN ('pg_stat_get_activity', 'pg_lock_status', 'pg_blocking_pids',
                       'pg_safe_snapshot_blocking_pids', 'pg_terminate_backend',
                       'pg_cancel_backend', 'pg_notify', 'pg_listening_channels'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END $$;";

/// Sets the role's stored settings to exactly [`ROLE_SETTINGS`], in every database.
pub(super) async fn reset_role_settings(
    admin: &mut AnyConnection,
    role: &RoleName,
) -> sqlx::Result<()> {
    let quoted = Engine::Postgres.quote(role);
    let mut sql = String::from(
        "DO $$ DECLARE d text; BEGIN
           FOR d IN SELECT db.datname FROM pg_catalog.pg_db_role_setting s
                    JOIN pg_catalog.pg_database db ON db.oid = s.setdatabase
                    JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                    WHERE r.rolname = ",
    );
    sql.push_str(&format!("'{}'", role.as_str()));
    sql.push_str(&format!(
        " LOOP EXECUTE format('ALTER ROLE {quoted} IN DATABASE %I RESET ALL', d); END LOOP;
         END $$;
         ALTER ROLE {quoted} RESET ALL;\n"
    ));
    for setting in ROLE_SETTINGS {
        let (name, value) = setting.split_once('=').unwrap_or((setting, ""));
        sql.push_str(&format!("ALTER ROLE {quoted} SET {name} = {value};\n"));
    }
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// The one statement that enters a shared tenant's context for the rest of the transaction,
/// and says whether it verifies (`admitted`): the context, set transaction-locally, the
/// unit's `application_name` (by which [`revoke`] finds it) and its search path (so a unit
/// is complete even on a server connection a transaction-mode pooler lent it). Simple protocol, with the context
/// written as a literal, so no statement prepared on the connection can stand in for it; every
/// function is qualified.
pub(crate) fn enter_sql(token: &str, tenant: &Tenant) -> Result<String> {
    // A context is `<ULID>:<hex>`: nothing in it needs quoting.
    if !token.chars().all(|c| c.is_ascii_alphanumeric() || c == ':') {
        return Err(Error::CorruptCatalog {
            field: "pools.context_key",
            value: "(sealed)".into(),
        });
    }
    // A fresh seed: `DISCARD ALL` leaves the random generator as the previous unit left it.
    let seed = f64::from(crypto::random_u32()) / f64::from(u32::MAX) * 2.0 - 1.0;
    Ok(format!(
        "SELECT pg_catalog.set_config('{CONTEXT_SETTING}', '{token}', true), \
                pg_catalog.set_config('application_name', '{app}', true), \
                pg_catalog.set_config('search_path', '{SHARED_SCHEMA},pg_temp', true), \
                pg_catalog.setseed({seed:.9}), \
                {PRIVATE_SCHEMA}.mark_unit('{id}'), \
                {PRIVATE_SCHEMA}.current_tenant() IS NOT NULL AS admitted",
        app = application_name(tenant),
        id = tenant.id,
    ))
}

/// The `application_name` of a shared tenant's units of work, by which [`revoke`] finds
/// them.
pub(crate) fn application_name(tenant: &Tenant) -> String {
    format!("tenantry:{}", tenant.id)
}

/// On a runtime connection: whether the role's stored settings are still exactly
/// [`ROLE_SETTINGS`]. Reads only the server's catalog, fully qualified.
pub(crate) async fn check_role_settings(conn: &mut sqlx::PgConnection) -> sqlx::Result<bool> {
    use sqlx::Row;
    // Simple protocol, settings written as literals (Tenantry's own constants): a prepared
    // statement would collide, behind a transaction-mode pooler, with another client's of
    // the same name on the server connection it is lent.
    let expected = ROLE_SETTINGS
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s \
           WHERE s.setrole = (SELECT r.oid FROM pg_catalog.pg_roles r \
                              WHERE r.rolname = session_user) \
             AND NOT (s.setdatabase = 0 AND s.setconfig = ARRAY[{expected}]::text[])) \
         AND EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s \
           WHERE s.setrole = (SELECT r.oid FROM pg_catalog.pg_roles r \
                              WHERE r.rolname = session_user) \
             AND s.setdatabase = 0) AS intact"
    );
    let row = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_one(conn).await?;
    row.try_get("intact")
}

/// Puts the runtime role back as the catalog says: its sealed password and exactly its
/// settings. Used when a connection finds them changed (by a tenant's SQL: the role may
/// alter itself) and when a login fails.
pub(crate) async fn restore_role(
    place: &Place,
    pool: &SharedPool,
    password: &Password,
) -> Result<()> {
    let owner = owner(pool);
    let mut conn = admin(place, pool).await?;
    // A tenant may hold the role's row locked in a transaction it never ends (an uncommitted
    // ALTER ROLE): such a session is ended, and the restoration never waits long on a lock.
    sqlx::raw_sql("SET lock_timeout = '2s'")
        .execute(&mut conn)
        .await
        .map_err(Error::storage(&owner, "bound its lock waits"))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        postgres::end_sessions_altering_role(&mut conn, &pool.role)
            .await
            .map_err(Error::storage(&owner, "end the sessions altering its role"))?;
        let restored = async {
            postgres::ensure_role(&mut conn, &pool.role, password, None).await?;
            reset_role_settings(&mut conn, &pool.role).await
        }
        .await;
        match restored {
            Ok(()) => break,
            Err(e) if attempt < 3 && postgres::is_lock_timeout(&e) => continue,
            Err(e) => {
                return Err(Error::storage(&owner, "restore the runtime role")(e));
            }
        }
    }
    tracing::warn!(pool = %owner, "the runtime role's password or settings had been changed; restored");
    Ok(())
}

/// Lets the tenant's context verify from now on.
pub(crate) async fn admit(place: &Place, pool: &SharedPool, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let mut conn = admin(place, pool).await?;
    sqlx::query(
        "INSERT INTO tenantry_private.admitted (tenant) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.id.to_string())
    .execute(&mut conn)
    .await
    .map_err(Error::storage(slug, "admit it to its shared pool"))?;
    Ok(())
}

/// Whether the tenant is still listed as admitted to its pool.
pub(crate) async fn is_admitted(place: &Place, pool: &SharedPool, tenant: &Tenant) -> Result<bool> {
    let mut conn = admin(place, pool).await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM tenantry_private.admitted WHERE tenant = $1")
            .bind(tenant.id.to_string())
            .fetch_one(&mut conn)
            .await
            .map_err(Error::storage(
                tenant.slug.as_str(),
                "look up its admission",
            ))?;
    Ok(n > 0)
}

/// Stops the tenant's context from verifying, in every process at once, and ends the units
/// of work it has in flight (marked by their `application_name`).
pub(crate) async fn revoke(place: &Place, pool: &SharedPool, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let mut conn = admin(place, pool).await?;
    sqlx::query("DELETE FROM tenantry_private.admitted WHERE tenant = $1")
        .bind(tenant.id.to_string())
        .execute(&mut conn)
        .await
        .map_err(Error::storage(slug, "revoke it from its shared pool"))?;
    // Its units in flight: marked by a lock the tenant cannot drop (and by their
    // application name, which it could change). Swept until none is left, so that when
    // this returns no unit of the tenant can still commit (a move's final copy counts on it).
    for _ in 0..250 {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(l.pid)) FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.pid <> pg_backend_pid() \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid = $1::oid \
               AND l.objid = ((hashtext($2)::int8 + 4294967296) % 4294967296)::oid",
        )
        .bind(i64::from(super::UNIT_MARK))
        .bind(tenant.id.to_string())
        .fetch_one(&mut conn)
        .await
        .map_err(Error::storage(slug, "end its units of work"))?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    postgres::terminate_application(&mut conn, &application_name(tenant))
        .await
        .map_err(Error::storage(slug, "end its sessions"))?;
    Ok(())
}
