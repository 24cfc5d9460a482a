//! Rollouts controlled like a deploy: a canary that fails stops the rollout, a failure budget
//! stops starting tenants, a dry run changes nothing, an interrupted rollout resumes where it
//! stopped, two runners split one rollout, a killed runner's lease expires and another
//! finishes its tenants, and labels select and order tenants. Every backend.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tenantry::{
    Budget, ItemState, OrderKey, Outcome, RolloutOptions, RolloutState, Selection, Settings,
    StopReason,
};
use tenantry_testkit::{Backend, Fixture, on_each_backend, on_transactional_backends};

on_each_backend!(
    a_failing_canary_stops_the_rollout_before_the_rest,
    past_the_failure_budget_no_tenant_is_started,
    an_interrupted_rollout_resumes_where_it_stopped,
    two_runners_split_one_rollout,
    a_killed_runners_lease_expires_and_another_runner_finishes,
    labels_select_and_order_a_rollout,
    a_tenant_purged_after_planning_is_skipped,
    undo_reverts_exactly_what_a_rollout_moved,
);

on_transactional_backends!(a_dry_run_applies_nothing_and_reports_what_would_run);

const BUDGET: &str = "20250101000009_add_budget.sql";
const BUDGET_SQL: &str = "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;";
/// A migration that fails on a tenant where `budget_log` was made beforehand.
const LOG: &str = "20250101000009_create_budget_log.sql";
const LOG_SQL: &str = "CREATE TABLE budget_log (id BIGINT NOT NULL PRIMARY KEY);";
const BASE: i64 = 20250101000008;
const NEXT: i64 = 20250101000009;

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// Creates `slugs` in order (catalog order is creation order).
async fn fleet(fx: &Fixture, slugs: &[&str]) {
    for slug in slugs {
        fx.create(slug).await.expect("create");
    }
}

/// Makes the `budget_log` migration fail on `slug`.
async fn poison(fx: &Fixture, slug: &str) {
    let tenant = fx.tenant(slug).await;
    fx.execute(&tenant, "CREATE TABLE budget_log (other INTEGER)")
        .await;
}

async fn a_failing_canary_stops_the_rollout_before_the_rest(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    poison(&fx, "a").await;
    fx.write_migration(LOG, LOG_SQL);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let options = RolloutOptions {
        canary: 1,
        wave_size: Some(2),
        ..RolloutOptions::default()
    };
    let (id, joined) = t
        .start_rollout(&set, &Selection::All, &options, "test")
        .await
        .expect("start");
    assert!(!joined);
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert_eq!(run.stopped, Some(StopReason::Canary));
    assert_eq!(run.report.tenants.len(), 1, "only the canary ran");
    assert!(matches!(
        run.report.tenants[0].outcome,
        Outcome::Failed { .. }
    ));
    assert_eq!(run.counts.get("failed"), Some(&1));
    assert_eq!(run.counts.get("not_attempted"), Some(&3));
    assert_eq!(fx.versions(&["a", "b", "c", "d"]).await, vec![BASE; 4]);
    let rollout = t.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.state, RolloutState::Stopped);
    let items = t.catalog().rollout_items(&id).await.expect("items");
    let waves: Vec<i64> = items.iter().map(|i| i.wave).collect();
    assert_eq!(waves, vec![0, 1, 1, 2]);
    assert_eq!(items[0].tenant.as_deref(), Some("a"));
    assert!(
        items[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("budget_log"))
    );
    // A stopped rollout is over: it cannot be resumed.
    let refused = t.run_rollout(&id, &set, &never(), &|_| {}).await;
    assert!(matches!(
        refused,
        Err(tenantry::Error::RolloutMismatch { .. })
    ));
    fx.cleanup().await;
}

async fn past_the_failure_budget_no_tenant_is_started(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d", "e", "f"]).await;
    poison(&fx, "b").await;
    poison(&fx, "c").await;
    fx.write_migration(LOG, LOG_SQL);
    let t = fx
        .reopen(Settings {
            concurrency: Some(2),
            ..Settings::default()
        })
        .await;
    let set = t.migrations().expect("set");
    let options = RolloutOptions {
        max_failures: Some(Budget::Count(1)),
        ..RolloutOptions::default()
    };
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &options, "test")
        .await
        .expect("start");
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert_eq!(run.stopped, Some(StopReason::Budget));
    assert_eq!(run.counts.get("failed"), Some(&2));
    let items = t.catalog().rollout_items(&id).await.expect("items");
    let states: Vec<(String, ItemState)> = items
        .iter()
        .map(|i| (i.tenant.clone().unwrap_or_default(), i.state))
        .collect();
    // a and b started together (one failure allowed, so two at most), then c alone.
    assert_eq!(
        states,
        vec![
            ("a".into(), ItemState::Migrated),
            ("b".into(), ItemState::Failed),
            ("c".into(), ItemState::Failed),
            ("d".into(), ItemState::NotAttempted),
            ("e".into(), ItemState::NotAttempted),
            ("f".into(), ItemState::NotAttempted),
        ]
    );
    assert_eq!(
        fx.versions(&["a", "b", "c", "d", "e", "f"]).await,
        vec![NEXT, BASE, BASE, BASE, BASE, BASE]
    );
    fx.cleanup().await;
}

