//! PostgreSQL: one database per tenant on a server, advisory locks per tenant.

mod backup;
mod data;
mod dialect;
mod introspect;

pub use dialect::Postgres;

use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use crate::crypto::Password;
use crate::engine::Engine;
use crate::ident::{RoleName, SqlIdent, SqlName};

/// Base tables of the current schema.
pub const LIST_TABLES: &str = "SELECT table_name::text AS name FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'";

/// SQLSTATE `duplicate_database`.
const DUPLICATE_DATABASE: &str = "42P04";

/// Creates database `db` unless it exists. An existing database of that name is ours: the
/// name derives from a tenant id the catalog recorded before the database was created.
pub async fn create_database(admin: &mut AnyConnection, db: &impl SqlIdent) -> sqlx::Result<()> {
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(db.ident())
        .fetch_one(&mut *admin)
        .await?;
    if exists > 0 {
        return Ok(());
    }
    let ddl = format!("CREATE DATABASE {}", Engine::Postgres.quote(db));
    match sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *admin).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Drops database `db`, disconnecting its sessions; absent is fine.
pub async fn drop_database(admin: &mut AnyConnection, db: &impl SqlIdent) -> sqlx::Result<()> {
    let ddl = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        Engine::Postgres.quote(db)
    );
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(admin).await?;
    Ok(())
}

/// Whether database `db` exists on the server.
pub async fn database_exists(admin: &mut AnyConnection, db: &impl SqlIdent) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(db.ident())
        .fetch_one(admin)
        .await?;
    Ok(n > 0)
}

/// Asks the server to notice a vanished client within a second (PostgreSQL 14+), so a
/// killed runner's session, its open transaction and its advisory lock go away promptly
/// instead of when its current statement ends. Older servers ignore the request.
pub async fn watch_client(conn: &mut AnyConnection) {
    if let Err(e) = sqlx::raw_sql("SET client_connection_check_interval = 1000")
        .execute(conn)
        .await
    {
        tracing::debug!(error = %e, "client_connection_check_interval not supported");
    }
}

/// Lets each statement on the connection run for at most `limit`.
pub async fn set_statement_timeout(
    conn: &mut AnyConnection,
    limit: std::time::Duration,
) -> sqlx::Result<()> {
    // A number of milliseconds: nothing of the caller's reaches the text.
    let ms = limit.as_millis().max(1);
    sqlx::raw_sql(AssertSqlSafe(format!("SET statement_timeout = {ms}")))
        .execute(conn)
        .await?;
    Ok(())
}

/// The advisory-lock key a derived lock secret stands for: its first 64 bits.
pub fn advisory_key(secret: &str) -> i64 {
    let bits = secret.get(..16).unwrap_or("0");
    u64::from_str_radix(bits, 16).unwrap_or(0) as i64
}

/// Takes the session-level advisory lock `key` if it is free. It is held until
/// [`unlock`] or until the connection closes, so a killed runner never leaves it behind.
pub async fn try_lock(conn: &mut AnyConnection, key: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await
}

