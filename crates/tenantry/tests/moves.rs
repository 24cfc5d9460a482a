//! Moving a tenant while it serves, in one fleet with an SQLite server, a PostgreSQL server
//! (database, schema and shared tenants) and a MariaDB server: every hop keeps every row
//! and leaves nothing behind where it was; a writer working through the pool manager during
//! a move loses and duplicates nothing; a move that fails, or cannot be made, leaves the
//! tenant serving where it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tenantry::{Error, MoveTenant, NewTenant, Status, Strategy, Tenant, Tenantry};
use tenantry_testkit::Fixture;

const TABLES: &str = "CREATE TABLE things (
    tenant_id VARCHAR(26) NOT NULL,
    id        SERIAL,
    label     VARCHAR(200),
    body      TEXT,
    doc       JSON,
    amount    DECIMAL(12,2),
    ratio     DOUBLE PRECISION,
    active    BOOLEAN,
    seen_at   TIMESTAMP(6) NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE events (
    tenant_id VARCHAR(26) NOT NULL,
    id        INTEGER NOT NULL,
    note      VARCHAR(40),
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE counters (
    tenant_id VARCHAR(26) NOT NULL,
    name      VARCHAR(20) NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE log (
    tenant_id VARCHAR(26) NOT NULL,
    line      VARCHAR(80)
);";

async fn fleet() -> Option<Fixture> {
    let fx = Fixture::mixed().await?;
    fx.use_migration("20250301000001_moves.sql", TABLES);
    Some(fx)
}

async fn create(fx: &Fixture, slug: &str, server: &str, strategy: Strategy) -> Tenant {
    fx.tenantry
        .create_tenant(NewTenant {
            slug: slug.into(),
            server: Some(server.into()),
            strategy: Some(strategy),
            ..NewTenant::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"))
}

/// Rows of every kind, a keyless table, and a counter the writer moves.
async fn seed(fx: &Fixture, tenant: &Tenant) {
    let id = tenant.id.to_string();
    let big = "✓".repeat(20_000);
    fx.execute(
        tenant,
        &format!(
            "INSERT INTO things (tenant_id, id, label, body, doc, amount, ratio, active, seen_at) VALUES \
             ('{id}', 1, 'plain', 'héllo ✓ 日本語 🎉', '{{\"b\": [1, 2], \"a\": null}}', 1234.50, 0.30000000000000004, TRUE, '2025-03-01 10:00:00.25'), \
             ('{id}', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
             ('{id}', 1000, 'O''Brien', '{big}', '[]', -0.05, 1e20, FALSE, '1999-12-31 23:59:59');
             INSERT INTO counters VALUES ('{id}', 'w', 0);
             INSERT INTO log VALUES ('{id}', 'one'), ('{id}', 'one'), ('{id}', NULL);"
        ),
    )
    .await;
}

async fn move_to(
    fx: &Fixture,
    slug: &str,
    server: &str,
    strategy: Strategy,
) -> tenantry::Result<tenantry::Moved> {
    fx.tenantry
        .move_tenant(
            slug,
            MoveTenant {
                to_server: server.into(),
                strategy: Some(strategy),
            },
        )
        .await
}

/// What is left of the tenant in a place it no longer lives in (its catalog records, which
/// follow it, aside).
async fn left_behind(
    fx: &Fixture,
    tenant: &Tenant,
    server: &str,
    strategy: Strategy,
) -> Vec<String> {
    let old = Tenant {
        server: tenantry::ServerName::new(server).expect("server name"),
        strategy,
        ..tenant.clone()
    };
    fx.tenantry
        .leftovers(&old)
        .await
        .expect("leftovers")
        .into_iter()
        .filter(|l| !l.contains("tenantry_"))
        // Of a shared place on the server the tenant now has storage of its own on, only
        // the pool's rows and admission were its.
        .filter(|l| {
            strategy != Strategy::Shared
                || tenant.server.as_str() != server
                || l.contains("shared pool")
        })
        .collect()
}

/// Counts and checksums of every table, as an export reads them.
async fn content(fx: &Fixture, slug: &str) -> Vec<tenantry::archive::TableSummary> {
    let file = fx
        .dir
        .path()
        .join(format!("{slug}-{}.tnt", ulid::Ulid::new()));
    let manifest = fx
        .tenantry
        .export_tenant(slug, &file)
        .await
        .expect("export");
    manifest.totals.tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hop_keeps_every_row_and_leaves_nothing_behind() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "hopper", "local", Strategy::Database).await;
    seed(&fx, &t).await;
    let original = content(&fx, "hopper").await;
    let hops = [
        ("pg", Strategy::Shared),
        ("my", Strategy::Database),
        ("pg", Strategy::Schema),
        ("pg", Strategy::Shared),
        ("pg", Strategy::Database),
        ("local", Strategy::Database),
    ];
    let mut at = ("local", Strategy::Database);
    for (server, strategy) in hops {
        let moved = move_to(&fx, "hopper", server, strategy)
            .await
            .unwrap_or_else(|e| panic!("{at:?} → {server} {strategy}: {e}"));
        assert_eq!(moved.tenant.server.as_str(), server);
        assert_eq!(moved.tenant.strategy, strategy);
        assert_eq!(moved.tenant.status, Status::Active);
        assert_eq!(moved.rows, 7, "{server} {strategy}");
        assert!(moved.old_dropped);
        assert_eq!(
            content(&fx, "hopper").await,
            original,
            "after {server} {strategy}"
        );
        assert_eq!(
            left_behind(&fx, &moved.tenant, at.0, at.1).await,
            Vec::<String>::new(),
            "{at:?} after moving to {server} {strategy}"
        );
        assert_eq!(
            fx.tenantry.catalog().operation(t.id).await.expect("op"),
            None
        );
        // It serves from its new place, and its identity sequence continues there.
        let pool = fx.tenantry.tenant_pool("hopper").await.expect("pool");
        let mut tx = pool.begin().await.expect("begin");
        tx.run_script(&format!(
            "INSERT INTO things (tenant_id, label) VALUES ('{}', 'new')",
            t.id
        ))
        .await
        .unwrap_or_else(|e| panic!("insert on {server} {strategy}: {e}"));
        tx.rollback().await.expect("rollback");
        at = (server, strategy);
    }
    let events = fx
        .tenantry
        .catalog()
        .events(Some(&fx.tenant("hopper").await), 100)
        .await
        .expect("events");
    let moves = events
        .iter()
        .filter(|e| e.action == "tenant.move" && e.outcome == "ok")
        .count();
    assert_eq!(moves, hops.len());
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_that_cannot_be_made_are_refused_before_anything_is_written() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "stay", "pg", Strategy::Database).await;
    seed(&fx, &t).await;
    let refused = |e: &Error| matches!(e, Error::MoveRefused { slug, .. } if slug == "stay");
    let err = move_to(&fx, "stay", "pg", Strategy::Database)
        .await
        .expect_err("already there");
    assert!(refused(&err), "{err}");
    let err = move_to(&fx, "stay", "pg", Strategy::Schema)
        .await
        .expect_err("one login role for both");
    assert!(refused(&err), "{err}");
    let err = move_to(&fx, "stay", "my", Strategy::Schema)
        .await
        .expect_err("MariaDB has no schemas");
    assert!(matches!(err, Error::StrategyUnsupported { .. }), "{err}");
    let err = move_to(&fx, "stay", "nowhere", Strategy::Database)
        .await
        .expect_err("no such server");
    assert!(matches!(err, Error::ServerNotFound { .. }), "{err}");
    let now = fx.tenant("stay").await;
    assert_eq!((now.server.as_str(), now.status), ("pg", Status::Active));
    assert_eq!(
        fx.tenantry.catalog().operation(t.id).await.expect("op"),
        None
    );
    assert_eq!(
        left_behind(&fx, &t, "my", Strategy::Database).await,
        Vec::<String>::new()
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_that_fails_leaves_the_tenant_serving_where_it_was() {
    let Some(fx) = fleet().await else {
        return;
    };
    let t = create(&fx, "toobig", "pg", Strategy::Database).await;
    seed(&fx, &t).await;
    // 70 000 bytes fit PostgreSQL's TEXT, not MariaDB's (64 KiB): the copy fails there.
    fx.execute(
        &t,
        &format!(
            "INSERT INTO things (tenant_id, id, body) VALUES ('{}', 5, '{}')",
            t.id,
            "x".repeat(70_000)
        ),
    )
    .await;
    let before = content(&fx, "toobig").await;
    let err = move_to(&fx, "toobig", "my", Strategy::Database)
        .await
        .expect_err("the row does not fit");
    assert!(
        matches!(&err, Error::ContentMismatch { tenant, table, .. } if tenant == "toobig" && table == "things"),
        "{err}"
    );
    let now = fx.tenant("toobig").await;
    assert_eq!((now.server.as_str(), now.status), ("pg", Status::Active));
    assert_eq!(
        fx.tenantry.catalog().operation(t.id).await.expect("op"),
        None
    );
    assert_eq!(
        left_behind(&fx, &t, "my", Strategy::Database).await,
        Vec::<String>::new()
    );
    assert_eq!(content(&fx, "toobig").await, before);
    let pool = fx.tenantry.tenant_pool("toobig").await.expect("pool");
    let tx = pool.begin().await.expect("it still serves from PostgreSQL");
    tx.rollback().await.expect("rollback");
    fx.cleanup().await;
}

/// Unit `n` of the writer: event `n` inserted once, the counter set to `n`, event `n - 10`
/// deleted when `n - 10` is a multiple of 3. Each step is idempotent, so a unit whose commit
/// was cut off can be run again.
async fn unit(t: &Tenantry, slug: &str, id: &str, n: i64) -> Result<(), String> {
    let pool = t.tenant_pool(slug).await.map_err(|e| e.to_string())?;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let failed = |e: sqlx::Error| e.to_string();
    let rows = tx
        .run_script(&format!("SELECT COUNT(*) AS n FROM events WHERE id = {n}"))
        .await
        .map_err(failed)?;
    let seen = rows
        .first()
        .and_then(|r| r.get("n"))
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0);
    let mut sql = String::new();
    if seen == 0 {
        sql.push_str(&format!(
            "INSERT INTO events (tenant_id, id, note) VALUES ('{id}', {n}, 'w'); "
        ));
    }
    sql.push_str(&format!("UPDATE counters SET value = {n} WHERE name = 'w'"));
    if n > 10 && (n - 10) % 3 == 0 {
        sql.push_str(&format!("; DELETE FROM events WHERE id = {}", n - 10));
    }
    tx.run_script(&sql).await.map_err(failed)?;
    tx.commit().await.map_err(failed)
}

/// Writes units until told to stop and at least `after` more have committed since; returns
/// the units committed and the longest time between two commits.
async fn writer(
    t: Tenantry,
    slug: String,
    id: String,
    stop: Arc<AtomicBool>,
    after: i64,
) -> (i64, Duration) {
    let mut n = 1;
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    let mut stopped_at = None;
    let mut failing: Option<Instant> = None;
    loop {
        if stop.load(Ordering::SeqCst) && stopped_at.is_none() {
            stopped_at = Some(n);
        }
        if stopped_at.is_some_and(|s| n >= s + after) {
            return (n - 1, longest);
        }
        match unit(&t, &slug, &id, n).await {
            Ok(()) => {
                failing = None;
                longest = longest.max(last.elapsed());
                last = Instant::now();
                n += 1;
            }
            // Shut out for the pause, cut off mid-unit, or sent to the new place: the same
            // unit again.
            Err(e) => {
                // Paused, cut off or moved: never told to repair a tenant that is fine.
                assert!(!e.contains("repair"), "unit {n} of {slug}: {e}");
                let since = *failing.get_or_insert_with(Instant::now);
                assert!(
                    since.elapsed() < Duration::from_secs(60),
                    "unit {n} of {slug} failed for a minute: {e}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await
            }
        }
    }
}

async fn move_under_load(fx: &Fixture, slug: &str, from: (&str, Strategy), to: (&str, Strategy)) {
    let t = create(fx, slug, from.0, from.1).await;
    seed(fx, &t).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(
        fx.tenantry.clone(),
        slug.to_owned(),
        t.id.to_string(),
        stop.clone(),
        20,
    ));
    // Some writes land before the copy starts.
    while fx.scalar(&t, "SELECT COUNT(*) FROM events").await < 20 {
        tokio::task::yield_now().await;
    }
    let moved = move_to(fx, slug, to.0, to.1)
        .await
        .unwrap_or_else(|e| panic!("move {slug}: {e}"));
    stop.store(true, Ordering::SeqCst);
    let (units, longest) = writing.await.expect("writer");
    eprintln!(
        "{slug}: {from:?} → {to:?}: {} rows, {} changed while copying, copy {} ms, writes \
         paused {} ms; the writer committed {units} units, longest gap {} ms",
        moved.rows,
        moved.changed,
        moved.copy_ms,
        moved.pause_ms,
        longest.as_millis()
    );
    let now = fx.tenant(slug).await;
    assert_eq!((now.server.as_str(), now.strategy), to);
    // Every committed unit is there once, each deletion done, nothing else.
    let expected: Vec<i64> = (1..=units)
        .filter(|k| !(k % 3 == 0 && k + 10 <= units))
        .collect();
    let mut conn = fx.tenantry.connect_storage(&now).await.expect("connect");
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(id AS {}) FROM events WHERE tenant_id = '{}' ORDER BY id",
        if to.0 == "my" { "SIGNED" } else { "BIGINT" },
        t.id
    )))
    .fetch_all(&mut conn)
    .await
    .expect("events");
    assert_eq!(ids, expected, "{slug}: no write lost, none duplicated");
    assert_eq!(
        fx.scalar(&now, "SELECT value FROM counters WHERE name = 'w'")
            .await,
        units
    );
    if from.0 == "pg" {
        // PostgreSQL reads the copy from a snapshot while the writer commits beside it.
        assert!(
            moved.changed > 0,
            "{slug}: the writer wrote while it was copied"
        );
    }
    assert_eq!(
        left_behind(fx, &now, from.0, from.1).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_under_load_loses_and_duplicates_no_write() {
    let Some(fx) = fleet().await else {
        return;
    };
    // A small shared tenant becomes a database of its own, and a file moves to MariaDB.
    move_under_load(
        &fx,
        "busy-shared",
        ("pg", Strategy::Shared),
        ("pg", Strategy::Database),
    )
    .await;
    move_under_load(
        &fx,
        "busy-file",
        ("local", Strategy::Database),
        ("my", Strategy::Database),
    )
    .await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_server_moves_every_tenant_off_it_and_resumes() {
    let Some(fx) = fleet().await else {
        return;
    };
    let mut tenants = Vec::new();
    for slug in ["d1", "d2", "d3"] {
        let t = create(&fx, slug, "pg", Strategy::Database).await;
        seed(&fx, &t).await;
        tenants.push(t);
    }
    // One tenant holds a row MariaDB cannot take: its move fails, the others go on.
    fx.execute(
        &tenants[1],
        &format!(
            "INSERT INTO things (tenant_id, id, body) VALUES ('{}', 5, '{}')",
            tenants[1].id,
            "x".repeat(70_000)
        ),
    )
    .await;
    let drain = tenantry::Drain {
        server: "pg".into(),
        to: Some("my".into()),
        strategy: None,
        concurrency: 2,
        max_failures: 1,
    };
    let drained = fx
        .tenantry
        .drain_server(drain.clone(), |_| {})
        .await
        .expect("drain");
    assert_eq!((drained.moved, drained.failed, drained.left), (2, 1, 1));
    assert!(!drained.stopped);
    let failed = drained
        .steps
        .iter()
        .find(|s| s.error.is_some())
        .expect("a failed step");
    assert_eq!(failed.slug, "d2");
    for slug in ["d1", "d3"] {
        assert_eq!(fx.tenant(slug).await.server.as_str(), "my");
    }
    assert_eq!(fx.tenant("d2").await.server.as_str(), "pg");
    // A draining server takes no new tenant.
    let err = fx
        .tenantry
        .create_tenant(NewTenant {
            slug: "late".into(),
            server: Some("pg".into()),
            ..NewTenant::default()
        })
        .await
        .expect_err("draining");
    assert!(matches!(err, Error::ServerRemoving { .. }), "{err}");
    // Once the row fits elsewhere, running the drain again finishes it.
    fx.execute(&tenants[1], "DELETE FROM things WHERE id = 5")
        .await;
    let again = fx
        .tenantry
        .drain_server(drain, |_| {})
        .await
        .expect("resume");
    assert_eq!((again.moved, again.failed, again.left), (1, 0, 0));
    fx.tenantry.undrain_server("pg").await.expect("undrain");
    create(&fx, "late", "pg", Strategy::Database).await;
    fx.cleanup().await;
}
