//! `tenantry run`: the same SQL on every selected tenant, as a rollout (kind `sql`, or
//! `sql-dry-run`) with the same controls as a migration rollout: selection, order, canary,
//! waves, failure budget, dry run, several runners, resume, Ctrl-C.
//!
//! Each tenant's statements run in one transaction on its application connection, exactly
//! as `tenantry sql` runs them: as its own role (shared tenants: under row-level security in
//! its own context), so a run can reach nothing a tenant's application could not. Only active
//! tenants run; a dry run rolls each transaction back (on MySQL a DDL statement commits
//! itself, so a dry run of DDL there is not one).

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use super::fleet::{Outcome, TenantReport};
use super::rollout::{Plan, RolloutOptions, Selection};
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// The rollout kind of an SQL run.
pub const KIND: &str = "sql";
/// The rollout kind of an SQL dry run.
pub const DRY_RUN_KIND: &str = "sql-dry-run";

impl Tenantry {
    /// Plans a run of `sql` on the selected tenants (spares excluded) and returns its id; a
    /// run of the same SQL with the same options already going is joined (its id, `true`).
    /// Run it with [`Tenantry::run_rollout`].
    pub async fn start_sql_run(
        &self,
        sql: &str,
        selection: &Selection,
        options: &RolloutOptions,
        started_by: &str,
    ) -> Result<(String, bool)> {
        if sql.trim().is_empty() {
            return Err(Error::RolloutOption {
                reason: "no SQL to run".to_owned(),
            });
        }
        let tenants: Vec<(TenantId, Option<i64>, Option<i64>)> = self
            .select_map(selection, options, |t| (t.id, t.status))
            .await?
            .into_iter()
            .filter(|(_, status)| *status != Status::Spare)
            .map(|(id, _)| (id, None, None))
            .collect();
        let mut recorded = options.to_json(selection);
        recorded["sql"] = serde_json::Value::String(sql.to_owned());
        let key = super::ledger::digest_of(std::iter::once((0, sql)));
        let plan = Plan {
            kind: if options.dry_run { DRY_RUN_KIND } else { KIND },
            target_version: None,
            options: recorded,
            key: &key,
            started_by,
        };
        self.plan_rollout(plan, tenants, options).await
    }

    /// Runs `sql` on each of `tenants`, the configured number at a time; once `stop` is set,
    /// no further tenant starts. Every tenant's report, in the order they finished.
    pub(crate) async fn run_sql(
        &self,
        tenants: &[Tenant],
        sql: &str,
        commit: bool,
        stop: Option<&AtomicBool>,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Vec<TenantReport> {
        let go_on = move |_: &&Tenant| {
            let stopped = stop.is_some_and(|s| s.load(Ordering::SeqCst));
            std::future::ready(!stopped)
        };
        futures::stream::iter(tenants)
            .take_while(go_on)
            .map(|tenant| async move {
                let report = TenantReport {
                    tenant: tenant.slug.to_string(),
                    id: tenant.id.to_string(),
                    outcome: self.run_sql_on(tenant, sql, commit).await,
                };
                progress(&report);
                report
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await
    }

    async fn run_sql_on(&self, tenant: &Tenant, sql: &str, commit: bool) -> Outcome {
        if tenant.status != Status::Active {
            return Outcome::Skipped {
                reason: format!("tenant is {}; only active tenants run SQL", tenant.status),
            };
        }
        let failed = |error: String| Outcome::Failed {
            version: tenant.version,
            error,
        };
        let pool = match self.tenant_pool_for(tenant).await {
            Ok(pool) => pool,
            Err(e) => return failed(e.to_string()),
        };
        let outcome = match pool.begin().await {
            Err(e) => failed(e.to_string()),
            Ok(mut tx) => match tx.run_script(sql).await {
                Err(e) => {
                    let _ = tx.rollback().await;
                    failed(format!(
                        "the SQL failed{}: {e}; nothing was committed",
                        sqlstate(&e)
                    ))
                }
                Ok(rows) => {
                    let ended = match commit {
                        true => tx.commit().await,
                        false => tx.rollback().await,
                    };
                    match ended {
                        Ok(()) => Outcome::Ran {
                            rows,
                            committed: commit,
                        },
                        Err(e) => failed(format!("could not end the transaction: {e}")),
                    }
                }
            },
        };
        // A run over a whole fleet keeps no tenant's connections open behind it.
        drop(pool);
        self.forget_pool(tenant).await;
        outcome
    }
}

/// ` (SQLSTATE x)` when the database named one.
fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .map(|c| format!(" (SQLSTATE {c})"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}
