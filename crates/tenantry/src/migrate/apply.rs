//! Applying a migration set to one tenant's storage, each migration exactly once.

use std::time::Instant;

use sqlx::AnyConnection;
use sqlx::Connection;

use super::ledger::{self, LedgerRow};
use super::source::{Migration, MigrationSet};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Refuses a ledger that disagrees with the migration files: an applied version whose file
/// is gone, or whose file has changed since it was applied.
pub fn check_ledger(tenant: &str, applied: &[LedgerRow], set: &MigrationSet) -> Result<()> {
    for row in applied {
        let Some(migration) = set.get(row.version) else {
            return Err(Error::MigrationMissing {
                tenant: tenant.to_owned(),
                version: row.version,
                description: row.description.clone(),
            });
        };
        if row.checksum != hex::encode(&migration.checksum) {
            return Err(Error::ChecksumMismatch {
                tenant: tenant.to_owned(),
                version: row.version,
                file: migration.path.clone(),
            });
        }
    }
    Ok(())
}

/// Applies every migration of `set` missing from the tenant's ledger, in version order. The
/// caller holds the tenant's lock. Stops at the first failure; what was applied before it
/// stays applied and recorded.
pub async fn apply_pending(
    conn: &mut AnyConnection,
    engine: Engine,
    tenant: &str,
    set: &MigrationSet,
) -> Result<Vec<i64>> {
    ledger::ensure(conn)
        .await
        .map_err(Error::storage(tenant, "create the migration ledger"))?;
    let applied = ledger::read(conn)
        .await
        .map_err(Error::storage(tenant, "read the migration ledger"))?;
    check_ledger(tenant, &applied, set)?;
    let mut done = Vec::new();
    for migration in set.iter() {
        if applied.iter().any(|row| row.version == migration.version) {
            continue;
        }
        apply_one(conn, engine, migration)
            .await
            .map_err(|source| Error::MigrationFailed {
                tenant: tenant.to_owned(),
                version: migration.version,
                file: migration.path.clone(),
                source,
            })?;
        tracing::info!(tenant, version = migration.version, "applied migration");
        done.push(migration.version);
    }
    Ok(done)
}

async fn apply_one(
    conn: &mut AnyConnection,
    engine: Engine,
    migration: &Migration,
) -> sqlx::Result<()> {
    let started = Instant::now();
    let sql = sqlx::AssertSqlSafe(migration.sql.as_str());
    if migration.no_transaction {
        sqlx::raw_sql(sql).execute(&mut *conn).await?;
        let ms = elapsed_ms(started);
        return ledger::insert(conn, engine, migration, ms).await;
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(sql).execute(&mut *tx).await?;
    ledger::insert(&mut tx, engine, migration, elapsed_ms(started)).await?;
    tx.commit().await
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}