async fn a_dry_run_applies_nothing_and_reports_what_would_run(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b"]).await;
    poison(&fx, "b").await;
    fx.write_migration(LOG, LOG_SQL);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let options = RolloutOptions {
        dry_run: true,
        ..RolloutOptions::default()
    };
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &options, "test")
        .await
        .expect("start");
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    let outcome = |slug: &str| {
        run.report
            .tenants
            .iter()
            .find(|r| r.tenant == slug)
            .map(|r| r.outcome.clone())
    };
    assert!(
        matches!(outcome("a"), Some(Outcome::Migrated { to, .. }) if to == NEXT),
        "{:?}",
        outcome("a")
    );
    assert!(matches!(outcome("b"), Some(Outcome::Failed { .. })));
    let a = fx.tenant("a").await;
    assert_eq!(a.version, BASE, "the catalog records nothing");
    assert_eq!(fx.ledger(&a).await.len(), 8, "the ledger is untouched");
    assert!(!fx.tables(&a).await.contains("budget_log"), "rolled back");
    assert_eq!(
        t.catalog().rollout(&id).await.expect("rollout").kind,
        "dry-run"
    );
    fx.cleanup().await;
}

async fn an_interrupted_rollout_resumes_where_it_stopped(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    fx.write_migration(BUDGET, BUDGET_SQL);
    let t = fx
        .reopen(Settings {
            concurrency: Some(1),
            ..Settings::default()
        })
        .await;
    let set = t.migrations().expect("set");
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &RolloutOptions::default(), "test")
        .await
        .expect("start");
    // Ctrl-C as the first tenant finishes: that tenant is recorded, nothing else starts.
    let stop = AtomicBool::new(false);
    let run = t
        .run_rollout(&id, &set, &stop, &|_| stop.store(true, Ordering::SeqCst))
        .await
        .expect("run");
    assert_eq!(run.stopped, Some(StopReason::Interrupted));
    assert_eq!(run.report.migrated(), 1);
    assert_eq!(run.counts.get("migrated"), Some(&1));
    assert_eq!(run.counts.get("pending"), Some(&3));
    let rollout = t.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.state, RolloutState::Running, "resumable");

    let resumed = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("resume");
    assert_eq!(resumed.stopped, None);
    assert_eq!(resumed.report.migrated(), 3, "only the rest");
    assert_eq!(resumed.counts.get("migrated"), Some(&4));
    assert_eq!(fx.versions(&["a", "b", "c", "d"]).await, vec![NEXT; 4]);
    let rollout = t.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.state, RolloutState::Done);
    assert!(rollout.finished_at.is_some());
    fx.cleanup().await;
}

async fn two_runners_split_one_rollout(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let slugs: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for slug in &slugs {
        fx.create(slug).await.expect("create");
    }
    fx.write_migration(BUDGET, BUDGET_SQL);
    let one = fx.reopen(Settings::default()).await;
    let two = fx.reopen(Settings::default()).await;
    let set = one.migrations().expect("set");
    let options = RolloutOptions::default();
    let (id, joined) = one
        .start_rollout(&set, &Selection::All, &options, "one")
        .await
        .expect("start");
    assert!(!joined);
    // The same rollout started again while it runs is joined, not duplicated.
    let (same, joined) = two
        .start_rollout(&set, &Selection::All, &options, "two")
        .await
        .expect("join");
    assert_eq!(same, id);
    assert!(joined);
    let (stop_one, stop_two) = (never(), never());
    let (a, b) = tokio::join!(
        one.run_rollout(&id, &set, &stop_one, &|_| {}),
        two.run_rollout(&id, &set, &stop_two, &|_| {}),
    );
    let (a, b) = (a.expect("runner one"), b.expect("runner two"));
    let mut seen: Vec<String> = a
        .report
        .tenants
        .iter()
        .chain(&b.report.tenants)
        .map(|r| r.tenant.clone())
        .collect();
    seen.sort();
    let mut expected = slugs.clone();
    expected.sort();
    assert_eq!(seen, expected, "each tenant run by exactly one runner");
    assert_eq!(a.report.migrated() + b.report.migrated(), 8);
    for slug in &slugs {
        assert_eq!(fx.tenant(slug).await.version, NEXT);
    }
    let rollout = one.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.state, RolloutState::Done);
    // Done: a new start is a new rollout (here: every tenant current from the catalog).
    let (next, joined) = two
        .start_rollout(&set, &Selection::All, &options, "two")
        .await
        .expect("start again");
    assert!(!joined);
    assert_ne!(next, id);
    let run = two
        .run_rollout(&next, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert!(run.report.tenants.is_empty(), "none was opened");
    assert_eq!(
        run.counts.get("current"),
        Some(&8),
        "settled from the catalog"
    );
    fx.cleanup().await;
}

