//! `migrate down` and `migrate undo` as rollouts, with the controls of `migrate --all`: a
//! failing canary stops a revert, a failure budget stops starting tenants, an interrupted
//! revert resumes (and refuses a changed migrations directory), two runners split one
//! revert, a dry run reverts nothing, and an undo takes only the tenants its options select.
//! Every backend; shared pools split between claims on PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};

use tenantry::{
    Budget, ItemState, Outcome, RevertTarget, RolloutOptions, RolloutState, Selection, Settings,
    StopReason, Strategy, Tenantry,
};
use tenantry_testkit::{Backend, Fixture, on_each_backend, on_transactional_backends};

on_each_backend!(
    a_failing_canary_stops_a_revert_before_the_rest,
    past_the_failure_budget_no_revert_is_started,
    an_interrupted_revert_resumes_with_the_same_files_only,
    two_runners_split_one_revert,
    an_undo_takes_back_only_the_tenants_its_options_select,
);

on_transactional_backends!(a_revert_dry_run_reverts_nothing_and_reports_what_would);

const BASE: i64 = 20250101000008;
const NEXT: i64 = 20250101000009;

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// `slugs` created in order and migrated to NEXT, whose down script drops its column.
async fn fleet(fx: &Fixture, slugs: &[&str]) {
    for slug in slugs {
        fx.create(slug).await.expect("create");
    }
    fx.write_migration(
        "20250101000009_add_budget.up.sql",
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );
    fx.write_migration(
        "20250101000009_add_budget.down.sql",
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let report = t.migrate_all(&set, &|_| {}).await.expect("migrate");
    assert_eq!(report.migrated(), slugs.len());
}

/// Makes the down script fail on `slug`: its column is gone already.
async fn poison(fx: &Fixture, slug: &str) {
    let tenant = fx.tenant(slug).await;
    fx.execute(&tenant, "ALTER TABLE campaigns DROP COLUMN budget_cents")
        .await;
}

async fn states(t: &Tenantry, id: &str) -> Vec<(String, ItemState)> {
    t.catalog()
        .rollout_items(id)
        .await
        .expect("items")
        .into_iter()
        .map(|i| (i.tenant.unwrap_or_default(), i.state))
        .collect()
}

async fn down(
    t: &Tenantry,
    selection: &Selection,
    options: &RolloutOptions,
    target: RevertTarget,
) -> String {
    let set = t.migrations().expect("set");
    let (id, joined) = t
        .start_revert(&set, selection, options, target, "test")
        .await
        .expect("plan the revert");
    assert!(!joined);
    id
}

async fn a_failing_canary_stops_a_revert_before_the_rest(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    poison(&fx, "a").await;
    let t = &fx.tenantry;
    let options = RolloutOptions {
        canary: 1,
        wave_size: Some(2),
        ..RolloutOptions::default()
    };
    let id = down(t, &Selection::All, &options, RevertTarget::Steps(1)).await;
    let set = t.migrations().expect("set");
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
    assert_eq!(
        states(t, &id).await,
        vec![
            ("a".into(), ItemState::Failed),
            ("b".into(), ItemState::NotAttempted),
            ("c".into(), ItemState::NotAttempted),
            ("d".into(), ItemState::NotAttempted),
        ]
    );
    assert_eq!(fx.versions(&["b", "c", "d"]).await, vec![NEXT; 3]);
    let rollout = t.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.kind, "down");
    assert_eq!(rollout.state, RolloutState::Stopped);
    fx.cleanup().await;
}

async fn past_the_failure_budget_no_revert_is_started(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d", "e"]).await;
    poison(&fx, "a").await;
    poison(&fx, "b").await;
    let t = fx
        .reopen(Settings {
            concurrency: Some(1),
            ..Settings::default()
        })
        .await;
    let options = RolloutOptions {
        max_failures: Some(Budget::Count(1)),
        ..RolloutOptions::default()
    };
    let id = down(&t, &Selection::All, &options, RevertTarget::To(BASE)).await;
    let set = t.migrations().expect("set");
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert_eq!(run.stopped, Some(StopReason::Budget));
    assert_eq!(
        states(&t, &id).await,
        vec![
            ("a".into(), ItemState::Failed),
            ("b".into(), ItemState::Failed),
            ("c".into(), ItemState::NotAttempted),
            ("d".into(), ItemState::NotAttempted),
            ("e".into(), ItemState::NotAttempted),
        ]
    );
    assert_eq!(fx.versions(&["c", "d", "e"]).await, vec![NEXT; 3]);
    fx.cleanup().await;
}

