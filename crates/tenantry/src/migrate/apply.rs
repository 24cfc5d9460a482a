//! Applying a migration set to one unit (a tenant's storage, or a shared pool), each
//! migration exactly once.
//!
//! Where DDL is transactional (PostgreSQL, SQLite) a migration, its hook and its ledger row
//! commit together or not at all. On MySQL, and for a `-- no-transaction` file anywhere, a
//! migration is recorded `dirty` before its first statement and `applied` after its last, so
//! one that stops halfway is reported as dirty with the statement that failed, never as
//! applied.

use std::time::Instant;

use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use super::ledger::{self, LedgerRow};
use super::locate::{self, Sent, failed};
use super::source::{Migration, MigrationSet};
use super::split;
use crate::engine::Engine;
use crate::error::{DirtyFailure, Error, Result};
use crate::storage::{Hook, HookError};

/// Refuses a ledger that disagrees with the migration files: an applied version whose file
/// is gone or has changed, or a dirty migration.
pub fn check_ledger(owner: &str, applied: &[LedgerRow], set: &MigrationSet) -> Result<()> {
    for row in applied {
        if !row.is_applied() {
            return Err(Error::Dirty {
                owner: owner.to_owned(),
                version: row.version,
                statement: row
                    .failed_statement
                    .clone()
                    .unwrap_or_else(|| "(unknown: the runner was stopped)".into()),
            });
        }
        let Some(migration) = set.get(row.version) else {
            return Err(Error::MigrationMissing {
                tenant: owner.to_owned(),
                version: row.version,
                description: row.description.clone(),
            });
        };
        if row.checksum != hex::encode(&migration.checksum) {
            return Err(Error::ChecksumMismatch {
                tenant: owner.to_owned(),
                version: row.version,
                file: migration.path.clone(),
            });
        }
    }
    Ok(())
}

/// Applies every migration of `set` missing from the ledger, in version order. The caller
/// holds the unit's lock. Stops at the first failure; what was applied before stays applied.
pub async fn apply_pending(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    set: &MigrationSet,
    hook: &Hook,
) -> Result<Vec<i64>> {
    ledger::ensure(conn)
        .await
        .map_err(Error::storage(owner, "create the migration ledger"))?;
    let applied = ledger::read(conn)
        .await
        .map_err(Error::storage(owner, "read the migration ledger"))?;
    check_ledger(owner, &applied, set)?;
    let mut done = Vec::new();
    for migration in set.iter() {
        if applied.iter().any(|row| row.version == migration.version) {
            continue;
        }
        if !engine.dialect().transactional_ddl() || migration.no_transaction {
            apply_tracked(conn, engine, owner, migration, hook).await?;
        } else {
            apply_atomic(conn, engine, owner, migration, hook).await?;
        }
        tracing::info!(owner, version = migration.version, "applied migration");
        done.push(migration.version);
    }
    Ok(done)
}

/// Runs every migration of `set` missing from the ledger inside one transaction, with its
/// hooks, then rolls it all back: what a rollout would apply, proven to run, nothing kept.
/// Refused where a pending file runs outside a transaction (`-- no-transaction`); the
/// caller refuses engines whose DDL is not transactional.
pub async fn dry_run(
    conn: &mut AnyConnection,
    owner: &str,
    set: &MigrationSet,
    hook: &Hook,
) -> Result<Vec<i64>> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::storage(owner, "begin the dry run"))?;
    ledger::ensure(&mut tx)
        .await
        .map_err(Error::storage(owner, "create the migration ledger"))?;
    let applied = ledger::read(&mut tx)
        .await
        .map_err(Error::storage(owner, "read the migration ledger"))?;
    check_ledger(owner, &applied, set)?;
    let pending: Vec<&Migration> = set
        .iter()
        .filter(|m| !applied.iter().any(|row| row.version == m.version))
        .collect();
    if let Some(m) = pending.iter().find(|m| m.no_transaction) {
        return Err(Error::DryRunImpossible {
            tenant: owner.to_owned(),
            reason: format!(
                "{} runs outside a transaction (-- no-transaction)",
                m.path.display()
            ),
        });
    }
    let mut done = Vec::with_capacity(pending.len());
    for migration in pending {
        run_hook(&mut tx, owner, migration, hook, true).await?;
        sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(failed(owner, migration, Some(Sent::whole(migration))))?;
        run_hook(&mut tx, owner, migration, hook, false).await?;
        done.push(migration.version);
    }
    tx.rollback()
        .await
        .map_err(Error::storage(owner, "roll the dry run back"))?;
    Ok(done)
}

