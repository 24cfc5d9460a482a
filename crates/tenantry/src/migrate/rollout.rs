//! Rollouts controlled like a deploy ([docs/0003](../../../../docs/0003-fleet-rollouts.md)):
//! a rollout is planned once into the catalog (its tenants in order, in waves: a canary wave
//! first, then waves of a fixed size), then run by one or more runners that claim chunks of
//! its items with a lease, run them, and record each outcome. A runner stops claiming when
//! the canary failed, when failures pass the budget (the rest are `not_attempted`), or when
//! asked to stop (the rollout stays `running`, for `--resume`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::MigrationSet;
use super::fleet::{FleetReport, Mode, Outcome, TenantReport, is_current, units};
use super::revert_rollout::{self, Targets};
use crate::Tenantry;
use crate::catalog::{
    ItemResult, ItemState, PlannedItem, Rollout, RolloutState, Status, Strategy, Tenant,
};
use crate::error::{Error, Result};
use crate::ident::TenantId;
use crate::storage::Sessions;

/// The rollout kind of `migrate --all`.
pub const UP_KIND: &str = "up";
/// The rollout kind of `migrate --all --dry-run`.
pub const DRY_RUN_KIND: &str = "dry-run";

/// The most failures a rollout takes before it stops starting tenants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    Count(u64),
    Percent(f64),
}

impl Budget {
    /// The most failures allowed among `total` items.
    fn allowed(self, total: i64) -> i64 {
        match self {
            Budget::Count(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Budget::Percent(p) => ((total.max(0) as f64) * p / 100.0).floor() as i64,
        }
    }

    /// Whether `failed` of `total` items is past the budget.
    pub fn exceeded(self, failed: i64, total: i64) -> bool {
        failed > self.allowed(total)
    }

    /// How many tenants may start at once without the budget being passed by them all
    /// failing: one more than the failures still allowed.
    fn room(self, failed: i64, total: i64) -> i64 {
        (self.allowed(total) - failed + 1).max(0)
    }
}

impl FromStr for Budget {
    type Err = Error;

    /// `N` (failures) or `P%` (of the rollout's tenants).
    fn from_str(s: &str) -> Result<Budget> {
        let bad = || Error::RolloutOption {
            reason: format!("--max-failures takes a count or a percentage (5, 10%), not {s:?}"),
        };
        match s.trim().strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(Budget::Percent(p))
            }
            None => s.trim().parse().map(Budget::Count).map_err(|_| bad()),
        }
    }
}

/// What a rollout orders its tenants by (before catalog order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    Server,
    Strategy,
    /// The value of labels `<key>=<value>` (tenants without one last).
    Label(String),
}

impl FromStr for OrderKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<OrderKey> {
        match s {
            "server" => Ok(OrderKey::Server),
            "strategy" => Ok(OrderKey::Strategy),
            _ => match s.strip_prefix("label:") {
                Some(key) if !key.is_empty() => Ok(OrderKey::Label(key.to_owned())),
                _ => Err(Error::RolloutOption {
                    reason: format!("--order-by takes server, strategy or label:<key>, not {s:?}"),
                }),
            },
        }
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderKey::Server => f.write_str("server"),
            OrderKey::Strategy => f.write_str("strategy"),
            OrderKey::Label(key) => write!(f, "label:{key}"),
        }
    }
}

/// Which tenants a rollout covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every tenant that is not deleted.
    All,
    /// These slugs (an unknown one is an error before anything runs).
    Slugs(Vec<String>),
}

/// How a rollout is planned and run.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// Only tenants on these servers / of these strategies / with all these labels.
    pub servers: Vec<String>,
    pub strategies: Vec<Strategy>,
    pub labels: Vec<String>,
    pub order_by: Vec<OrderKey>,
    /// The first N tenants form a wave of their own; any failure there stops the rollout.
    pub canary: usize,
    /// Then waves of this many tenants, one after the other (none: one wave).
    pub wave_size: Option<usize>,
    pub max_failures: Option<Budget>,
    pub dry_run: bool,
    /// How long a claimed item stays a runner's without being renewed.
    pub lease: Duration,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            servers: Vec::new(),
            strategies: Vec::new(),
            labels: Vec::new(),
            order_by: Vec::new(),
            canary: 0,
            wave_size: None,
            max_failures: None,
            dry_run: false,
            lease: Duration::from_secs(30),
        }
    }
}

