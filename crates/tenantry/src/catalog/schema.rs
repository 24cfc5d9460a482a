//! The catalog's own built-in, versioned migrations.

use sqlx::{Acquire, AssertSqlSafe, Row};

use super::{Catalog, now};
use crate::engine::Engine;
use crate::error::{Error, Result};

struct CatalogMigration {
    version: i64,
    description: &'static str,
    /// Portable DDL: the same text runs on SQLite, PostgreSQL and MySQL, with
    /// `/*TABLE_OPTIONS*/` replaced per engine.
    tables: &'static str,
    /// `(name, table, columns)` of each index, created per engine.
    indexes: &'static [(&'static str, &'static str, &'static str)],
}

const MIGRATIONS: &[CatalogMigration] = &[
    CatalogMigration {
        version: 1,
        description: "servers, tenants, shared pools, events",
        tables: "
CREATE TABLE IF NOT EXISTS tenantry_servers (
    name        VARCHAR(63)  NOT NULL PRIMARY KEY,
    engine      VARCHAR(16)  NOT NULL,
    url         TEXT         NOT NULL,
    created_at  VARCHAR(40)  NOT NULL
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_tenants (
    id          VARCHAR(26)  NOT NULL PRIMARY KEY,
    slug        VARCHAR(63)  NOT NULL UNIQUE,
    name        VARCHAR(255) NOT NULL,
    status      VARCHAR(16)  NOT NULL,
    strategy    VARCHAR(16)  NOT NULL,
    server      VARCHAR(63)  NOT NULL,
    storage     VARCHAR(63)  NOT NULL UNIQUE,
    role_name   VARCHAR(63),
    role_secret TEXT,
    version     BIGINT       NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  VARCHAR(40)  NOT NULL,
    updated_at  VARCHAR(40)  NOT NULL,
    deleted_at  VARCHAR(40),
    FOREIGN KEY (server) REFERENCES tenantry_servers (name)
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_pools (
    id          VARCHAR(26)  NOT NULL PRIMARY KEY,
    server      VARCHAR(63)  NOT NULL UNIQUE,
    role_name   VARCHAR(63)  NOT NULL,
    role_secret TEXT         NOT NULL,
    context_key TEXT         NOT NULL,
    version     BIGINT       NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  VARCHAR(40)  NOT NULL,
    updated_at  VARCHAR(40)  NOT NULL,
    FOREIGN KEY (server) REFERENCES tenantry_servers (name)
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_events (
    id          VARCHAR(26)  NOT NULL PRIMARY KEY,
    at          VARCHAR(40)  NOT NULL,
    tenant_id   VARCHAR(26),
    tenant_slug VARCHAR(63),
    action      VARCHAR(64)  NOT NULL,
    outcome     VARCHAR(16)  NOT NULL,
    detail      TEXT,
    error       TEXT
)/*TABLE_OPTIONS*/;
",
        indexes: &[
            ("tenantry_tenants_server", "tenantry_tenants", "server"),
            ("tenantry_events_tenant", "tenantry_events", "tenant_id, id"),
        ],
    },
    CatalogMigration {
        version: 2,
        description: "settings: the master key's fingerprint",
        tables: "
CREATE TABLE IF NOT EXISTS tenantry_settings (
    name        VARCHAR(63)  NOT NULL PRIMARY KEY,
    value       TEXT         NOT NULL
)/*TABLE_OPTIONS*/;
",
        indexes: &[],
    },
    CatalogMigration {
        version: 3,
        description: "server status, the fleet's applied migrations",
        tables: "
ALTER TABLE tenantry_servers ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'active';
CREATE TABLE IF NOT EXISTS tenantry_fleet_migrations (
    version     BIGINT       NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    checksum    VARCHAR(96)  NOT NULL,
    applied_at  VARCHAR(40)  NOT NULL
)/*TABLE_OPTIONS*/;
",
        indexes: &[],
    },
];

/// MySQL's `ER_DUP_KEYNAME`: the index exists already.
const MYSQL_DUPLICATE_INDEX: &str = "42000";

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS tenantry_catalog_migrations (
    version     BIGINT       NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    applied_at  VARCHAR(40)  NOT NULL
)";

/// A fixed advisory-lock key that serialises catalog migrations (PostgreSQL key, MySQL name).
const PG_CATALOG_LOCK: i64 = 0x7465_6e61_6e74_7279; // "tenantry"
/// How long a process waits for another one's catalog migrations (MySQL's `GET_LOCK`).
const CATALOG_LOCK_WAIT_SECS: u64 = 120;

/// Applies pending catalog migrations. Safe to run from several processes at once: on
/// PostgreSQL and MySQL they queue on an advisory lock; on SQLite the database's write lock serialises
/// them and a runner that lost the race finds the version applied and moves on.
pub(super) async fn migrate(catalog: &Catalog) -> Result<()> {
    let engine = catalog.engine;
    let mut conn = catalog
        .pool
        .acquire()
        .await
        .map_err(Error::catalog("connect"))?;
    let lock = match engine {
        Engine::Postgres => Some((
            "SELECT 1::int8 FROM (SELECT pg_advisory_lock($1)) AS l",
            "SELECT pg_advisory_unlock($1)",
        )),
        Engine::Mysql => Some((
            "SELECT CAST(GET_LOCK(CAST(? AS CHAR), 120) AS SIGNED)",
            "SELECT RELEASE_LOCK(CAST(? AS CHAR))",
        )),
        Engine::Sqlite => None,
    };
    if let Some((take, _)) = lock {
        // PostgreSQL waits (returns void); MySQL returns 1, or 0 after the timeout.
        let taken: Option<i64> = sqlx::query_scalar(take)
            .bind(PG_CATALOG_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::catalog("lock catalog migrations"))?;
        if engine == Engine::Mysql && taken != Some(1) {
            return Err(Error::CatalogBusy {
                action: "migrate the catalog",
                waited_secs: CATALOG_LOCK_WAIT_SECS,
            });
        }
    }
    let result = apply(&mut conn, engine).await;
    if let Some((_, release)) = lock {
        // Closing the connection would release it too; unlock so the pooled connection is clean.
        let _ = sqlx::query(release)
            .bind(PG_CATALOG_LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, engine: Engine) -> Result<()> {
    sqlx::raw_sql(LEDGER)
        .execute(&mut *conn)
        .await
        .map_err(Error::catalog("create the catalog migration ledger"))?;
    for migration in MIGRATIONS {
        if is_applied(conn, engine, migration.version).await? {
            continue;
        }
        let outcome = apply_one(conn, engine, migration).await;
        if let Err(e) = outcome {
            // Another process may have applied it in the meantime.
            if is_applied(conn, engine, migration.version).await? {
                continue;
            }
            return Err(e);
        }
    }
    Ok(())
}

async fn is_applied(conn: &mut sqlx::AnyConnection, engine: Engine, version: i64) -> Result<bool> {
    let row = sqlx::query(
        engine.sql("SELECT COUNT(*) AS n FROM tenantry_catalog_migrations WHERE version = ?"),
    )
    .bind(version)
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::catalog("read the catalog migration ledger"))?;
    let n: i64 = row
        .try_get("n")
        .map_err(Error::catalog("read the catalog migration ledger"))?;
    Ok(n > 0)
}

async fn apply_one(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    migration: &CatalogMigration,
) -> Result<()> {
    let action = "apply a catalog migration";
    let options = match engine {
        Engine::Mysql => " DEFAULT CHARSET=utf8mb4",
        Engine::Sqlite | Engine::Postgres => "",
    };
    let tables = migration.tables.replace("/*TABLE_OPTIONS*/", options);
    let mut tx = conn.begin().await.map_err(Error::catalog(action))?;
    sqlx::raw_sql(AssertSqlSafe(tables))
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
    for (name, table, columns) in migration.indexes {
        let ddl = match engine {
            Engine::Mysql => format!("CREATE INDEX {name} ON {table} ({columns})"),
            Engine::Sqlite | Engine::Postgres => {
                format!("CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
            }
        };
        match sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await {
            Err(sqlx::Error::Database(e))
                if engine == Engine::Mysql
                    && e.code().as_deref() == Some(MYSQL_DUPLICATE_INDEX) => {}
            other => {
                other.map_err(Error::catalog(action))?;
            }
        }
    }
    if migration.version == 1 {
        sqlx::query(engine.sql(
            "INSERT INTO tenantry_servers (name, engine, url, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(crate::config::DEFAULT_SERVER)
        .bind(Engine::Sqlite.as_str())
        .bind(super::servers::LOCAL_URL)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
    }
    sqlx::query(engine.sql(
        "INSERT INTO tenantry_catalog_migrations (version, description, applied_at) VALUES (?, ?, ?)",
    ))
    .bind(migration.version)
    .bind(migration.description)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(Error::catalog(action))?;
    tx.commit().await.map_err(Error::catalog(action))
}