pub async fn unlock(conn: &mut AnyConnection, key: i64) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Creates a login role for a tenant or pool (or resets its password), with no rights beyond
/// logging in: no superuser, no CREATEDB/CREATEROLE, no BYPASSRLS, member of no role.
/// With `search_path`, logins start in that schema, with `pg_temp` after it, so a temporary
/// table can never shadow one of the schema's tables.
pub async fn ensure_role(
    admin: &mut AnyConnection,
    role: &RoleName,
    password: &Password,
    search_path: Option<&SqlName>,
) -> sqlx::Result<()> {
    let quoted = Engine::Postgres.quote(role);
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname = $1")
        .bind(role.as_str())
        .fetch_one(&mut *admin)
        .await?;
    // LOGIN only on creation: whether an existing role may log in is the tenant's access
    // (suspended or not), which [`set_login`] alone changes.
    let (verb, login) = if exists > 0 {
        ("ALTER", "")
    } else {
        ("CREATE", "LOGIN ")
    };
    let mut statements = vec![format!(
        "{verb} ROLE {quoted} {login}PASSWORD '{}' NOSUPERUSER NOCREATEDB NOCREATEROLE \
         NOREPLICATION NOBYPASSRLS NOINHERIT",
        password.as_str()
    )];
    if let Some(schema) = search_path {
        statements.push(format!(
            "ALTER ROLE {quoted} SET search_path = {}, pg_temp",
            Engine::Postgres.quote(schema)
        ));
    }
    for sql in statements {
        match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *admin).await {
            // Two runners creating the same role at once: the other one won.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42710") => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Lets only `role` (and the administrator) connect to database `db`.
pub async fn grant_database(
    admin: &mut AnyConnection,
    db: &impl SqlIdent,
    role: &RoleName,
) -> sqlx::Result<()> {
    let db = Engine::Postgres.quote(db);
    let role = Engine::Postgres.quote(role);
    let sql = format!(
        "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// Before each migration of a tenant's schema: the schema closed to `PUBLIC` and open to
/// the tenant's role, and every table and sequence the administrative role creates in it
/// from now on readable and writable by that role (default privileges). A migration then
/// needs no grant afterwards, so its cost does not depend on how many relations the server
/// holds (`GRANT … ON ALL TABLES IN SCHEMA` reads the whole of `pg_class`).
pub async fn grant_by_default(
    conn: &mut AnyConnection,
    schema: &SqlName,
    role: &RoleName,
) -> sqlx::Result<()> {
    let schema_q = Engine::Postgres.quote(schema);
    let role_q = Engine::Postgres.quote(role);
    // Catalog rows are written only when something is missing: a migration of a tenant set
    // up already changes nothing but its own objects. The names inside the literals are
    // validated lowercase identifiers, written as the catalog spells them.
    let schema_l = quote_literal(schema.ident());
    let role_l = quote_literal(role.ident());
    let sql = format!(
        "DO $tenantry$ BEGIN \
         IF has_schema_privilege('public', {schema_l}, 'USAGE') \
            OR NOT has_schema_privilege({role_l}, {schema_l}, 'USAGE') THEN \
           REVOKE ALL ON SCHEMA {schema_q} FROM PUBLIC; \
           GRANT USAGE ON SCHEMA {schema_q} TO {role_q}; \
         END IF; \
         IF (SELECT count(*) FROM pg_default_acl d \
             WHERE d.defaclrole = current_user::text::regrole \
               AND d.defaclnamespace = {schema_l}::regnamespace \
               AND d.defaclobjtype IN ('r', 'S') \
               AND array_to_string(d.defaclacl, ',') LIKE '%' || {role_l} || '=%') < 2 THEN \
           ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role_q}; \
           ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} \
             GRANT USAGE, SELECT ON SEQUENCES TO {role_q}; \
         END IF; \
         END $tenantry$"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// Once, for an adopted schema: the tables and sequences that were there before Tenantry
/// readable and writable by the tenant's role (as default privileges make every later one),
/// and sqlx's old ledger, if it is there, closed to it.
pub async fn grant_existing(
    conn: &mut AnyConnection,
    schema: &SqlName,
    role: &RoleName,
) -> sqlx::Result<()> {
    let schema_q = Engine::Postgres.quote(schema);
    let role_q = Engine::Postgres.quote(role);
    let sqlx_ledger = quote_literal(&format!(
        "{}.{}",
        Engine::Postgres.quote(schema),
        crate::migrate::ledger::SQLX_TABLE
    ));
    let sql = format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_q} TO {role_q}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {role_q}; \
         DO $tenantry$ BEGIN \
         IF to_regclass({sqlx_ledger}) IS NOT NULL THEN \
           EXECUTE 'REVOKE ALL ON TABLE ' || {sqlx_ledger} || ' FROM ' || {role_l}; \
         END IF; \
         END $tenantry$",
        role_l = quote_literal(&role_q),
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// `text` as an SQL string literal (quotes doubled); for Tenantry's own validated names only.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// After each migration: the ledger, which the default privileges opened too, closed to the
/// tenant's role.
pub async fn revoke_ledger(
    conn: &mut AnyConnection,
    schema: &SqlName,
    role: &RoleName,
    ledger: &SqlName,
) -> sqlx::Result<()> {
    let table = format!(
        "{}.{}",
        Engine::Postgres.quote(schema),
        Engine::Postgres.quote(ledger)
    );
    let role_q = Engine::Postgres.quote(role);
    let table_l = quote_literal(&format!("{}.{}", schema.ident(), ledger.ident()));
    let role_l = quote_literal(role.ident());
    // Only when the role can touch the ledger at all: no catalog write otherwise.
    let sql = format!(
        "DO $tenantry$ BEGIN \
         IF has_table_privilege({role_l}, {table_l}, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') THEN \
           REVOKE ALL ON TABLE {table} FROM {role_q}; \
         END IF; \
         END $tenantry$"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// Ends the role's sessions, removes what it owns or was granted in the connected database,
/// and drops it; absent is fine.
pub async fn drop_role(admin: &mut AnyConnection, role: &RoleName) -> sqlx::Result<()> {
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname = $1")
        .bind(role.as_str())
        .fetch_one(&mut *admin)
        .await?;
    if exists == 0 {
        return Ok(());
    }
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(role.as_str())
        .execute(&mut *admin)
        .await?;
    let quoted = Engine::Postgres.quote(role);
    let sql = format!("DROP OWNED BY {quoted}; DROP ROLE IF EXISTS {quoted}");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// Creates schema `schema` unless it exists.
pub async fn create_schema(admin: &mut AnyConnection, schema: &SqlName) -> sqlx::Result<()> {
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        Engine::Postgres.quote(schema)
    );
    match sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await {
        // Concurrent creation: the other runner won.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P06") => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => Ok(()),
        other => other.map(|_| ()),
    }
}

pub async fn drop_schema(admin: &mut AnyConnection, schema: &SqlName) -> sqlx::Result<()> {
    let sql = format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        Engine::Postgres.quote(schema)
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

pub async fn schema_exists(admin: &mut AnyConnection, schema: &SqlName) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1")
        .bind(schema.as_str())
        .fetch_one(admin)
        .await?;
    Ok(n > 0)
}

/// Points the connection at `schema` for the rest of its life.
/// Everything a migration may have left on a session, undone (what `DISCARD ALL` does, but
/// for prepared statements, which the driver's cache keeps, and advisory locks, released by
/// their holder): cursors, a changed role, settings, listens, temporary tables.
pub async fn reset_session(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(
        "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; DISCARD TEMP",
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_search_path(conn: &mut AnyConnection, schema: &SqlName) -> sqlx::Result<()> {
    let sql = format!("SET search_path TO {}", Engine::Postgres.quote(schema));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// Ends every session of the connected database whose `application_name` is `name`.
pub async fn terminate_application(admin: &mut AnyConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(admin)
    .await?;
    Ok(())
}

/// Lets `role` log in, or not. Sessions already open are not affected: see
/// [`terminate_role`].
pub async fn set_login(
    admin: &mut AnyConnection,
    role: &RoleName,
    login: bool,
) -> sqlx::Result<()> {
    let verb = if login { "LOGIN" } else { "NOLOGIN" };
    let sql = format!("ALTER ROLE {} {verb}", Engine::Postgres.quote(role));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// Ends every session of `role` on the server, until none is left (a session that was
/// authenticating while the first sweep ran is caught by the next).
pub async fn terminate_role(admin: &mut AnyConnection, role: &RoleName) -> sqlx::Result<()> {
    for _ in 0..50 {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
        )
        .bind(role.as_str())
        .fetch_one(&mut *admin)
        .await?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether PostgreSQL said the object named does not exist (`42704`).
fn undefined_object(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "42704")
}

/// Lets a tenant's login role in, or shuts it out and ends its sessions (the database and
/// schema strategies alike).
pub(crate) async fn set_role_access(
    place: &crate::storage::Place,
    tenant: &crate::catalog::Tenant,
    allow: bool,
) -> crate::error::Result<()> {
    use crate::error::Error;
    let slug = tenant.slug.as_str();
    let role = tenant.id.role_name();
    let mut admin = place.admin_at(None).await?;
    match set_login(&mut admin, &role, allow).await {
        // A creation stopped before its role existed: nobody to shut out.
        Err(e) if !allow && undefined_object(&e) => return Ok(()),
        done => done.map_err(Error::storage(slug, "change whether its role may log in"))?,
    }
    if !allow {
        terminate_role(&mut admin, &role)
            .await
            .map_err(Error::storage(slug, "end its sessions"))?;
    }
    Ok(())
}

/// Ends every session of `role` that holds one of the role catalogs locked for writing: an
/// `ALTER ROLE` (its own settings or password) it has not committed.
pub async fn end_sessions_altering_role(
    admin: &mut AnyConnection,
    role: &RoleName,
) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE a.usename = $1 AND l.locktype = 'relation' AND l.granted \
           AND l.mode = 'RowExclusiveLock' AND l.relation IN \
             ('pg_catalog.pg_authid'::regclass, 'pg_catalog.pg_db_role_setting'::regclass)",
    )
    .bind(role.as_str())
    .execute(admin)
    .await?;
    Ok(())
}

/// Whether an error is a lock wait that ran out (`lock_timeout`).
pub fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}