impl RolloutOptions {
    pub(crate) fn to_json(&self, selection: &Selection) -> serde_json::Value {
        serde_json::json!({
            "selection": match selection {
                Selection::All => serde_json::json!("all"),
                Selection::Slugs(slugs) => serde_json::json!(slugs),
            },
            "servers": self.servers,
            "strategies": self.strategies,
            "labels": self.labels,
            "order_by": self.order_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "canary": self.canary,
            "wave_size": self.wave_size,
            "max_failures": self.max_failures,
            "dry_run": self.dry_run,
            "lease_secs": self.lease.as_secs(),
        })
    }
}

/// Items claimed at once per worker (`concurrency`).
const CHUNK_PER_WORKER: usize = 32;

/// Why a runner stopped before every item was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A tenant of the canary wave failed.
    Canary,
    /// Failures passed `--max-failures`.
    Budget,
    /// Asked to stop (Ctrl-C): the tenants in flight were finished and recorded.
    Interrupted,
}

/// What one runner did in a rollout, and where the rollout stands.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutRun {
    pub rollout: String,
    /// This runner joined a rollout another had started.
    pub joined: bool,
    pub stopped: Option<StopReason>,
    /// The rollout's items per state, across every runner.
    pub counts: BTreeMap<String, i64>,
    /// The tenants this runner ran: every one that failed or was skipped, and the first
    /// [`REPORT_ALL_UP_TO`] of the others (each tenant's outcome is also in the rollout's
    /// items, and was handed to `progress` as it finished).
    pub report: FleetReport,
    /// How many tenants this runner ran that succeeded but are not in `report` (past
    /// [`REPORT_ALL_UP_TO`]), so that a runner's memory does not grow with the fleet.
    pub omitted: usize,
}

/// How many tenants that succeeded a runner's report keeps.
pub const REPORT_ALL_UP_TO: usize = 1_000;

impl Tenantry {
    /// Plans a rollout of `set` into the catalog and returns its id. With the same set and
    /// options, a rollout already running is joined instead (its id, `true`), so runners
    /// started together split one rollout. Refuses options that select nothing usable.
    pub async fn start_rollout(
        &self,
        set: &MigrationSet,
        selection: &Selection,
        options: &RolloutOptions,
        started_by: &str,
    ) -> Result<(String, bool)> {
        let kind = if options.dry_run {
            DRY_RUN_KIND
        } else {
            UP_KIND
        };
        // A tenant the catalog shows current is settled at planning: no runner opens it.
        let digest = set.digest();
        let items = self
            .select_map(selection, options, |t| {
                (
                    t.id,
                    is_current(&t, set, &digest).then_some(t.version),
                    None,
                )
            })
            .await?;
        let plan = Plan {
            kind,
            target_version: Some(set.latest()),
            options: options.to_json(selection),
            key: &digest,
            started_by,
        };
        self.plan_rollout(plan, items, options).await
    }

    /// Writes a rollout's record and items: each tenant in order with, for one that needs
    /// no run, the version it is settled at, and for a revert the version planned for it.
    /// Joins a running rollout of the same kind, key and options.
    pub(crate) async fn plan_rollout(
        &self,
        plan: Plan<'_>,
        tenants: Vec<(TenantId, Option<i64>, Option<i64>)>,
        options: &RolloutOptions,
    ) -> Result<(String, bool)> {
        let active_key = format!(
            "{}:{}:{}",
            plan.kind,
            &plan.key[..plan.key.len().min(16)],
            &super::ledger::digest_of(std::iter::once((0, plan.options.to_string().as_str())))
                [..16]
        );
        let waves = waves(tenants.len(), options.canary, options.wave_size);
        let items: Vec<PlannedItem> = tenants
            .into_iter()
            .zip(waves)
            .map(|((tenant, current, target), wave)| PlannedItem {
                tenant,
                wave,
                current,
                target,
            })
            .collect();
        let rollout = Rollout {
            id: ulid::Ulid::new().to_string(),
            kind: plan.kind.to_owned(),
            state: RolloutState::Running,
            target_version: plan.target_version,
            started_by: plan.started_by.to_owned(),
            started_at: crate::catalog::now(),
            finished_at: None,
            options: plan.options,
            total: i64::try_from(items.len()).unwrap_or(i64::MAX),
        };
        match self
            .catalog
            .create_rollout(&rollout, Some(&active_key), &items)
            .await?
        {
            Ok(()) => {
                let detail = format!("{} over {} tenants", rollout.kind, rollout.total);
                let target = Some(format!("rollout:{}", rollout.id));
                self.audited(None, "rollout.start", target, Some(detail))
                    .await;
                Ok((rollout.id, false))
            }
            Err(existing) => Ok((existing, true)),
        }
    }

