//! kill -9 at random moments of a rollout, again and again, then a rerun: on PostgreSQL and
//! SQLite no tenant is ever half-applied and the rerun converges (it joins the rollout and
//! takes over the killed runners' tenants once their leases expire); on MySQL a tenant killed
//! between two statements is dirty, never recorded as applied, and converges once settled.
//! The moments are chosen by a seed printed on every run (`TENANTRY_KILL_SEED` repeats one);
//! `scripts/kill-loop` runs the same over a large fleet.

mod common;

use common::{Moments, kill_after_lines, run, stderr, stdout, tenantry};
use tenantry::{ItemState, RolloutState};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

on_each_backend!(killed_again_and_again_a_rollout_converges);

const TENANTS: usize = 10;
const KILLS: usize = 6;
const CHANGE: &str = "20250101000009_add_budget.sql";
/// Two statements: on MySQL a kill can land between them.
const CHANGE_SQL: &str = "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;\n\
                          CREATE INDEX campaigns_budget ON campaigns (budget_cents);";
const NEXT: i64 = 20250101000009;
const ARGS: [&str; 6] = [
    "--lock-wait",
    "30",
    "migrate",
    "--all",
    "--json",
    "--lease-secs",
];

/// Starts a runner and kills it with SIGKILL once it has reported `after` tenants (0: as
/// soon as it started; or when it ends on its own first).
fn run_and_kill(fx: &Fixture, after: usize) {
    let mut cmd = tenantry(fx);
    cmd.args(ARGS).arg("2");
    kill_after_lines(cmd, after as u64);
}

async fn killed_again_and_again_a_rollout_converges(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let mut moments = Moments::from_env();
    let slugs: Vec<String> = (0..TENANTS).map(|i| format!("k{i:02}")).collect();
    for slug in &slugs {
        fx.create(slug).await.expect("create");
    }
    fx.write_migration(CHANGE, CHANGE_SQL);
    for _ in 0..KILLS {
        run_and_kill(&fx, moments.next(4) as usize);
    }
    // The rerun joins the killed runners' rollout and finishes it.
    let out = run(&fx, &[&ARGS[..], &["2"]].concat());
    let rollouts = fx.tenantry.catalog().rollouts(100).await.expect("rollouts");
    assert_eq!(rollouts.len(), 1, "every runner joined one rollout");
    let items = fx
        .tenantry
        .catalog()
        .rollout_items(&rollouts[0].id)
        .await
        .expect("items");
    assert!(
        items
            .iter()
            .all(|i| i.state != ItemState::Leased && i.state != ItemState::Pending),
        "no lease outlives the rollout: {items:?}"
    );
    assert_eq!(rollouts[0].state, RolloutState::Done);
    if backend == Backend::Mysql {
        settle_dirty(&fx, &slugs).await;
    } else {
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    for slug in &slugs {
        let tenant = fx.tenant(slug).await;
        assert_eq!(tenant.version, NEXT, "{slug}");
        assert_eq!(tenant.dirty_version, None, "{slug}");
        let ledger = fx.ledger(&tenant).await;
        assert_eq!(ledger.len(), 9, "{slug}: {ledger:?}");
        assert!(ledger.iter().all(|r| r.is_applied()), "{slug}: {ledger:?}");
        // Applied means applied: the column is there.
        let budget = fx
            .scalar(&tenant, "SELECT COUNT(budget_cents) FROM campaigns")
            .await;
        assert_eq!(budget, 0, "{slug}");
    }
    fx.cleanup().await;
}

/// MySQL: a tenant killed between the change's two statements is dirty in its ledger and in
/// the catalog, never applied; once an operator settles it (here: the first statement ran,
/// so finish the second by hand and record it applied, or retry it whole), a rerun
/// converges.
async fn settle_dirty(fx: &Fixture, slugs: &[String]) {
    for slug in slugs {
        let tenant = fx.tenant(slug).await;
        let ledger = fx.ledger(&tenant).await;
        let Some(dirty) = ledger.iter().find(|r| !r.is_applied()) else {
            assert_eq!(tenant.version, NEXT, "{slug}: neither applied nor dirty");
            continue;
        };
        assert_eq!(dirty.version, NEXT, "{slug}");
        assert_eq!(
            tenant.dirty_version,
            Some(NEXT),
            "{slug}: the catalog says dirty"
        );
        assert_eq!(
            tenant.version,
            NEXT - 1,
            "{slug}: a dirty migration is not applied"
        );
        let column = fx
            .scalar(
                &tenant,
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
                 AND table_name = 'campaigns' AND column_name = 'budget_cents'",
            )
            .await;
        let index = fx
            .scalar(
                &tenant,
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() \
                 AND table_name = 'campaigns' AND index_name = 'campaigns_budget'",
            )
            .await;
        let how = match (column, index) {
            (0, _) => "--retry",
            (_, 0) => {
                fx.execute(
                    &tenant,
                    "CREATE INDEX campaigns_budget ON campaigns (budget_cents)",
                )
                .await;
                "--applied"
            }
            _ => "--applied",
        };
        let version = NEXT.to_string();
        let out = run(fx, &["migrate", "resolve", slug, &version, how]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let out = run(fx, &["migrate", "--all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
