//! The catalog's own built-in, versioned migrations.

use std::time::Duration;

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
    CatalogMigration {
        version: 4,
        description: "routing: domains, users, memberships, change counter, pooler URLs",
        tables: "
ALTER TABLE tenantry_servers ADD COLUMN pooler_url TEXT;
CREATE TABLE IF NOT EXISTS tenantry_domains (
    host        VARCHAR(253) NOT NULL PRIMARY KEY,
    tenant_id   VARCHAR(26)  NOT NULL,
    is_primary  SMALLINT     NOT NULL DEFAULT 0,
    created_at  VARCHAR(40)  NOT NULL,
    FOREIGN KEY (tenant_id) REFERENCES tenantry_tenants (id)
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_users (
    id            VARCHAR(26)  NOT NULL PRIMARY KEY,
    email         VARCHAR(254) NOT NULL,
    email_key     VARCHAR(254) NOT NULL UNIQUE,
    display_name  VARCHAR(255) NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    password_hash TEXT,
    created_at    VARCHAR(40)  NOT NULL,
    updated_at    VARCHAR(40)  NOT NULL
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_memberships (
    user_id     VARCHAR(26)  NOT NULL,
    tenant_id   VARCHAR(26)  NOT NULL,
    role        VARCHAR(32)  NOT NULL,
    created_at  VARCHAR(40)  NOT NULL,
    updated_at  VARCHAR(40)  NOT NULL,
    PRIMARY KEY (user_id, tenant_id),
    FOREIGN KEY (user_id) REFERENCES tenantry_users (id),
    FOREIGN KEY (tenant_id) REFERENCES tenantry_tenants (id)
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_changes (
    id          INTEGER      NOT NULL PRIMARY KEY,
    counter     BIGINT       NOT NULL
)/*TABLE_OPTIONS*/;
INSERT INTO tenantry_changes (id, counter) VALUES (1, 0);
",
        indexes: &[
            ("tenantry_domains_tenant", "tenantry_domains", "tenant_id"),
            (
                "tenantry_memberships_tenant",
                "tenantry_memberships",
                "tenant_id",
            ),
        ],
    },
    CatalogMigration {
        version: 5,
        description: "rollouts: ledger digests, dirty versions, labels, rollout records, spares",
        tables: "
ALTER TABLE tenantry_tenants ADD COLUMN ledger_digest VARCHAR(64);
ALTER TABLE tenantry_tenants ADD COLUMN dirty_version BIGINT;
CREATE TABLE IF NOT EXISTS tenantry_labels (
    tenant_id   VARCHAR(26)  NOT NULL,
    label       VARCHAR(63)  NOT NULL,
    PRIMARY KEY (tenant_id, label),
    FOREIGN KEY (tenant_id) REFERENCES tenantry_tenants (id)
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_rollouts (
    id             VARCHAR(26)  NOT NULL PRIMARY KEY,
    kind           VARCHAR(16)  NOT NULL,
    state          VARCHAR(16)  NOT NULL,
    target_version BIGINT,
    started_by     VARCHAR(255) NOT NULL,
    started_at     VARCHAR(40)  NOT NULL,
    finished_at    VARCHAR(40),
    options        TEXT         NOT NULL,
    total          BIGINT       NOT NULL DEFAULT 0,
    active_key     VARCHAR(160) UNIQUE
)/*TABLE_OPTIONS*/;
CREATE TABLE IF NOT EXISTS tenantry_rollout_items (
    rollout_id   VARCHAR(26)  NOT NULL,
    tenant_id    VARCHAR(26)  NOT NULL,
    position     BIGINT       NOT NULL,
    wave         BIGINT       NOT NULL,
    state        VARCHAR(16)  NOT NULL,
    from_version BIGINT,
    to_version   BIGINT,
    error        TEXT,
    lease_owner  VARCHAR(64),
    lease_until  VARCHAR(40),
    finished_at  VARCHAR(40),
    PRIMARY KEY (rollout_id, tenant_id),
    FOREIGN KEY (rollout_id) REFERENCES tenantry_rollouts (id)
)/*TABLE_OPTIONS*/;
",
        indexes: &[
            ("tenantry_labels_label", "tenantry_labels", "label"),
            (
                "tenantry_rollout_items_claim",
                "tenantry_rollout_items",
                "rollout_id, state, wave, position",
            ),
            (
                "tenantry_tenants_spares",
                "tenantry_tenants",
                "status, server, strategy",
            ),
        ],
    },
    CatalogMigration {
        version: 6,
        description: "the audit chain, API keys",
        tables: "
ALTER TABLE tenantry_events ADD COLUMN seq BIGINT;
ALTER TABLE tenantry_events ADD COLUMN actor VARCHAR(255);
ALTER TABLE tenantry_events ADD COLUMN target VARCHAR(255);
ALTER TABLE tenantry_events ADD COLUMN prev_hash VARCHAR(64);
ALTER TABLE tenantry_events ADD COLUMN hash VARCHAR(64);
CREATE TABLE IF NOT EXISTS tenantry_audit_head (
    id          INTEGER      NOT NULL PRIMARY KEY,
    seq         BIGINT       NOT NULL,
    hash        VARCHAR(64)  NOT NULL
)/*TABLE_OPTIONS*/;
INSERT INTO tenantry_audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE IF NOT EXISTS tenantry_api_keys (
    id          VARCHAR(26)  NOT NULL PRIMARY KEY,
    name        VARCHAR(63)  NOT NULL UNIQUE,
    secret_hash VARCHAR(64)  NOT NULL,
    scopes      TEXT         NOT NULL,
    tenant_id   VARCHAR(26),
    created_at  VARCHAR(40)  NOT NULL,
    created_by  VARCHAR(255) NOT NULL,
    revoked_at  VARCHAR(40),
    last_used_at VARCHAR(40)
)/*TABLE_OPTIONS*/;
",
        indexes: &[("tenantry_events_seq", "tenantry_events", "seq")],
    },
    CatalogMigration {
        version: 7,
        description: "tenant secrets",
        tables: "
CREATE TABLE IF NOT EXISTS tenantry_secrets (
    tenant_id   VARCHAR(26)  NOT NULL,
    name        VARCHAR(63)  NOT NULL,
    sealed      TEXT         NOT NULL,
    created_at  VARCHAR(40)  NOT NULL,
    updated_at  VARCHAR(40)  NOT NULL,
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id) REFERENCES tenantry_tenants (id)
)/*TABLE_OPTIONS*/;
",
        indexes: &[],
    },
    CatalogMigration {
        version: 8,
        description: "operations under way on a tenant's data",
        tables: "
CREATE TABLE IF NOT EXISTS tenantry_operations (
    tenant_id   VARCHAR(26)  NOT NULL PRIMARY KEY,
    kind        VARCHAR(16)  NOT NULL,
    detail      TEXT,
    started_at  VARCHAR(40)  NOT NULL,
    FOREIGN KEY (tenant_id) REFERENCES tenantry_tenants (id)
)/*TABLE_OPTIONS*/;
",
        indexes: &[],
    },
    CatalogMigration {
        version: 9,
        description: "server capacity, region and labels",
        tables: "
ALTER TABLE tenantry_servers ADD COLUMN capacity BIGINT;
ALTER TABLE tenantry_servers ADD COLUMN region VARCHAR(63);
ALTER TABLE tenantry_servers ADD COLUMN labels TEXT;
",
        indexes: &[],
    },
    CatalogMigration {
        version: 10,
        description: "sealed personal fields in the audit log",
        tables: "
ALTER TABLE tenantry_events ADD COLUMN seal VARCHAR(64);
ALTER TABLE tenantry_events ADD COLUMN seal_salt VARCHAR(32);
",
        indexes: &[],
    },
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS tenantry_catalog_migrations (
    version     BIGINT       NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    applied_at  VARCHAR(40)  NOT NULL
)";

/// A fixed lock key that serialises catalog migrations (a PostgreSQL key, a MySQL name).
const CATALOG_LOCK: i64 = 0x7465_6e61_6e74_7279; // "tenantry"

/// Applies pending catalog migrations. Safe to run from several processes at once: on
/// PostgreSQL and MySQL they queue on an advisory lock; on SQLite the database's write lock serialises
/// them and a runner that lost the race finds the version applied and moves on.
pub(super) async fn migrate(catalog: &Catalog, lock_wait: Duration) -> Result<()> {
    let engine = catalog.engine;
    let mut conn = catalog
        .pool
        .acquire()
        .await
        .map_err(Error::catalog("connect"))?;
    let lock = engine.dialect().catalog_lock();
    if let Some(lock) = lock {
        let mut take = sqlx::query_scalar(lock.take).bind(CATALOG_LOCK);
        if lock.bounded {
            take = take.bind(lock_wait.as_secs().max(1) as i64);
        }
        let taken: Option<i64> = take
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::catalog("lock catalog migrations"))?;
        if taken != Some(1) {
            return Err(Error::CatalogBusy {
                action: "migrate the catalog",
                waited_secs: lock_wait.as_secs().max(1),
            });
        }
    }
    let result = apply(&mut conn, engine).await;
    if let Some(lock) = lock {
        // Closing the connection would release it too; unlock so the pooled connection is clean.
        let _ = sqlx::query(lock.release)
            .bind(CATALOG_LOCK)
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
    // A newer Tenantry's catalog: its records (sealed audit entries, say) would be misread.
    let found: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM tenantry_catalog_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::catalog("read the catalog migration ledger"))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(found) = found.filter(|found| *found > known) {
        return Err(Error::CatalogNewer { found, known });
    }
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
    let dialect = engine.dialect();
    let tables = migration
        .tables
        .replace("/*TABLE_OPTIONS*/", dialect.catalog_table_options());
    let mut tx = conn.begin().await.map_err(Error::catalog(action))?;
    sqlx::raw_sql(AssertSqlSafe(tables))
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
    for (name, table, columns) in migration.indexes {
        let ddl = dialect.catalog_index(name, table, columns);
        match sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await {
            Err(e) if dialect.is_duplicate_index(&e) => {}
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
    if migration.version == 6 {
        super::events::chain_existing(&mut tx, engine)
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