    /// The tenants a rollout covers, filtered and in order.
    pub(crate) async fn select(
        &self,
        selection: &Selection,
        options: &RolloutOptions,
    ) -> Result<Vec<Tenant>> {
        self.select_map(selection, options, |t| t).await
    }

    /// The tenants a rollout covers, filtered and in order, each kept as `keep` makes it
    /// from its catalog row: the rest of the row is dropped as it is read, so a plan over a
    /// large fleet holds only what it needs of each tenant.
    pub(crate) async fn select_map<T>(
        &self,
        selection: &Selection,
        options: &RolloutOptions,
        mut keep: impl FnMut(Tenant) -> T,
    ) -> Result<Vec<T>> {
        let labels = match options.labels.is_empty() && options.order_by.is_empty() {
            true => HashMap::new(),
            false => self.catalog.labels().await?,
        };
        let none = Vec::new();
        let labels_of = |t: &Tenant| labels.get(&t.id).unwrap_or(&none);
        let wanted = |t: &Tenant| {
            (options.servers.is_empty() || options.servers.iter().any(|s| s == t.server.as_str()))
                && (options.strategies.is_empty() || options.strategies.contains(&t.strategy))
                && options.labels.iter().all(|l| labels_of(t).contains(l))
        };
        let order_key = |t: &Tenant| -> Vec<(bool, String)> {
            options
                .order_by
                .iter()
                .map(|key| match key {
                    OrderKey::Server => (false, t.server.to_string()),
                    OrderKey::Strategy => (false, t.strategy.to_string()),
                    OrderKey::Label(key) => {
                        let prefix = format!("{key}=");
                        match labels_of(t).iter().find_map(|l| l.strip_prefix(&prefix)) {
                            Some(value) => (false, value.to_owned()),
                            None => (true, String::new()),
                        }
                    }
                })
                .collect()
        };
        let mut kept: Vec<(Vec<(bool, String)>, T)> = Vec::new();
        let mut take = |t: Tenant| {
            if wanted(&t) {
                kept.push((order_key(&t), keep(t)));
            }
        };
        match selection {
            Selection::All => {
                self.catalog
                    .each_tenant(|t| {
                        if t.status != Status::Deleted {
                            take(t);
                        }
                    })
                    .await?
            }
            Selection::Slugs(slugs) => {
                let mut seen = HashSet::new();
                for slug in slugs {
                    let tenant = self.catalog.tenant(slug).await?;
                    // A tenant named twice is one item.
                    if seen.insert(tenant.id) {
                        take(tenant);
                    }
                }
            }
        }
        // A stable sort: catalog order breaks ties.
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(kept.into_iter().map(|(_, t)| t).collect())
    }

