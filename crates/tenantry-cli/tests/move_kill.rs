//! kill -9 at random steps of `tenantry tenant move`, again and again, the tenant moving
//! between a shared pool on PostgreSQL and an SQLite file: after each kill the catalog names
//! one place, the next command (`tenant repair`) finishes what the dead move left (undone
//! before its switch, the old storage dropped after), the tenant serves from that one place
//! with every row, and nothing of it is left in the other. The steps are chosen by a seed
//! printed on every run (`TENANTRY_KILL_SEED` repeats one).

mod common;

use common::{Moments, kill_after_lines, ok, tenantry};
use tenantry::{NewTenant, ServerName, Strategy, Tenant};
use tenantry_testkit::Fixture;

const KILLS: usize = 6;
const TABLE: &str = "CREATE TABLE items (
    tenant_id VARCHAR(26) NOT NULL,
    id        INTEGER NOT NULL,
    label     VARCHAR(80),
    PRIMARY KEY (tenant_id, id)
);";
const PLACES: [(&str, Strategy); 2] = [("pg", Strategy::Shared), ("local", Strategy::Database)];

/// Starts a move to `to` and kills it with SIGKILL once it has reported `after` steps (0: as
/// soon as it started; or when it ends on its own first).
fn move_and_kill(fx: &Fixture, to: (&str, Strategy), after: u64) {
    let strategy = to.1.to_string();
    let mut cmd = tenantry(fx);
    cmd.args([
        "tenant",
        "move",
        "k",
        "--to-server",
        to.0,
        "--strategy",
        &strategy,
        "--json",
    ]);
    kill_after_lines(cmd, after);
}

async fn rows(fx: &Fixture, tenant: &Tenant) -> i64 {
    fx.scalar(
        tenant,
        &format!(
            "SELECT COUNT(*) FROM items WHERE tenant_id = '{}'",
            tenant.id
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_step_a_move_leaves_one_place_and_finishes() {
    let Some(fx) = Fixture::mixed().await else {
        return;
    };
    fx.use_migration("20250301000001_items.sql", TABLE);
    let t = fx
        .tenantry
        .create_tenant(NewTenant {
            slug: "k".into(),
            server: Some("pg".into()),
            strategy: Some(Strategy::Shared),
            ..NewTenant::default()
        })
        .await
        .expect("create");
    let values: Vec<String> = (1..=3000)
        .map(|i| format!("('{}', {i}, 'item {i}')", t.id))
        .collect();
    fx.execute(
        &t,
        &format!("INSERT INTO items VALUES {}", values.join(", ")),
    )
    .await;
    let mut moments = Moments::from_env();
    for round in 0..KILLS {
        let now = fx.tenant("k").await;
        let here = (now.server.to_string(), now.strategy);
        let there = PLACES
            .iter()
            .find(|p| (p.0, p.1) != (here.0.as_str(), here.1))
            .copied()
            .expect("another place");
        let after = moments.next(5);
        move_and_kill(&fx, there, after);
        let left_by_kill = fx.tenantry.catalog().operation(t.id).await.expect("op");
        // The next command finishes whatever the dead move left.
        ok(&fx, &["tenant", "repair", "k"]);
        let now = fx.tenant("k").await;
        eprintln!(
            "round {round}: killed after {after} steps towards {there:?}, left {left_by_kill:?}, now on {} ({})",
            now.server, now.strategy
        );
        assert_eq!(now.status, tenantry::Status::Active, "round {round}");
        assert_eq!(
            fx.tenantry.catalog().operation(now.id).await.expect("op"),
            None,
            "round {round}: the dead move is finished"
        );
        assert_eq!(rows(&fx, &now).await, 3000, "round {round}");
        // Served as an application process would serve it (its own pools, closed after).
        let app = fx.reopen(tenantry::Settings::default()).await;
        let pool = app.tenant_pool("k").await.expect("pool");
        let tx = pool
            .begin()
            .await
            .expect("it serves where the catalog says");
        tx.rollback().await.expect("rollback");
        drop(pool);
        drop(app);
        // Nothing of it in the place the catalog does not name.
        let other = PLACES
            .iter()
            .find(|p| (p.0, p.1) != (now.server.as_str(), now.strategy))
            .copied()
            .expect("the other place");
        let elsewhere = Tenant {
            server: ServerName::new(other.0).expect("server"),
            strategy: other.1,
            ..now.clone()
        };
        let left: Vec<String> = fx
            .tenantry
            .leftovers(&elsewhere)
            .await
            .expect("leftovers")
            .into_iter()
            .filter(|l| !l.contains("tenantry_"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "round {round}: {other:?}");
    }
    // And an unkilled move still completes.
    let now = fx.tenant("k").await;
    let to = PLACES
        .iter()
        .find(|p| (p.0, p.1) != (now.server.as_str(), now.strategy))
        .copied()
        .expect("another place");
    let strategy = to.1.to_string();
    ok(
        &fx,
        &[
            "tenant",
            "move",
            "k",
            "--to-server",
            to.0,
            "--strategy",
            &strategy,
        ],
    );
    let moved = fx.tenant("k").await;
    assert_eq!((moved.server.as_str(), moved.strategy), to);
    assert_eq!(rows(&fx, &moved).await, 3000);
    fx.cleanup().await;
}