pub(super) async fn run_hook(
    conn: &mut AnyConnection,
    owner: &str,
    migration: &Migration,
    hook: &Hook,
    before: bool,
) -> Result<()> {
    let ran = match before {
        true => hook.before(conn).await,
        false => hook.after(conn).await,
    };
    match ran {
        Ok(()) => Ok(()),
        Err(HookError::Sql(e)) => Err(failed(owner, migration, None)(e)),
        Err(HookError::Refused(e)) => Err(Error::MigrationRefused {
            tenant: owner.to_owned(),
            version: migration.version,
            file: migration.path.clone(),
            reason: Box::new(e),
        }),
    }
}

async fn apply_atomic(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    migration: &Migration,
    hook: &Hook,
) -> Result<()> {
    let started = Instant::now();
    let sql = AssertSqlSafe(migration.sql.as_str());
    let mut tx = conn.begin().await.map_err(failed(owner, migration, None))?;
    run_hook(&mut tx, owner, migration, hook, true).await?;
    sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(failed(
        owner,
        migration,
        Some(Sent::whole(migration)),
    ))?;
    run_hook(&mut tx, owner, migration, hook, false).await?;
    ledger::insert(
        &mut tx,
        engine,
        migration,
        ledger::APPLIED,
        elapsed_ms(started),
    )
    .await
    .map_err(failed(owner, migration, None))?;
    tx.commit().await.map_err(failed(owner, migration, None))
}

/// Records the migration dirty, runs it outside a transaction (statement by statement on
/// MySQL, whole on engines that run a `-- no-transaction` file), then marks it applied.
async fn apply_tracked(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    migration: &Migration,
    hook: &Hook,
) -> Result<()> {
    let started = Instant::now();
    run_hook(conn, owner, migration, hook, true).await?;
    ledger::insert(conn, engine, migration, ledger::DIRTY, 0)
        .await
        .map_err(failed(owner, migration, None))?;
    // Where DDL is not transactional, statement by statement, so a failure is named and the
    // statements before it are known to have run; elsewhere (a `-- no-transaction` file) whole.
    let dialect = engine.dialect();
    let statements = if dialect.transactional_ddl() {
        vec![split::Statement {
            text: migration.sql.clone(),
            offset: 0,
        }]
    } else {
        split::statements_at(&migration.sql, dialect.hash_comments())
    };
    for statement in statements {
        if let Err(source) = sqlx::raw_sql(AssertSqlSafe(statement.text.as_str()))
            .execute(&mut *conn)
            .await
        {
            let _ = ledger::mark_failed(conn, engine, migration.version, &statement.text).await;
            let located = locate::locate(migration, Sent::statement(&statement), &source);
            return Err(Error::MigrationDirty(Box::new(DirtyFailure {
                tenant: owner.to_owned(),
                version: migration.version,
                file: migration.path.clone(),
                line: located.line,
                statement: statement.text,
                message: located.message,
                source,
            })));
        }
    }
    run_hook(conn, owner, migration, hook, false).await?;
    let marked = ledger::mark_applied(
        conn,
        engine,
        migration.version,
        &hex::encode(&migration.checksum),
        elapsed_ms(started),
    )
    .await
    .map_err(failed(owner, migration, None))?;
    if !marked {
        return Err(Error::VerifyFailed {
            tenant: owner.to_owned(),
            detail: format!(
                "migration {} ran, but its dirty ledger row was removed meanwhile; check the storage, then run `tenantry migrate resolve`",
                migration.version
            ),
        });
    }
    Ok(())
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}