    /// Runs a rollout's items until none is left, or until it must stop; joins runners
    /// already at work. `stop` set (Ctrl-C): the chunk in flight is finished and recorded,
    /// and the rollout stays `running` for `--resume`. Calls `progress` as each tenant
    /// finishes.
    pub async fn run_rollout(
        &self,
        id: &str,
        set: &MigrationSet,
        stop: &AtomicBool,
        progress: &(dyn Fn(&TenantReport) + Sync),
    ) -> Result<RolloutRun> {
        let rollout = self.catalog.rollout(id).await?;
        let options = &rollout.options;
        check_resumable(
            &rollout,
            set,
            matches!(rollout.kind.as_str(), UP_KIND | DRY_RUN_KIND),
        )?;
        let work = match rollout.kind.as_str() {
            DRY_RUN_KIND => Work::Migrate(Mode::DryRun),
            kind @ (super::sql_run::KIND | super::sql_run::DRY_RUN_KIND) => Work::Sql {
                sql: options["sql"]
                    .as_str()
                    .ok_or_else(|| Error::CorruptCatalog {
                        field: "rollouts.options",
                        value: format!("rollout {id} has no SQL"),
                    })?
                    .to_owned(),
                commit: kind == super::sql_run::KIND,
            },
            kind => match self.revert_targets(&rollout, set).await? {
                Some(targets) => Work::Revert {
                    targets,
                    commit: kind == revert_rollout::DOWN_KIND || kind == revert_rollout::UNDO_KIND,
                },
                None => Work::Migrate(Mode::Apply),
            },
        };
        let canary = options["canary"].as_u64().unwrap_or(0) > 0;
        let budget = budget_of(&options["max_failures"]);
        let lease = Duration::from_secs(options["lease_secs"].as_u64().unwrap_or(30).max(1));
        let runner = ulid::Ulid::new().to_string();
        let sessions = Sessions::new();
        // Enough to keep every worker busy between two catalog round trips.
        let chunk = i64::try_from(self.config.concurrency.max(1) * CHUNK_PER_WORKER).unwrap_or(1);
        let mut reports = Bounded::new(REPORT_ALL_UP_TO);
        let mut claims = 0u64;
        let stopped = loop {
            if stop.load(Ordering::SeqCst) {
                break Some(StopReason::Interrupted);
            }
            let now = self.catalog.rollout_progress(id).await?;
            let failed = now.failed;
            if budget.is_some_and(|b| b.exceeded(failed, rollout.total)) {
                break Some(StopReason::Budget);
            }
            // The canary wave failed and has settled: stop before wave 1.
            if canary && now.canary_failed && now.open_wave != Some(0) {
                break Some(StopReason::Canary);
            }
            let Some(wave) = now.open_wave else {
                break None;
            };
            claims += 1;
            let token = format!("{runner}/{claims}");
            let until = lease_until(lease);
            // Never more at once than the failure budget could absorb.
            let limit = budget.map_or(chunk, |b| chunk.min(b.room(failed, rollout.total)));
            let claimed = self
                .catalog
                .claim_items(id, wave, &token, &until, limit)
                .await?;
            if claimed.is_empty() {
                // The wave's last items are another runner's: wait for them (or for their
                // leases to expire).
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let ids: Vec<TenantId> = claimed.iter().map(|c| c.tenant).collect();
            let tenants = self.claimed_tenants(&ids).await?;
            let done = match &work {
                Work::Migrate(mode) => {
                    let run = self.run_units(
                        set,
                        units(tenants.clone()),
                        *mode,
                        &sessions,
                        Some(stop),
                        progress,
                    );
                    self.renewing(id, &token, lease, run).await?
                }
                Work::Sql { sql, commit } => {
                    let run = self.run_sql(&tenants, sql, *commit, Some(stop), progress);
                    self.renewing(id, &token, lease, run).await?
                }
                Work::Revert { targets, commit } => {
                    let planned: HashMap<TenantId, i64> = claimed
                        .iter()
                        .filter_map(|c| Some((c.tenant, c.target?)))
                        .collect();
                    let run = self.run_reverts(
                        tenants.clone(),
                        set,
                        targets,
                        &planned,
                        *commit,
                        stop,
                        progress,
                    );
                    self.renewing(id, &token, lease, run).await?
                }
            };
            let mut results = item_results(&tenants, &done);
            // A tenant purged since the rollout was planned has nothing left to run.
            results.extend(
                ids.iter()
                    .filter(|c| !tenants.iter().any(|t| t.id == **c))
                    .map(|gone| ItemResult {
                        tenant: *gone,
                        state: ItemState::Skipped,
                        from_version: None,
                        to_version: None,
                        error: Some("the tenant was purged".to_owned()),
                    }),
            );
            self.catalog.finish_items(id, &token, &results).await?;
            // Claimed but not started (a stop came): back to pending for whoever resumes.
            self.catalog.release_items(id, &token).await?;
            reports.extend(done);
        };
        sessions.close().await;
        match stopped {
            Some(StopReason::Canary | StopReason::Budget) => self.catalog.stop_rollout(id).await?,
            Some(StopReason::Interrupted) => {}
            None => self.catalog.complete_rollout(id).await?,
        }
        let counts = self.catalog.rollout_counts(id).await?.into_iter().fold(
            BTreeMap::new(),
            |mut acc, c| {
                *acc.entry(c.state.to_string()).or_insert(0) += c.count;
                acc
            },
        );
        Ok(RolloutRun {
            rollout: id.to_owned(),
            joined: false,
            stopped,
            counts,
            omitted: reports.omitted,
            report: FleetReport {
                tenants: reports.reports,
            },
        })
    }

    /// The claimed tenants as the catalog has them now, in claim order.
    async fn claimed_tenants(&self, claimed: &[TenantId]) -> Result<Vec<Tenant>> {
        let mut found = self.catalog.tenants_by_ids(claimed).await?;
        found.sort_by_key(|t| claimed.iter().position(|id| *id == t.id));
        Ok(found)
    }

    /// Awaits `work`, renewing the claim's leases every third of their length meanwhile.
    async fn renewing<T>(
        &self,
        id: &str,
        token: &str,
        lease: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                _ = tick.tick() => {
                    if let Err(e) = self.catalog.renew_leases(id, token, &lease_until(lease)).await {
                        tracing::warn!(rollout = id, error = %e, "could not renew leases");
                    }
                }
            }
        }
    }
}