async fn a_killed_runners_lease_expires_and_another_runner_finishes(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c"]).await;
    fx.write_migration(BUDGET, BUDGET_SQL);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &RolloutOptions::default(), "test")
        .await
        .expect("start");
    // A runner that claimed two tenants and died: its lease runs out in a second.
    let until = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let claimed = t
        .catalog()
        .claim_items(&id, 1, "dead-runner/1", &until, 2)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        t.run_rollout(&id, &set, &never(), &|_| {}),
    )
    .await
    .expect("the lease expired and the runner went on")
    .expect("run");
    assert_eq!(
        run.report.migrated(),
        3,
        "its own tenant, then the dead runner's"
    );
    assert_eq!(fx.versions(&["a", "b", "c"]).await, vec![NEXT; 3]);
    // The dead runner's late report changes nothing: the items are no longer its.
    let late = t
        .catalog()
        .finish_items(
            &id,
            "dead-runner/1",
            &[tenantry::catalog::ItemResult {
                tenant: claimed[0].tenant,
                state: ItemState::Failed,
                from_version: None,
                to_version: None,
                error: Some("late".into()),
            }],
        )
        .await;
    assert!(late.is_ok());
    let items = t.catalog().rollout_items(&id).await.expect("items");
    assert!(items.iter().all(|i| i.state == ItemState::Migrated));
    fx.cleanup().await;
}

async fn labels_select_and_order_a_rollout(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    let t = &fx.tenantry;
    t.label_tenant("a", &["tier=silver".into(), "eu".into()])
        .await
        .expect("label");
    t.label_tenant("b", &["tier=gold".into()])
        .await
        .expect("label");
    t.label_tenant("c", &["tier=gold".into(), "eu".into()])
        .await
        .expect("label");
    assert!(matches!(
        t.label_tenant("d", &["Not A Label".into()]).await,
        Err(tenantry::Error::InvalidLabel { .. })
    ));
    assert_eq!(
        t.tenant_labels("d").await.expect("labels"),
        Vec::<String>::new()
    );
    fx.write_migration(BUDGET, BUDGET_SQL);
    let set = t.migrations().expect("set");
    let ordered = RolloutOptions {
        order_by: vec![OrderKey::Label("tier".into())],
        ..RolloutOptions::default()
    };
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &ordered, "test")
        .await
        .expect("start");
    let order: Vec<String> = t
        .catalog()
        .rollout_items(&id)
        .await
        .expect("items")
        .into_iter()
        .filter_map(|i| i.tenant)
        .collect();
    // gold before silver, catalog order between equals, the unlabelled last.
    assert_eq!(order, vec!["b", "c", "a", "d"]);
    let eu = RolloutOptions {
        labels: vec!["eu".into()],
        ..RolloutOptions::default()
    };
    let (eu_id, _) = t
        .start_rollout(&set, &Selection::All, &eu, "test")
        .await
        .expect("start");
    let run = t
        .run_rollout(&eu_id, &set, &never(), &|_| {})
        .await
        .expect("run");
    let ran: BTreeSet<String> = run
        .report
        .tenants
        .iter()
        .map(|r| r.tenant.clone())
        .collect();
    assert_eq!(ran, BTreeSet::from(["a".to_owned(), "c".to_owned()]));
    assert_eq!(
        fx.versions(&["a", "b", "c", "d"]).await,
        vec![NEXT, BASE, NEXT, BASE]
    );
    fx.cleanup().await;
}

