//! Rollout records: one row per rollout (who, when, target version, options, state) and one
//! per tenant it covers (position, wave, state, versions, error, lease). Runners claim items
//! with a lease and record each item's outcome; an item whose lease expired is claimed again
//! by any runner.
//!
//! A claim is one conditional `UPDATE` stamping the claimer's token on items still pending
//! (or leased past their expiry), then a read of the items carrying that token: two runners
//! can never hold one item, on any engine, without a transaction spanning both statements.

use std::fmt;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// A rollout's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Items remain to be run (also after a runner was interrupted: `--resume` continues).
    Running,
    /// Every item was attempted.
    Done,
    /// Stopped by its canary or failure budget; the rest are `not_attempted`.
    Stopped,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Done => "done",
            RolloutState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<RolloutState> {
        [
            RolloutState::Running,
            RolloutState::Done,
            RolloutState::Stopped,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| Error::CorruptCatalog {
            field: "rollouts.state",
            value: s.to_owned(),
        })
    }
}

impl fmt::Display for RolloutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An item's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Pending,
    Leased,
    /// Migrations were applied (dry run: would be applied).
    Migrated,
    Current,
    Failed,
    Skipped,
    NotAttempted,
    /// An SQL run's statements ran (dry run: and were rolled back).
    Ran,
    /// Versions were reverted (`migrate down`, `migrate undo`; dry run: would be).
    Reverted,
}

impl ItemState {
    pub const ALL: [ItemState; 9] = [
        ItemState::Pending,
        ItemState::Leased,
        ItemState::Migrated,
        ItemState::Current,
        ItemState::Failed,
        ItemState::Skipped,
        ItemState::NotAttempted,
        ItemState::Ran,
        ItemState::Reverted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Leased => "leased",
            ItemState::Migrated => "migrated",
            ItemState::Current => "current",
            ItemState::Failed => "failed",
            ItemState::Skipped => "skipped",
            ItemState::NotAttempted => "not_attempted",
            ItemState::Ran => "ran",
            ItemState::Reverted => "reverted",
        }
    }

    /// Whether the item is settled (nothing more will run for it).
    pub fn is_final(self) -> bool {
        !matches!(self, ItemState::Pending | ItemState::Leased)
    }

    fn parse(s: &str) -> Result<ItemState> {
        ItemState::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::CorruptCatalog {
                field: "rollout_items.state",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rollout record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: String,
    /// `up`, `dry-run`, …
    pub kind: String,
    pub state: RolloutState,
    pub target_version: Option<i64>,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The options it was started with, as JSON.
    pub options: serde_json::Value,
    pub total: i64,
}

/// One tenant's item in a rollout.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutItem {
    pub tenant_id: String,
    /// The tenant's slug, if its row still exists.
    pub tenant: Option<String>,
    pub position: i64,
    pub wave: i64,
    pub state: ItemState,
    pub from_version: Option<i64>,
    pub to_version: Option<i64>,
    pub error: Option<String>,
    pub finished_at: Option<String>,
}

/// How many items of a wave are in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveCount {
    pub wave: i64,
    pub state: ItemState,
    pub count: i64,
}

/// Where a running rollout stands ([`Catalog::rollout_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub failed: i64,
    /// The lowest wave with items pending or leased (`None`: every item is settled).
    pub open_wave: Option<i64>,
    /// An item of wave 0 failed.
    pub canary_failed: bool,
}

/// An item as a rollout is planned: its wave, and the version of a tenant the catalog
/// already shows current (settled as `current` at once).
#[derive(Debug, Clone, Copy)]
pub struct PlannedItem {
    pub tenant: TenantId,
    pub wave: i64,
    /// Settled at planning: the tenant needs no run, at this version.
    pub current: Option<i64>,
    /// Where a revert takes the tenant, as planned (kept as the pending item's `to_version`,
    /// and handed to the runner that claims it).
    pub target: Option<i64>,
}

/// An item a runner claimed: its tenant, and the version a revert planned for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub tenant: TenantId,
    pub target: Option<i64>,
}

/// A runner's record of one item it ran.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub tenant: TenantId,
    pub state: ItemState,
    pub from_version: Option<i64>,
    pub to_version: Option<i64>,
    pub error: Option<String>,
}