/// A runner's report: every tenant that failed or was skipped, the first `cap` of the
/// others, and a count of the rest.
struct Bounded {
    reports: Vec<TenantReport>,
    cap: usize,
    kept: usize,
    omitted: usize,
}

impl Bounded {
    fn new(cap: usize) -> Bounded {
        Bounded {
            reports: Vec::new(),
            cap,
            kept: 0,
            omitted: 0,
        }
    }

    fn extend(&mut self, done: Vec<TenantReport>) {
        for report in done {
            let problem = matches!(
                report.outcome,
                Outcome::Failed { .. } | Outcome::Skipped { .. }
            );
            if problem || self.kept < self.cap {
                self.kept += usize::from(!problem);
                self.reports.push(report);
            } else {
                self.omitted += 1;
            }
        }
    }
}

/// What a rollout's runners do to each tenant.
enum Work {
    Migrate(Mode),
    Sql {
        sql: String,
        commit: bool,
    },
    /// Revert to each tenant's target (`commit` false: a dry run).
    Revert {
        targets: Targets,
        commit: bool,
    },
}

/// A rollout to plan: its kind, target, options as recorded, and the key that tells a
/// second start of the same rollout (a set's digest, an SQL text's).
pub(crate) struct Plan<'a> {
    pub kind: &'static str,
    pub target_version: Option<i64>,
    pub options: serde_json::Value,
    pub key: &'a str,
    pub started_by: &'a str,
}

/// Refuses to run a rollout that is over, or (`migrates`) whose target the migration set no
/// longer matches.
fn check_resumable(rollout: &Rollout, set: &MigrationSet, migrates: bool) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::RolloutMismatch {
            id: rollout.id.clone(),
            reason,
        })
    };
    if rollout.state != RolloutState::Running {
        return refuse(format!("it is {}", rollout.state));
    }
    if migrates && rollout.target_version != Some(set.latest()) {
        return refuse(format!(
            "it targets version {}, the migration directory's latest is {}",
            rollout.target_version.unwrap_or(0),
            set.latest()
        ));
    }
    Ok(())
}

fn budget_of(value: &serde_json::Value) -> Option<Budget> {
    if let Some(n) = value.get("count").and_then(serde_json::Value::as_u64) {
        return Some(Budget::Count(n));
    }
    value
        .get("percent")
        .and_then(serde_json::Value::as_f64)
        .map(Budget::Percent)
}