async fn an_interrupted_revert_resumes_with_the_same_files_only(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b", "c", "d"]).await;
    let t = fx
        .reopen(Settings {
            concurrency: Some(1),
            ..Settings::default()
        })
        .await;
    let id = down(
        &t,
        &Selection::All,
        &RolloutOptions::default(),
        RevertTarget::Steps(1),
    )
    .await;
    let set = t.migrations().expect("set");
    // Ctrl-C as the first tenant finishes: it is recorded, nothing else starts.
    let stop = AtomicBool::new(false);
    let run = t
        .run_rollout(&id, &set, &stop, &|_| stop.store(true, Ordering::SeqCst))
        .await
        .expect("run");
    assert_eq!(run.stopped, Some(StopReason::Interrupted));
    assert_eq!(run.report.reverted(), 1);
    assert_eq!(run.counts.get("reverted"), Some(&1));
    assert_eq!(run.counts.get("pending"), Some(&3));
    assert_eq!(fx.versions(&["a", "b"]).await, vec![BASE, NEXT]);

    // The directory changed meanwhile: the revert is refused, nothing runs.
    let extra = fx.write_migration(
        "20250101000010_create_tags.sql",
        "CREATE TABLE tags (id INT);",
    );
    let changed = t.migrations().expect("set");
    assert!(matches!(
        t.run_rollout(&id, &changed, &never(), &|_| {}).await,
        Err(tenantry::Error::RolloutMismatch { ref reason, .. }) if reason.contains("changed")
    ));
    assert_eq!(fx.versions(&["b", "c", "d"]).await, vec![NEXT; 3]);
    std::fs::remove_file(extra).expect("remove the new file");

    let resumed = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("resume");
    assert_eq!(resumed.stopped, None);
    assert_eq!(resumed.report.reverted(), 3, "only the rest");
    assert_eq!(resumed.counts.get("reverted"), Some(&4));
    assert_eq!(fx.versions(&["a", "b", "c", "d"]).await, vec![BASE; 4]);
    let a = fx.tenant("a").await;
    assert_eq!(fx.ledger(&a).await.len(), 8, "reverted once, not twice");
    let rollout = t.catalog().rollout(&id).await.expect("rollout");
    assert_eq!(rollout.state, RolloutState::Done);
    fx.cleanup().await;
}

async fn two_runners_split_one_revert(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let slugs: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = slugs.iter().map(String::as_str).collect();
    fleet(&fx, &names).await;
    let one = fx.reopen(Settings::default()).await;
    let two = fx.reopen(Settings::default()).await;
    let set = one.migrations().expect("set");
    let options = RolloutOptions::default();
    let target = RevertTarget::To(BASE);
    let id = down(&one, &Selection::All, &options, target).await;
    // The same revert started again while it runs is joined, not duplicated.
    let (same, joined) = two
        .start_revert(&set, &Selection::All, &options, target, "two")
        .await
        .expect("join");
    assert_eq!((same.as_str(), joined), (id.as_str(), true));
    let (stop_one, stop_two) = (never(), never());
    let (a, b) = tokio::join!(
        one.run_rollout(&id, &set, &stop_one, &|_| {}),
        two.run_rollout(&id, &set, &stop_two, &|_| {}),
    );
    let (a, b) = (a.expect("runner one"), b.expect("runner two"));
    let mut seen: Vec<&str> = a
        .report
        .tenants
        .iter()
        .chain(&b.report.tenants)
        .map(|r| r.tenant.as_str())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, names, "each tenant reverted by exactly one runner");
    assert_eq!(a.report.reverted() + b.report.reverted(), 8);
    assert_eq!(fx.versions(&names).await, vec![BASE; 8]);
    fx.cleanup().await;
}

async fn an_undo_takes_back_only_the_tenants_its_options_select(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["a", "b", "c"] {
        fx.create(slug).await.expect("create");
    }
    let t = &fx.tenantry;
    t.label_tenant("b", &["tier=beta".into()])
        .await
        .expect("label");
    t.label_tenant("c", &["tier=beta".into()])
        .await
        .expect("label");
    fx.write_migration(
        "20250101000009_add_budget.up.sql",
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );
    fx.write_migration(
        "20250101000009_add_budget.down.sql",
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
    let set = t.migrations().expect("set");
    let (up, _) = t
        .start_rollout(&set, &Selection::All, &RolloutOptions::default(), "test")
        .await
        .expect("start");
    t.run_rollout(&up, &set, &never(), &|_| {})
        .await
        .expect("run");
    // Only the beta tier goes back, c first as a canary.
    let beta = RolloutOptions {
        labels: vec!["tier=beta".into()],
        canary: 1,
        ..RolloutOptions::default()
    };
    let (undo, _) = t
        .start_undo(&up, &set, &beta, "test")
        .await
        .expect("plan the undo");
    let run = t
        .run_rollout(&undo, &set, &never(), &|_| {})
        .await
        .expect("undo");
    assert_eq!(run.stopped, None);
    assert_eq!(run.report.reverted(), 2);
    assert_eq!(
        states(t, &undo).await,
        vec![
            ("b".into(), ItemState::Reverted),
            ("c".into(), ItemState::Reverted)
        ]
    );
    assert_eq!(fx.versions(&["a", "b", "c"]).await, vec![NEXT, BASE, BASE]);
    let rollout = t.catalog().rollout(&undo).await.expect("rollout");
    assert_eq!(rollout.kind, "undo");
    // An undo cannot itself be undone: only a rollout that applied migrations.
    assert!(matches!(
        t.start_undo(&undo, &set, &RolloutOptions::default(), "test")
            .await,
        Err(tenantry::Error::RolloutMismatch { .. })
    ));
    fx.cleanup().await;
}

async fn a_revert_dry_run_reverts_nothing_and_reports_what_would(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    fleet(&fx, &["a", "b"]).await;
    poison(&fx, "b").await;
    let t = &fx.tenantry;
    let options = RolloutOptions {
        dry_run: true,
        ..RolloutOptions::default()
    };
    let id = down(t, &Selection::All, &options, RevertTarget::Steps(1)).await;
    let set = t.migrations().expect("set");
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
        matches!(outcome("a"), Some(Outcome::Reverted { from, to, ref reverted })
            if from == NEXT && to == BASE && reverted == &[NEXT]),
        "{:?}",
        outcome("a")
    );
    assert!(matches!(outcome("b"), Some(Outcome::Failed { .. })));
    let a = fx.tenant("a").await;
    assert_eq!(a.version, NEXT, "the catalog records nothing");
    assert_eq!(fx.ledger(&a).await.len(), 9, "the ledger is untouched");
    // The column the down script drops is still there.
    fx.execute(&a, "SELECT budget_cents FROM campaigns").await;
    assert_eq!(
        states(t, &id).await,
        vec![
            ("a".into(), ItemState::Reverted),
            ("b".into(), ItemState::Failed)
        ]
    );
    assert_eq!(
        t.catalog().rollout(&id).await.expect("rollout").kind,
        "down-dry-run"
    );
    fx.cleanup().await;
}

