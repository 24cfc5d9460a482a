//! The ledger each migrated unit (a tenant's storage, or a shared pool) keeps of the
//! migrations applied to it.

use sqlx::AnyConnection;
use sqlx::Row;

use super::source::Migration;
use crate::catalog::{LedgerState, now};
use crate::engine::Engine;

/// The ledger table's name in every tenant's storage.
pub const TABLE: &str = "_tenantry_migrations";

/// The ledger sqlx's migrator keeps. An adopted storage may still hold it: it is left as it
/// was, and, like Tenantry's own ledger, is no tenant data.
pub const SQLX_TABLE: &str = "_sqlx_migrations";

/// Whether `table` is a migration ledger (Tenantry's or sqlx's), not tenant data.
pub fn is_ledger(table: &str) -> bool {
    table.eq_ignore_ascii_case(TABLE) || table.eq_ignore_ascii_case(SQLX_TABLE)
}

/// A row's state: applied, or started and not finished (engines without transactional DDL).
pub const APPLIED: &str = "applied";
pub const DIRTY: &str = "dirty";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _tenantry_migrations (
    version          BIGINT       NOT NULL PRIMARY KEY,
    description      VARCHAR(255) NOT NULL,
    checksum         VARCHAR(96)  NOT NULL,
    state            VARCHAR(8)   NOT NULL,
    failed_statement TEXT,
    applied_at       VARCHAR(40)  NOT NULL,
    execution_ms     BIGINT       NOT NULL
)";

/// One migration in the ledger.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerRow {
    pub version: i64,
    pub description: String,
    /// SHA-384 of the applied SQL, hex.
    pub checksum: String,
    /// `applied` or `dirty`.
    pub state: String,
    /// For a dirty row, the statement that failed (none if the runner was stopped).
    pub failed_statement: Option<String>,
    pub applied_at: String,
    pub execution_ms: i64,
}

impl LedgerRow {
    pub fn is_applied(&self) -> bool {
        self.state == APPLIED
    }
}

pub async fn ensure(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(CREATE).execute(conn).await?;
    Ok(())
}

/// The ledger in version order.
pub async fn read(conn: &mut AnyConnection) -> sqlx::Result<Vec<LedgerRow>> {
    let rows = sqlx::query(
        "SELECT version, description, checksum, state, failed_statement, applied_at, execution_ms \
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
                state: row.try_get("state")?,
                failed_statement: row.try_get("failed_statement")?,
                applied_at: row.try_get("applied_at")?,
                execution_ms: row.try_get("execution_ms")?,
            })
        })
        .collect()
}

/// The highest applied version (0: none).
pub fn version(rows: &[LedgerRow]) -> i64 {
    rows.iter()
        .filter(|r| r.is_applied())
        .map(|r| r.version)
        .max()
        .unwrap_or(0)
}

/// What the ledger holds, as the catalog records it.
pub fn state(rows: &[LedgerRow]) -> LedgerState {
    LedgerState {
        version: version(rows),
        digest: digest(rows),
        dirty: rows.iter().find(|r| !r.is_applied()).map(|r| r.version),
    }
}

/// The digest of a ledger: SHA-256 over each applied version and checksum, in version order
/// (the form [`super::MigrationSet::digest`] takes over a set). `None` while a row is dirty.
pub fn digest(rows: &[LedgerRow]) -> Option<String> {
    if rows.iter().any(|r| !r.is_applied()) {
        return None;
    }
    Some(digest_of(
        rows.iter().map(|r| (r.version, r.checksum.as_str())),
    ))
}

/// SHA-256, hex, over `version:checksum` lines.
pub(crate) fn digest_of<'a>(versions: impl Iterator<Item = (i64, &'a str)>) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for (version, checksum) in versions {
        hasher.update(format!("{version}:{checksum}\n").as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Records `migration` in `state`; for `applied`, inside the migration's own transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    engine: Engine,
    migration: &Migration,
    state: &str,
    execution_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(engine.sql(
        "INSERT INTO _tenantry_migrations \
         (version, description, checksum, state, applied_at, execution_ms) \
         VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(migration.version)
    .bind(&migration.description)
    .bind(hex::encode(&migration.checksum))
    .bind(state)
    .bind(now())
    .bind(execution_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a dirty row applied (after its last statement, or by an operator who finished it).
/// Returns whether the row was there to mark: `false` means someone forgot it meanwhile.
pub async fn mark_applied(
    conn: &mut AnyConnection,
    engine: Engine,
    version: i64,
    checksum: &str,
    execution_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(engine.sql(
        "UPDATE _tenantry_migrations SET state = 'applied', failed_statement = NULL, \
         checksum = ?, applied_at = ?, execution_ms = ? WHERE version = ? AND state = 'dirty'",
    ))
    .bind(checksum)
    .bind(now())
    .bind(execution_ms)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the statement a dirty migration stopped at.
pub async fn mark_failed(
    conn: &mut AnyConnection,
    engine: Engine,
    version: i64,
    statement: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        engine.sql("UPDATE _tenantry_migrations SET failed_statement = ? WHERE version = ?"),
    )
    .bind(statement)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a dirty row so the migration runs again from its first statement.
pub async fn forget_dirty(
    conn: &mut AnyConnection,
    engine: Engine,
    version: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        engine.sql("DELETE FROM _tenantry_migrations WHERE version = ? AND state = 'dirty'"),
    )
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks an applied row dirty before its down script runs outside a transaction (MySQL, or a
/// `-- no-transaction` down file). Returns whether the row was there to mark.
pub async fn mark_reverting(
    conn: &mut AnyConnection,
    engine: Engine,
    version: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(engine.sql(
        "UPDATE _tenantry_migrations SET state = 'dirty', failed_statement = NULL \
         WHERE version = ? AND state = 'applied'",
    ))
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a reverted version's row: `applied` inside its down script's transaction, `dirty`
/// after the last statement of a down script run outside one. Returns whether the row was
/// there in that state.
pub async fn remove(
    conn: &mut AnyConnection,
    engine: Engine,
    version: i64,
    state: &str,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query(engine.sql("DELETE FROM _tenantry_migrations WHERE version = ? AND state = ?"))
            .bind(version)
            .bind(state)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