/// Each item's wave: the canary's tenants wave 0, then waves of `size` (one wave without).
fn waves(n: usize, canary: usize, size: Option<usize>) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let wave = match (i < canary, size) {
                (true, _) => 0,
                (false, Some(size)) if size > 0 => 1 + (i - canary) / size,
                (false, _) => 1,
            };
            i64::try_from(wave).unwrap_or(i64::MAX)
        })
        .collect()
}

fn lease_until(lease: Duration) -> String {
    let until = chrono::Utc::now()
        + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::seconds(30));
    until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Each claimed tenant's item outcome, for those the run reported (a stop leaves the rest
/// unstarted).
fn item_results(tenants: &[Tenant], reports: &[TenantReport]) -> Vec<ItemResult> {
    let by_id: HashMap<&str, &TenantReport> = reports.iter().map(|r| (r.id.as_str(), r)).collect();
    tenants
        .iter()
        .filter_map(|t| {
            let outcome = &by_id.get(t.id.to_string().as_str())?.outcome;
            let (state, to, error) = match outcome {
                Outcome::Migrated { to, .. } => (ItemState::Migrated, Some(*to), None),
                Outcome::Reverted { to, .. } => (ItemState::Reverted, Some(*to), None),
                Outcome::Current { version } => (ItemState::Current, Some(*version), None),
                Outcome::Failed { version, error } => {
                    (ItemState::Failed, Some(*version), Some(error.clone()))
                }
                Outcome::Skipped { reason } => (ItemState::Skipped, None, Some(reason.clone())),
                Outcome::Ran { .. } => (ItemState::Ran, Some(t.version), None),
            };
            Some(ItemResult {
                tenant: t.id,
                state,
                from_version: Some(t.version),
                // A dry run moves nothing: `to` is what it would reach.
                to_version: to,
                error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_compare() {
        assert_eq!("3".parse::<Budget>().ok(), Some(Budget::Count(3)));
        assert_eq!("10%".parse::<Budget>().ok(), Some(Budget::Percent(10.0)));
        assert!("x".parse::<Budget>().is_err());
        assert!("120%".parse::<Budget>().is_err());
        assert!(!Budget::Count(1).exceeded(1, 10));
        assert!(Budget::Count(1).exceeded(2, 10));
        assert!(Budget::Count(0).exceeded(1, 10));
        assert!(!Budget::Percent(10.0).exceeded(1, 10));
        assert!(Budget::Percent(10.0).exceeded(2, 10));
        assert_eq!(Budget::Count(1).room(0, 10), 2);
        assert_eq!(Budget::Count(1).room(1, 10), 1);
        assert_eq!(Budget::Percent(25.0).room(0, 10), 3);
    }

    #[test]
    fn a_report_keeps_every_problem_and_a_bounded_number_of_successes() {
        let line = |tenant: &str, outcome: Outcome| TenantReport {
            tenant: tenant.to_owned(),
            id: tenant.to_owned(),
            outcome,
        };
        let ok = |t: &str| line(t, Outcome::Current { version: 1 });
        let failed = |t: &str| {
            line(
                t,
                Outcome::Failed {
                    version: 1,
                    error: "boom".into(),
                },
            )
        };
        let mut report = Bounded::new(2);
        report.extend(vec![ok("a"), failed("b"), ok("c")]);
        report.extend(vec![ok("d"), failed("e"), ok("f")]);
        let kept: Vec<&str> = report.reports.iter().map(|r| r.tenant.as_str()).collect();
        assert_eq!(kept, vec!["a", "b", "c", "e"]);
        assert_eq!(report.omitted, 2);
    }

    #[test]
    fn canary_then_waves() {
        assert_eq!(waves(7, 2, Some(2)), vec![0, 0, 1, 1, 2, 2, 3]);
        assert_eq!(waves(3, 0, None), vec![1, 1, 1]);
        assert_eq!(waves(3, 5, None), vec![0, 0, 0]);
    }

    #[test]
    fn order_keys_parse() {
        assert_eq!("server".parse::<OrderKey>().ok(), Some(OrderKey::Server));
        assert_eq!(
            "label:tier".parse::<OrderKey>().ok(),
            Some(OrderKey::Label("tier".into()))
        );
        assert!("label:".parse::<OrderKey>().is_err());
    }
}
