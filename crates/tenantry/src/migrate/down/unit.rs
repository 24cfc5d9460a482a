//! Reverting one unit under its lock: its versions above the target, newest first, each
//! with its down script, hook and ledger row (see [`super`] for the invariants).

use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use super::{RevertTarget, applied_versions, remaining, scripts};
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::engine::Engine;
use crate::error::{DirtyFailure, Error, Result};
use crate::migrate::apply::{check_ledger, run_hook};
use crate::migrate::ledger;
use crate::migrate::locate::{self, Sent, failed};
use crate::migrate::source::{DownScript, Migration, MigrationSet};
use crate::migrate::split;
use crate::storage::{Hook, MigrationTarget};

/// What one locked revert of a unit did.
#[derive(Debug)]
pub(super) struct Reverted {
    /// Versions reverted in this run, newest first.
    pub reverted: Vec<i64>,
    /// The highest applied version in the unit's ledger afterwards.
    pub version: i64,
    /// The first error, if any; `reverted` and `version` still hold.
    pub error: Option<Error>,
}

impl Tenantry {
    /// Under the unit's lock: checks that `tenant` is still in one of `expect`, reverts its
    /// versions above `target` newest first, then records the ledger's state in the catalog —
    /// all before the lock is released. `Err(Error::Locked)` if another runner kept the lock
    /// past the wait; `Err(Error::InvalidTransition)` if the tenant moved.
    pub(super) async fn revert_locked(
        &self,
        storage: MigrationTarget,
        set: &MigrationSet,
        target: RevertTarget,
        tenant: &Tenant,
        expect: &[Status],
    ) -> Result<Reverted> {
        let MigrationTarget {
            owner,
            engine,
            mut conn,
            lock,
            hook,
            ..
        } = storage;
        let held = match lock.acquire(&owner, &mut conn, self.config.lock_wait).await {
            Ok(Some(held)) => held,
            Ok(None) => return Err(Error::Locked { tenant: owner }),
            Err(e) => {
                // A lock file that is gone: the tenant was deleted meanwhile.
                self.still(tenant, expect).await?;
                return Err(e);
            }
        };
        let result = async {
            self.still(tenant, expect).await?;
            let mut reverted = Vec::new();
            let error = revert(&mut conn, engine, &owner, set, target, &hook, &mut reverted)
                .await
                .err();
            let rows = ledger::read(&mut conn)
                .await
                .map_err(Error::storage(&owner, "read the migration ledger"))?;
            let text = error.as_ref().map(ToString::to_string);
            self.record_run(tenant, &ledger::state(&rows), text.as_deref())
                .await?;
            Ok(Reverted {
                reverted,
                version: ledger::version(&rows),
                error,
            })
        }
        .await;
        held.release(&owner, &mut conn).await;
        let _ = conn.close().await;
        result
    }
}

/// Reverts the unit's applied versions above `target`, newest first, pushing each onto
/// `done` once it is reverted. The caller holds the unit's lock. A ledger that disagrees with
/// the files, or a version without a down script, refuses before the first one; a failure
/// stops there, and what was reverted before stays reverted.
async fn revert(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    set: &MigrationSet,
    target: RevertTarget,
    hook: &Hook,
    done: &mut Vec<i64>,
) -> Result<()> {
    let rows = ledger::read(conn)
        .await
        .map_err(Error::storage(owner, "read the migration ledger"))?;
    check_ledger(owner, &rows, set)?;
    let versions = target.versions(owner, &applied_versions(&rows))?;
    for (up, down) in scripts(owner, set, &versions, &rows)? {
        let script = as_migration(up, down);
        if !engine.dialect().transactional_ddl() || script.no_transaction {
            revert_tracked(conn, engine, owner, &script, hook).await?;
        } else {
            revert_atomic(conn, engine, owner, &script, hook).await?;
        }
        tracing::info!(owner, version = script.version, "reverted migration");
        done.push(script.version);
    }
    Ok(())
}

/// The down script, its hook and the removal of its ledger row in one transaction.
async fn revert_atomic(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    script: &Migration,
    hook: &Hook,
) -> Result<()> {
    let mut tx = conn.begin().await.map_err(failed(owner, script, None))?;
    run_hook(&mut tx, owner, script, hook, true).await?;
    sqlx::raw_sql(AssertSqlSafe(script.sql.as_str()))
        .execute(&mut *tx)
        .await
        .map_err(failed(owner, script, Some(Sent::whole(script))))?;
    run_hook(&mut tx, owner, script, hook, false).await?;
    let removed = ledger::remove(&mut tx, engine, script.version, ledger::APPLIED)
        .await
        .map_err(failed(owner, script, None))?;
    if !removed {
        // Dropping the transaction rolls the script back.
        return Err(not_in_ledger(owner, script.version));
    }
    tx.commit().await.map_err(failed(owner, script, None))
}