/// MySQL commits each DDL statement itself: its tenants cannot be dry-run, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_skips_mysql_tenants_saying_why() {
    let Some(fx) = Fixture::new(Backend::Mysql).await else {
        return;
    };
    fleet(&fx, &["a"]).await;
    fx.write_migration(LOG, LOG_SQL);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let options = RolloutOptions {
        dry_run: true,
        ..RolloutOptions::default()
    };
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &options, "test")
        .await
        .expect("start");
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    match &run.report.tenants[0].outcome {
        Outcome::Skipped { reason } => {
            assert!(
                reason.contains("commits each DDL statement itself"),
                "{reason}"
            )
        }
        other => panic!("expected skipped, got {other:?}"),
    }
    let a = fx.tenant("a").await;
    assert!(!fx.tables(&a).await.contains("budget_log"));
    assert_eq!(run.counts.get("skipped"), Some(&1));
    fx.cleanup().await;
}

async fn a_tenant_purged_after_planning_is_skipped(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c"]).await;
    fx.write_migration(BUDGET, BUDGET_SQL);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let (id, _) = t
        .start_rollout(&set, &Selection::All, &RolloutOptions::default(), "test")
        .await
        .expect("start");
    t.delete_tenant("b", true).await.expect("delete and purge");
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        t.run_rollout(&id, &set, &never(), &|_| {}),
    )
    .await
    .expect("the rollout ends")
    .expect("run");
    assert_eq!(run.report.migrated(), 2);
    assert_eq!(run.counts.get("skipped"), Some(&1));
    let items = t.catalog().rollout_items(&id).await.expect("items");
    let gone = items.iter().find(|i| i.tenant.is_none()).expect("b's item");
    assert_eq!(gone.state, ItemState::Skipped);
    assert_eq!(gone.error.as_deref(), Some("the tenant was purged"));
    assert_eq!(fx.versions(&["a", "c"]).await, vec![NEXT; 2]);
    fx.cleanup().await;
}

async fn undo_reverts_exactly_what_a_rollout_moved(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    fx.write_migration("20250101000009_add_budget.up.sql", BUDGET_SQL);
    fx.write_migration(
        "20250101000009_add_budget.down.sql",
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let slugs = |s: &[&str]| Selection::Slugs(s.iter().map(|x| x.to_string()).collect());
    let mut ids = Vec::new();
    for selection in [slugs(&["a", "b", "c"]), slugs(&["d"])] {
        let (id, _) = t
            .start_rollout(&set, &selection, &RolloutOptions::default(), "test")
            .await
            .expect("start");
        t.run_rollout(&id, &set, &never(), &|_| {})
            .await
            .expect("run");
        ids.push(id);
    }
    // c is reverted by hand meanwhile: the undo must leave it where it is.
    let c = fx.tenant("c").await;
    t.migrate_down(&set, vec![c], tenantry::RevertTarget::Steps(1), &|_| {})
        .await
        .expect("revert c");
    let (undo, _) = t
        .start_undo(&ids[0], &set, &RolloutOptions::default(), "test")
        .await
        .expect("plan the undo");
    let report = t
        .run_rollout(&undo, &set, &never(), &|_| {})
        .await
        .expect("undo")
        .report;
    let outcome = |slug: &str| {
        report
            .tenants
            .iter()
            .find(|r| r.tenant == slug)
            .map(|r| r.outcome.clone())
    };
    assert!(matches!(outcome("a"), Some(Outcome::Reverted { to, .. }) if to == BASE));
    assert!(matches!(outcome("b"), Some(Outcome::Reverted { to, .. }) if to == BASE));
    assert!(
        matches!(outcome("c"), Some(Outcome::Skipped { ref reason }) if reason.contains("moved since")),
        "{:?}",
        outcome("c")
    );
    assert!(outcome("d").is_none(), "d was another rollout's");
    assert_eq!(
        fx.versions(&["a", "b", "c", "d"]).await,
        vec![BASE, BASE, BASE, NEXT]
    );
    let a = fx.tenant("a").await;
    assert_eq!(fx.ledger(&a).await.len(), 8);
    // A dry run or a running rollout cannot be undone.
    let (running, _) = t
        .start_rollout(&set, &Selection::All, &RolloutOptions::default(), "test")
        .await
        .expect("start");
    assert!(matches!(
        t.start_undo(&running, &set, &RolloutOptions::default(), "test")
            .await,
        Err(tenantry::Error::RolloutMismatch { .. })
    ));
    fx.cleanup().await;
}
