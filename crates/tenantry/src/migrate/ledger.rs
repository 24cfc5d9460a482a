//! The ledger each tenant's storage keeps of the migrations applied to it.

use sqlx::AnyConnection;
use sqlx::Row;

use super::source::Migration;
use crate::catalog::now;
use crate::engine::Engine;

/// The ledger table's name in every tenant's storage.
pub const TABLE: &str = "_tenantry_migrations";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _tenantry_migrations (
    version       BIGINT       PRIMARY KEY,
    description   VARCHAR(255) NOT NULL,
    checksum      VARCHAR(96)  NOT NULL,
    applied_at    VARCHAR(40)  NOT NULL,
    execution_ms  BIGINT       NOT NULL
)";

/// One applied migration, as the tenant's ledger records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerRow {
    pub version: i64,
    pub description: String,
    /// SHA-384 of the applied SQL, hex.
    pub checksum: String,
    pub applied_at: String,
    pub execution_ms: i64,
}

pub async fn ensure(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(CREATE).execute(conn).await?;
    Ok(())
}

/// The ledger in version order.
pub async fn read(conn: &mut AnyConnection) -> sqlx::Result<Vec<LedgerRow>> {
    let rows = sqlx::query(
        "SELECT version, description, checksum, applied_at, execution_ms \
         FROM _tenantry_migrations ORDER BY version",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LedgerRow {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
                checksum: row.try_get("checksum")?,
                applied_at: row.try_get("applied_at")?,
                execution_ms: row.try_get("execution_ms")?,
            })
        })
        .collect()
}

/// Records `migration` as applied; run inside the migration's own transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    engine: Engine,
    migration: &Migration,
    execution_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(engine.sql(
        "INSERT INTO _tenantry_migrations (version, description, checksum, applied_at, execution_ms) \
         VALUES (?, ?, ?, ?, ?)",
    ))
    .bind(migration.version)
    .bind(&migration.description)
    .bind(hex::encode(&migration.checksum))
    .bind(now())
    .bind(execution_ms)
    .execute(conn)
    .await?;
    Ok(())
}