/// Two shared tenants on one server (one pool, one ledger), at BASE.
async fn shared_pair(fx: &Fixture) {
    for slug in ["shared-a", "shared-b"] {
        fx.create_with(slug, Strategy::Shared)
            .await
            .expect("shared tenant");
    }
}

fn write_budget(fx: &Fixture) {
    fx.write_migration(
        "20250101000009_add_budget.up.sql",
        "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;",
    );
    fx.write_migration(
        "20250101000009_add_budget.down.sql",
        "ALTER TABLE campaigns DROP COLUMN budget_cents;",
    );
}

/// A shared pool whose tenants land in different claims (here: a canary wave of one) is
/// reverted by `--steps 1` once, not once per claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_revert_a_shared_pool_once_however_its_tenants_are_claimed() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    shared_pair(&fx).await;
    write_budget(&fx);
    fx.write_migration(
        "20250101000010_add_notes.up.sql",
        "ALTER TABLE campaigns ADD COLUMN notes TEXT;",
    );
    fx.write_migration(
        "20250101000010_add_notes.down.sql",
        "ALTER TABLE campaigns DROP COLUMN notes;",
    );
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    t.migrate_all(&set, &|_| {}).await.expect("migrate");
    let a = fx.tenant("shared-a").await;
    assert_eq!(a.version, 20250101000010);
    let options = RolloutOptions {
        canary: 1,
        ..RolloutOptions::default()
    };
    let id = down(t, &Selection::All, &options, RevertTarget::Steps(1)).await;
    let run = t
        .run_rollout(&id, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert_eq!(run.stopped, None);
    assert_eq!(
        states(t, &id).await,
        vec![
            ("shared-a".into(), ItemState::Reverted),
            ("shared-b".into(), ItemState::Current)
        ]
    );
    assert_eq!(
        fx.versions(&["shared-a", "shared-b"]).await,
        vec![NEXT; 2],
        "one step, once"
    );
    assert_eq!(fx.ledger(&a).await.len(), 9);
    fx.cleanup().await;
}

/// A rollout migrates a shared pool through the first of its tenants it reaches; the undo
/// takes the pool back for all of them, and is not refused for naming part of the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_takes_back_a_shared_pool_its_rollout_migrated_through_one_tenant() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    shared_pair(&fx).await;
    write_budget(&fx);
    let t = &fx.tenantry;
    let set = t.migrations().expect("set");
    let canary = RolloutOptions {
        canary: 1,
        ..RolloutOptions::default()
    };
    let (up, _) = t
        .start_rollout(&set, &Selection::All, &canary, "test")
        .await
        .expect("start");
    t.run_rollout(&up, &set, &never(), &|_| {})
        .await
        .expect("run");
    assert_eq!(
        states(t, &up).await,
        vec![
            ("shared-a".into(), ItemState::Migrated),
            ("shared-b".into(), ItemState::Current)
        ]
    );
    let (undo, _) = t
        .start_undo(&up, &set, &canary, "test")
        .await
        .expect("plan the undo");
    let run = t
        .run_rollout(&undo, &set, &never(), &|_| {})
        .await
        .expect("undo");
    assert!(run.report.is_success(), "{:?}", run.report);
    assert_eq!(fx.versions(&["shared-a", "shared-b"]).await, vec![BASE; 2]);
    let a = fx.tenant("shared-a").await;
    assert_eq!(fx.ledger(&a).await.len(), 8);
    fx.cleanup().await;
}