fn rollout_from_row(row: &AnyRow) -> Result<Rollout> {
    let read = || Error::catalog("read a rollout");
    let options: String = row.try_get("options").map_err(read())?;
    Ok(Rollout {
        id: row.try_get("id").map_err(read())?,
        kind: row.try_get("kind").map_err(read())?,
        state: RolloutState::parse(&row.try_get::<String, _>("state").map_err(read())?)?,
        target_version: row.try_get("target_version").map_err(read())?,
        started_by: row.try_get("started_by").map_err(read())?,
        started_at: row.try_get("started_at").map_err(read())?,
        finished_at: row.try_get("finished_at").map_err(read())?,
        options: serde_json::from_str(&options).unwrap_or(serde_json::Value::String(options)),
        total: row.try_get("total").map_err(read())?,
    })
}

/// The rollout columns, for `concat!` into constant queries.
macro_rules! rollout_columns {
    () => {
        "id, kind, state, target_version, started_by, started_at, finished_at, options, total"
    };
}

/// Rows per multi-row `INSERT` of items.
const INSERT_CHUNK: usize = 200;

impl Catalog {
    /// Records a new rollout and its items, positions in the order given.
    /// With an `active_key`, a running rollout already holding that key wins: its id is
    /// returned as `Err(id)` and nothing is written, so runners started together join one
    /// rollout.
    pub async fn create_rollout(
        &self,
        rollout: &Rollout,
        active_key: Option<&str>,
        items: &[PlannedItem],
    ) -> Result<std::result::Result<(), String>> {
        let action = "record a rollout";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        let inserted = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_rollouts (id, kind, state, target_version, started_by, \
             started_at, options, total, active_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&rollout.id)
        .bind(&rollout.kind)
        .bind(rollout.state.as_str())
        .bind(rollout.target_version)
        .bind(&rollout.started_by)
        .bind(&rollout.started_at)
        .bind(rollout.options.to_string())
        .bind(rollout.total)
        .bind(active_key)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && active_key.is_some() => {
                drop(tx);
                let existing = self.running_rollout(active_key.unwrap_or_default()).await?;
                return Ok(Err(existing.map(|r| r.id).unwrap_or_default()));
            }
            Err(e) => return Err(Error::catalog(action)(e)),
        }
        for (chunk_no, chunk) in items.chunks(INSERT_CHUNK).enumerate() {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO tenantry_rollout_items (rollout_id, tenant_id, position, wave, state, \
                 from_version, to_version, finished_at) VALUES {values}"
            );
            let at = now();
            let mut query = sqlx::query(self.engine.sql_built(sql));
            for (i, item) in chunk.iter().enumerate() {
                let position = i64::try_from(chunk_no * INSERT_CHUNK + i).unwrap_or(i64::MAX);
                let state = match item.current {
                    Some(_) => ItemState::Current,
                    None => ItemState::Pending,
                };
                query = query
                    .bind(&rollout.id)
                    .bind(item.tenant.to_string())
                    .bind(position)
                    .bind(item.wave)
                    .bind(state.as_str())
                    .bind(item.current)
                    .bind(item.current.or(item.target))
                    .bind(item.current.map(|_| at.clone()));
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(Error::catalog(action))?;
        }
        tx.commit().await.map_err(Error::catalog(action))?;
        Ok(Ok(()))
    }

    /// The running rollout holding `active_key`, if any.
    pub async fn running_rollout(&self, active_key: &str) -> Result<Option<Rollout>> {
        let sql = concat!(
            "SELECT ",
            rollout_columns!(),
            " FROM tenantry_rollouts WHERE active_key = ?"
        );
        let row = sqlx::query(self.engine.sql(sql))
            .bind(active_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::catalog("read a rollout"))?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// A rollout by id.
    pub async fn rollout(&self, id: &str) -> Result<Rollout> {
        let sql = concat!(
            "SELECT ",
            rollout_columns!(),
            " FROM tenantry_rollouts WHERE id = ?"
        );
        let row = sqlx::query(self.engine.sql(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::catalog("read a rollout"))?;
        match row {
            Some(row) => rollout_from_row(&row),
            None => Err(Error::RolloutNotFound { id: id.to_owned() }),
        }
    }

    /// The newest `limit` rollouts, newest first.
    pub async fn rollouts(&self, limit: i64) -> Result<Vec<Rollout>> {
        let sql = concat!(
            "SELECT ",
            rollout_columns!(),
            " FROM tenantry_rollouts ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(self.engine.sql(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("list rollouts"))?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// A rollout's items in position order, with their tenants' slugs.
    pub async fn rollout_items(&self, id: &str) -> Result<Vec<RolloutItem>> {
        let rows = sqlx::query(self.engine.sql(
            "SELECT i.tenant_id, t.slug, i.position, i.wave, i.state, i.from_version, \
             i.to_version, i.error, i.finished_at FROM tenantry_rollout_items i \
             LEFT JOIN tenantry_tenants t ON t.id = i.tenant_id \
             WHERE i.rollout_id = ? ORDER BY i.position",
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read a rollout's items"))?;
        rows.iter()
            .map(|row| {
                let read = || Error::catalog("read a rollout's items");
                Ok(RolloutItem {
                    tenant_id: row.try_get("tenant_id").map_err(read())?,
                    tenant: row.try_get("slug").map_err(read())?,
                    position: row.try_get("position").map_err(read())?,
                    wave: row.try_get("wave").map_err(read())?,
                    state: ItemState::parse(&row.try_get::<String, _>("state").map_err(read())?)?,
                    from_version: row.try_get("from_version").map_err(read())?,
                    to_version: row.try_get("to_version").map_err(read())?,
                    error: row.try_get("error").map_err(read())?,
                    finished_at: row.try_get("finished_at").map_err(read())?,
                })
            })
            .collect()
    }

    /// Where a running rollout stands, in a few indexed lookups whatever its size: how many
    /// items failed, the lowest wave with items not settled, and whether wave 0 (a canary)
    /// failed and is settled.
    pub async fn rollout_progress(&self, id: &str) -> Result<Progress> {
        let action = "read a rollout's progress";
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(self.engine.sql(sql))
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .map_err(Error::catalog(action))
        };
        let lowest = |state: &'static str| async move {
            sqlx::query_scalar::<_, Option<i64>>(self.engine.sql(
                "SELECT MIN(wave) FROM tenantry_rollout_items WHERE rollout_id = ? AND state = ?",
            ))
            .bind(id)
            .bind(state)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::catalog(action))
        };
        let failed = count(
            "SELECT COUNT(*) FROM tenantry_rollout_items WHERE rollout_id = ? AND state = 'failed'",
        )
        .await?;
        let open_wave = match (lowest("pending").await?, lowest("leased").await?) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let canary_failed = count(
            "SELECT COUNT(*) FROM tenantry_rollout_items WHERE rollout_id = ? \
             AND state = 'failed' AND wave = 0",
        )
        .await?
            > 0;
        Ok(Progress {
            failed,
            open_wave,
            canary_failed,
        })
    }

    /// How many items of each wave are in each state.
    pub async fn rollout_counts(&self, id: &str) -> Result<Vec<WaveCount>> {
        let rows = sqlx::query(self.engine.sql(
            "SELECT wave, state, COUNT(*) AS n FROM tenantry_rollout_items \
             WHERE rollout_id = ? GROUP BY wave, state ORDER BY wave",
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("count a rollout's items"))?;
        rows.iter()
            .map(|row| {
                let read = || Error::catalog("count a rollout's items");
                Ok(WaveCount {
                    wave: row.try_get("wave").map_err(read())?,
                    state: ItemState::parse(&row.try_get::<String, _>("state").map_err(read())?)?,
                    count: row.try_get("n").map_err(read())?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` items of `wave` for the runner claim `token` until
    /// `lease_until`: items pending, or leased with a lease that expired. Returns the
    /// tenants claimed, in position order.
    pub async fn claim_items(
        &self,
        id: &str,
        wave: i64,
        token: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        let action = "claim rollout items";
        let at = now();
        let candidates: Vec<String> = sqlx::query_scalar(self.engine.sql(
            "SELECT tenant_id FROM tenantry_rollout_items WHERE rollout_id = ? AND wave = ? \
             AND (state = 'pending' OR (state = 'leased' AND lease_until < ?)) \
             ORDER BY position LIMIT ?",
        ))
        .bind(id)
        .bind(wave)
        .bind(&at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog(action))?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; candidates.len()].join(", ");
        let sql = format!(
            "UPDATE tenantry_rollout_items SET state = 'leased', lease_owner = ?, lease_until = ? \
             WHERE rollout_id = ? AND tenant_id IN ({marks}) \
             AND (state = 'pending' OR (state = 'leased' AND lease_until < ?))"
        );
        let mut query = sqlx::query(self.engine.sql_built(sql))
            .bind(token)
            .bind(lease_until)
            .bind(id);
        for tenant in &candidates {
            query = query.bind(tenant);
        }
        query
            .bind(&at)
            .execute(&self.pool)
            .await
            .map_err(Error::catalog(action))?;
        let claimed: Vec<(String, Option<i64>)> = sqlx::query_as(self.engine.sql(
            "SELECT tenant_id, to_version FROM tenantry_rollout_items WHERE rollout_id = ? \
             AND lease_owner = ? AND state = 'leased' ORDER BY position",
        ))
        .bind(id)
        .bind(token)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog(action))?;
        claimed
            .into_iter()
            .map(|(tenant, target)| {
                Ok(Claimed {
                    tenant: TenantId::parse(&tenant)?,
                    target,
                })
            })
            .collect()
    }

    /// Extends the leases the claim `token` holds.
    pub async fn renew_leases(&self, id: &str, token: &str, lease_until: &str) -> Result<()> {
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_rollout_items SET lease_until = ? \
             WHERE rollout_id = ? AND lease_owner = ? AND state = 'leased'",
        ))
        .bind(lease_until)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("renew rollout leases"))?;
        Ok(())
    }

    /// Records the outcomes of items the claim `token` holds, in one transaction; an item
    /// whose lease another runner took over meanwhile is left to that runner.
    pub async fn finish_items(&self, id: &str, token: &str, results: &[ItemResult]) -> Result<()> {
        let action = "record rollout items";
        let at = now();
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        for r in results {
            sqlx::query(self.engine.sql(
                "UPDATE tenantry_rollout_items SET state = ?, from_version = ?, to_version = ?, \
                 error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL \
                 WHERE rollout_id = ? AND tenant_id = ? AND lease_owner = ? AND state = 'leased'",
            ))
            .bind(r.state.as_str())
            .bind(r.from_version)
            .bind(r.to_version)
            .bind(r.error.clone())
            .bind(&at)
            .bind(id)
            .bind(r.tenant.to_string())
            .bind(token)
            .execute(&mut *tx)
            .await
            .map_err(Error::catalog(action))?;
        }
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Gives back leases the claim `token` holds without a result (a runner that stops).
    pub async fn release_items(&self, id: &str, token: &str) -> Result<()> {
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_rollout_items SET state = 'pending', lease_owner = NULL, \
             lease_until = NULL WHERE rollout_id = ? AND lease_owner = ? AND state = 'leased'",
        ))
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("release rollout items"))?;
        Ok(())
    }

    /// Marks every pending item `not_attempted` and the rollout `stopped`.
    pub async fn stop_rollout(&self, id: &str) -> Result<()> {
        let action = "stop a rollout";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_rollout_items SET state = 'not_attempted' \
             WHERE rollout_id = ? AND state = 'pending'",
        ))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
        self.end_rollout(&mut tx, id, RolloutState::Stopped)
            .await
            .map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Marks a rollout whose every item is settled `done` (a no-op if another runner did).
    pub async fn complete_rollout(&self, id: &str) -> Result<()> {
        let action = "complete a rollout";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        self.end_rollout(&mut tx, id, RolloutState::Done)
            .await
            .map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))
    }

    async fn end_rollout(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &str,
        state: RolloutState,
    ) -> sqlx::Result<()> {
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_rollouts SET state = ?, finished_at = ?, active_key = NULL \
             WHERE id = ? AND state = 'running'",
        ))
        .bind(state.as_str())
        .bind(now())
        .bind(id)
        .execute(conn)
        .await?;
        Ok(())
    }
}