/// Marks the version dirty, runs its down script outside a transaction (statement by
/// statement where DDL is not transactional, whole for a `-- no-transaction` file
/// elsewhere), then removes its ledger row. A statement that fails leaves the row dirty with
/// that statement.
async fn revert_tracked(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    script: &Migration,
    hook: &Hook,
) -> Result<()> {
    run_hook(conn, owner, script, hook, true).await?;
    let marked = ledger::mark_reverting(conn, engine, script.version)
        .await
        .map_err(failed(owner, script, None))?;
    if !marked {
        return Err(not_in_ledger(owner, script.version));
    }
    let dialect = engine.dialect();
    let statements = if dialect.transactional_ddl() {
        vec![split::Statement {
            text: script.sql.clone(),
            offset: 0,
        }]
    } else {
        split::statements_at(&script.sql, dialect.hash_comments())
    };
    for statement in statements {
        if let Err(source) = sqlx::raw_sql(AssertSqlSafe(statement.text.as_str()))
            .execute(&mut *conn)
            .await
        {
            let _ = ledger::mark_failed(conn, engine, script.version, &statement.text).await;
            let located = locate::locate(script, Sent::statement(&statement), &source);
            return Err(Error::RevertDirty(Box::new(DirtyFailure {
                tenant: owner.to_owned(),
                version: script.version,
                file: script.path.clone(),
                line: located.line,
                statement: statement.text,
                message: located.message,
                source,
            })));
        }
    }
    run_hook(conn, owner, script, hook, false).await?;
    let removed = ledger::remove(conn, engine, script.version, ledger::DIRTY)
        .await
        .map_err(failed(owner, script, None))?;
    if !removed {
        return Err(Error::VerifyFailed {
            tenant: owner.to_owned(),
            detail: format!(
                "the down script of migration {} ran, but its dirty ledger row was changed meanwhile; check the storage, then run `tenantry migrate resolve`",
                script.version
            ),
        });
    }
    Ok(())
}

/// A version the ledger no longer holds as applied although the plan, read under the lock,
/// said it did.
fn not_in_ledger(owner: &str, version: i64) -> Error {
    Error::VerifyFailed {
        tenant: owner.to_owned(),
        detail: format!(
            "migration {version} is no longer applied in its ledger; nothing of its down script was kept"
        ),
    }
}

/// A down script in the shape of a migration, for hooks and error locations.
fn as_migration(up: &Migration, down: &DownScript) -> Migration {
    Migration {
        version: up.version,
        description: up.description.clone(),
        path: down.path.clone(),
        sql: down.sql.clone(),
        checksum: Vec::new(),
        no_transaction: down.no_transaction,
        down: None,
    }
}

/// Under the caller's lock: the unit's versions above `target` reverted newest first, each
/// with its hook and the removal of its ledger row, inside one transaction that is rolled
/// back. The versions it reverted and the version its ledger would then record. A
/// `-- no-transaction` down script cannot be dry-run ([`Error::DryRunImpossible`]).
pub(crate) async fn dry_revert(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    set: &MigrationSet,
    target: RevertTarget,
    hook: &Hook,
) -> Result<(Vec<i64>, i64)> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::storage(owner, "begin the dry run"))?;
    let rows = ledger::read(&mut tx)
        .await
        .map_err(Error::storage(owner, "read the migration ledger"))?;
    check_ledger(owner, &rows, set)?;
    let applied = applied_versions(&rows);
    let versions = target.versions(owner, &applied)?;
    let scripts = scripts(owner, set, &versions, &rows)?;
    if let Some((_, down)) = scripts.iter().find(|(_, down)| down.no_transaction) {
        return Err(Error::DryRunImpossible {
            tenant: owner.to_owned(),
            reason: format!(
                "{} runs outside a transaction (-- no-transaction)",
                down.path.display()
            ),
        });
    }
    for (up, down) in scripts {
        let script = as_migration(up, down);
        run_hook(&mut tx, owner, &script, hook, true).await?;
        sqlx::raw_sql(AssertSqlSafe(script.sql.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(failed(owner, &script, Some(Sent::whole(&script))))?;
        run_hook(&mut tx, owner, &script, hook, false).await?;
        if !ledger::remove(&mut tx, engine, script.version, ledger::APPLIED)
            .await
            .map_err(failed(owner, &script, None))?
        {
            return Err(not_in_ledger(owner, script.version));
        }
    }
    tx.rollback()
        .await
        .map_err(Error::storage(owner, "roll the dry run back"))?;
    let to = remaining(&applied, &versions);
    Ok((versions, to))
}
