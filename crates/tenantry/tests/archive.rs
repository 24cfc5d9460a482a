//! Export and import across every engine and strategy: one fleet with an SQLite server, a
//! PostgreSQL server (database, schema and shared tenants) and a MariaDB server. Every
//! archive of the same rows has the same counts and checksums wherever they were read, and a
//! tampered, truncated or foreign archive creates nothing.

use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Row};
use tenantry::archive::TableSummary;
use tenantry::{Error, ImportTenant, NewTenant, Settings, Strategy, Tenant};
use tenantry_testkit::{Backend, Fixture, require_mysql};

/// Types every engine spells alike. `SERIAL` is an identity column on PostgreSQL and
/// MariaDB; MariaDB's `TEXT` holds 64 KiB.
const THINGS: &str = "CREATE TABLE things (
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
CREATE TABLE notes (
    tenant_id VARCHAR(26) NOT NULL,
    id        INTEGER NOT NULL,
    parent    INTEGER NOT NULL,
    text      TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE note_tags (
    tenant_id VARCHAR(26) NOT NULL,
    note_id   INTEGER NOT NULL,
    tag       VARCHAR(40) NOT NULL,
    PRIMARY KEY (tenant_id, note_id, tag),
    FOREIGN KEY (tenant_id, note_id) REFERENCES notes (tenant_id, id)
);";

/// Where tenants can live in the fleet: (server, strategy).
const PLACES: [(&str, Strategy); 5] = [
    ("local", Strategy::Database),
    ("pg", Strategy::Database),
    ("pg", Strategy::Schema),
    ("pg", Strategy::Shared),
    ("my", Strategy::Database),
];

async fn fleet() -> Option<Fixture> {
    let fx = Fixture::mixed().await?;
    fx.use_migration("20250201000001_things.sql", THINGS);
    Some(fx)
}

async fn exec(fx: &Fixture, tenant: &Tenant, sql: &str) {
    let mut conn = fx.tenantry.connect_storage(tenant).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("seed {}: {e}", tenant.slug));
}

/// A source tenant on SQLite with NULLs, Unicode, JSON, a 60 KB row, negative decimals,
/// quotes, and ids far from 1.
async fn seeded(fx: &Fixture) -> Tenant {
    let t = fx
        .tenantry
        .create_tenant(NewTenant {
            slug: "source".into(),
            server: Some("local".into()),
            ..NewTenant::default()
        })
        .await
        .expect("create source");
    let id = t.id.to_string();
    let big = "✓".repeat(20_000);
    exec(
        fx,
        &t,
        &format!(
            "INSERT INTO things VALUES \
             ('{id}', 1, 'plain', 'héllo wörld ✓ 日本語 🎉', '{{\"b\": [1, 2], \"a\": {{\"y\": null, \"x\": \"é\"}}}}', \
              1234.50, 0.30000000000000004, 1, '2025-03-01 10:00:00.25'), \
             ('{id}', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
             ('{id}', 1000, 'O''Brien \"q\"', '{big}', '[]', -0.05, 1e20, 0, '1999-12-31 23:59:59');
             INSERT INTO notes VALUES ('{id}', 1, 1, 'note ✓'), ('{id}', 2, 1000, NULL), ('{id}', 3, 1000, '');
             INSERT INTO note_tags VALUES ('{id}', 1, 'a'), ('{id}', 1, 'b'), ('{id}', 2, 'a');"
        ),
    )
    .await;
    t
}

fn totals(manifest: &tenantry::Manifest) -> Vec<TableSummary> {
    manifest.totals.tables.clone()
}

async fn import(
    fx: &Fixture,
    file: &Path,
    slug: &str,
    (server, strategy): (&str, Strategy),
) -> tenantry::Result<tenantry::Imported> {
    fx.tenantry
        .import_tenant(
            file,
            ImportTenant {
                slug: slug.to_owned(),
                server: Some(server.to_owned()),
                strategy: Some(strategy),
                ..ImportTenant::default()
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_of_engines_and_strategies_round_trips_identical_content() {
    let Some(fx) = fleet().await else {
        return;
    };
    let source = seeded(&fx).await;
    let dir = fx.dir.path();
    let first: PathBuf = dir.join("source.tnt");
    let original = fx
        .tenantry
        .export_tenant("source", &first)
        .await
        .expect("export source");
    assert_eq!(
        original
            .totals
            .tables
            .iter()
            .map(|t| (t.name.as_str(), t.rows))
            .collect::<Vec<_>>(),
        [("notes", 3), ("note_tags", 3), ("things", 3)],
        "parents before the tables that reference them"
    );
    assert_eq!(original.header.tenant.id, source.id.to_string());

    // The archive into every place, and each of those exported again.
    let mut archives = Vec::new();
    for (i, place) in PLACES.iter().enumerate() {
        let slug = format!("copy-{i}");
        let imported = import(&fx, &first, &slug, *place)
            .await
            .unwrap_or_else(|e| panic!("import into {place:?}: {e}"));
        assert_eq!(imported.tenant.status, tenantry::Status::Active);
        let file = dir.join(format!("{slug}.tnt.gz"));
        let again = fx
            .tenantry
            .export_tenant(&slug, &file)
            .await
            .expect("export");
        assert_eq!(totals(&again), totals(&original), "{place:?}");
        assert_eq!(
            again.header.tenant.engine,
            fx.tenantry
                .catalog()
                .server(place.0)
                .await
                .expect("server")
                .engine
                .to_string()
        );
        archives.push(file);
    }
    // A double keeps every digit on its way from SQLite (which prints 15 by default).
    let pg_copy = fx.tenant("copy-1").await;
    let mut conn = fx
        .tenantry
        .connect_storage(&pg_copy)
        .await
        .expect("connect");
    let ratio: String = sqlx::query_scalar("SELECT CAST(ratio AS TEXT) FROM things WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .expect("ratio");
    assert_eq!(ratio, "0.30000000000000004");

    // From every place into every place.
    for (i, file) in archives.iter().enumerate() {
        for (j, place) in PLACES.iter().enumerate() {
            let slug = format!("pair-{i}-{j}");
            let imported = import(&fx, file, &slug, *place)
                .await
                .unwrap_or_else(|e| panic!("{:?} into {place:?}: {e}", PLACES[i]));
            assert_eq!(totals(&imported.manifest), totals(&original), "{i} → {j}");
            fx.tenantry
                .delete_tenant(&slug, true)
                .await
                .expect("delete pair tenant");
        }
    }

    // Identity sequences continue after the highest imported id.
    for (i, (server, _)) in PLACES.iter().enumerate().filter(|(_, p)| p.0 != "local") {
        let t = fx.tenant(&format!("copy-{i}")).await;
        let id = t.id.to_string();
        let mut conn = fx.tenantry.connect_storage(&t).await.expect("connect");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO things (tenant_id, label) VALUES ('{id}', 'next')"
        )))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("insert on {server}: {e}"));
        let next: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT CAST(id AS {}) AS id FROM things WHERE label = 'next'",
            if *server == "my" { "SIGNED" } else { "BIGINT" }
        )))
        .fetch_one(&mut conn)
        .await
        .expect("read")
        .get("id");
        assert!(next > 1000, "{server}: the next id is {next}");
    }
    fx.cleanup().await;
}

/// Replaces the first occurrence of `from` in the archive with `to`.
fn tamper(file: &Path, out: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(from), "{from}");
    std::fs::write(out, text.replacen(from, to, 1)).expect("write");
}

async fn assert_nothing_created(fx: &Fixture, slug: &str) {
    assert!(
        fx.tenantry
            .catalog()
            .find_tenant(slug)
            .await
            .expect("lookup")
            .is_none(),
        "{slug} was left in the catalog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_truncated_or_foreign_archive_creates_nothing() {
    let Some(fx) = fleet().await else {
        return;
    };
    seeded(&fx).await;
    let dir = fx.dir.path();
    let good = dir.join("good.tnt");
    fx.tenantry
        .export_tenant("source", &good)
        .await
        .expect("export");

    // A value edited: the table's checksum no longer adds up.
    let edited = dir.join("edited.tnt");
    tamper(&good, &edited, "\"plain\"", "\"plane\"");
    for place in [PLACES[0], PLACES[3]] {
        let err = import(&fx, &edited, "edited", place)
            .await
            .expect_err("edited");
        assert!(
            matches!(&err, Error::ArchiveInvalid { detail, .. } if detail.contains("table things")),
            "{err}"
        );
        assert_nothing_created(&fx, "edited").await;
    }

    // A row and every checksum rewritten to match: the digest gives it away.
    let forged = dir.join("forged.tnt");
    {
        let rows = fx
            .tenantry
            .import_tenant(
                &good,
                ImportTenant {
                    slug: "twin".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("import twin");
        exec(
            &fx,
            &rows.tenant,
            "UPDATE things SET label = 'plane' WHERE id = 1",
        )
        .await;
        let twin = dir.join("twin.tnt");
        let changed = fx
            .tenantry
            .export_tenant("twin", &twin)
            .await
            .expect("export twin");
        // The good archive's header and rows with the changed archive's end lines and
        // trailer sums, keeping the good file's digest.
        let good_text = std::fs::read_to_string(&good).expect("read");
        let mut text = good_text.replacen("\"plain\"", "\"plane\"", 1);
        for (old, new) in totals_pairs(&good_text, &changed) {
            text = text.replace(&old, &new);
        }
        std::fs::write(&forged, text).expect("write");
    }
    let err = import(&fx, &forged, "forged", PLACES[1])
        .await
        .expect_err("forged");
    assert!(
        matches!(&err, Error::ArchiveInvalid { detail, .. } if detail.contains("digest")),
        "{err}"
    );
    assert_nothing_created(&fx, "forged").await;

    // Cut short.
    let cut = dir.join("cut.tnt");
    let bytes = std::fs::read(&good).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let err = import(&fx, &cut, "cut", PLACES[4]).await.expect_err("cut");
    assert!(
        matches!(&err, Error::ArchiveInvalid { detail, .. } if detail.contains("truncated")),
        "{err}"
    );
    assert_nothing_created(&fx, "cut").await;

    // A migration the fleet does not have, or has with other content: refused up front.
    let foreign = dir.join("foreign.tnt");
    tamper(
        &good,
        &foreign,
        "\"version\":20250201000001,\"description\"",
        "\"version\":20250201000002,\"description\"",
    );
    let err = import(&fx, &foreign, "foreign", PLACES[0])
        .await
        .expect_err("foreign");
    assert!(
        matches!(&err, Error::ArchiveRefused { detail, .. } if detail.contains("20250201000002")),
        "{err}"
    );
    assert_nothing_created(&fx, "foreign").await;
    fx.cleanup().await;
}

/// `(good end/trailer text, forged text)` for each table whose sums differ.
fn totals_pairs(good: &str, changed: &tenantry::Manifest) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for t in &changed.totals.tables {
        for line in good.lines() {
            let needle = format!(
                "\"name\":\"{}\",\"rows\":{},\"checksum\":\"",
                t.name, t.rows
            );
            if let Some(at) = line.find(&needle) {
                let start = at + needle.len();
                let old = &line[start..start + 64];
                if old != t.checksum {
                    pairs.push((old.to_owned(), t.checksum.clone()));
                }
            }
        }
    }
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_is_removed_by_repair_never_served() {
    let Some(fx) = fleet().await else {
        return;
    };
    let task = import_elsewhere(&fx, "killed").await;
    // Killed once its operation is recorded and its storage exists.
    loop {
        let found = fx.tenantry.catalog().find_tenant("killed").await;
        if let Some(t) = found.expect("lookup").filter(|t| t.role.is_some()) {
            let op = fx.tenantry.catalog().operation(t.id).await.expect("op");
            if op.is_some() {
                break;
            }
        }
        assert!(
            !task.is_finished(),
            "the import ended before it could be killed"
        );
        tokio::task::yield_now().await;
    }
    task.abort();
    let _ = task.await;

    let killed = fx.tenant("killed").await;
    assert_eq!(killed.status, tenantry::Status::Provisioning);
    // A statement the killed process had sent (its CREATE DATABASE, say) runs to its end on
    // the server after the process is gone: wait until none naming its storage is left, as
    // an operator repairs after the crash, not during it.
    let admin_url = tenantry_testkit::postgres_url();
    let mut watch = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .expect("pg");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
             AND state = 'active' AND query LIKE '%' || $1 || '%'",
        )
        .bind(killed.storage.as_str())
        .fetch_one(&mut watch)
        .await
        .expect("activity");
        if busy == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed import's statements never ended"
        );
        tokio::task::yield_now().await;
    }
    let err = fx
        .tenantry
        .repair_tenant("killed")
        .await
        .expect_err("abandoned");
    assert!(
        matches!(err, Error::ImportAbandoned { ref slug } if slug == "killed"),
        "{err}"
    );
    assert_nothing_created(&fx, "killed").await;
    // Its database is gone from the server too.
    let admin = tenantry_testkit::postgres_url();
    let mut pg = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("pg");
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(killed.storage.as_str())
        .fetch_one(&mut pg)
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0, "the killed import's database is left");
    fx.cleanup().await;
}

/// Binary values (NULL, empty, zero bytes, 1 MiB) between SQLite and each server engine,
/// through the one binary type both spell alike: `BYTEA` with PostgreSQL, `LONGBLOB` with
/// MariaDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_values_round_trip_between_sqlite_and_each_server() {
    let Some(pg) = tenantry_testkit::require_postgres().await else {
        return;
    };
    let Some(my) = require_mysql().await else {
        return;
    };
    let (pg_url, pg_db) =
        tenantry_testkit::fresh_postgres_database(&pg, "tenantry_test_server").await;
    let big: String = (0..(1 << 20)).map(|i| format!("{:02x}", i % 251)).collect();
    for (server, kind, url) in [("pg", "BYTEA", &pg_url), ("my", "LONGBLOB", &my)] {
        // A fleet of its own: the set's one type must be valid on SQLite and this server.
        let Some(fx) = Fixture::new(Backend::Sqlite).await else {
            return;
        };
        fx.tenantry
            .add_server(server, url)
            .await
            .expect("add server");
        for entry in std::fs::read_dir(fx.migrations_dir()).expect("migrations") {
            std::fs::remove_file(entry.expect("entry").path()).expect("remove");
        }
        fx.write_migration(
            "20250301000001_blobs.sql",
            &format!(
                "CREATE TABLE blobs (tenant_id VARCHAR(26) NOT NULL, id INTEGER NOT NULL, \
                 data {kind}, PRIMARY KEY (tenant_id, id));"
            ),
        );
        let slug = format!("bin-{server}");
        let source = fx.create(&slug).await.expect("create");
        exec(
            &fx,
            &source,
            &format!(
                "INSERT INTO blobs VALUES ('{id}', 1, NULL), ('{id}', 2, X''), ('{id}', 3, X'000100ff'), \
                 ('{id}', 4, X'{big}')",
                id = source.id
            ),
        )
        .await;
        let file = fx.dir.path().join(format!("{slug}.tnt.gz"));
        let original = fx
            .tenantry
            .export_tenant(&slug, &file)
            .await
            .expect("export");
        let there = import(
            &fx,
            &file,
            &format!("{slug}-there"),
            (server, Strategy::Database),
        )
        .await
        .unwrap_or_else(|e| panic!("into {server}: {e}"));
        assert_eq!(totals(&there.manifest), totals(&original));
        let back_file = fx.dir.path().join(format!("{slug}-there.tnt"));
        fx.tenantry
            .export_tenant(&format!("{slug}-there"), &back_file)
            .await
            .expect("export there");
        let back = import(
            &fx,
            &back_file,
            &format!("{slug}-back"),
            ("local", Strategy::Database),
        )
        .await
        .unwrap_or_else(|e| panic!("back from {server}: {e}"));
        assert_eq!(totals(&back.manifest), totals(&original));
        let mut conn = fx
            .tenantry
            .connect_storage(&back.tenant)
            .await
            .expect("connect");
        let rows: Vec<(i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT id, data FROM blobs ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .expect("read");
        assert_eq!(rows[0], (1, None));
        assert_eq!(
            rows[1],
            (2, Some(Vec::new())),
            "an empty value stays empty, not NULL"
        );
        assert_eq!(rows[2], (3, Some(vec![0, 1, 0, 255])));
        assert_eq!(rows[3].1.as_ref().map(Vec::len), Some(1 << 20));
        for t in [
            slug.clone(),
            format!("{slug}-there"),
            format!("{slug}-back"),
        ] {
            fx.tenantry.delete_tenant(&t, true).await.expect("delete");
        }
        fx.cleanup().await;
    }
    tenantry_testkit::drop_postgres_database(&pg, &pg_db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_under_way_elsewhere_is_neither_deleted_nor_repaired() {
    let Some(fx) = fleet().await else {
        return;
    };
    let task = import_elsewhere(&fx, "busy").await;
    // While it runs, a delete and a repair from this process leave it alone.
    loop {
        let found = fx
            .tenantry
            .catalog()
            .find_tenant("busy")
            .await
            .expect("lookup");
        if let Some(t) = found {
            let op = fx.tenantry.catalog().operation(t.id).await.expect("op");
            if op.is_some() {
                let err = fx
                    .tenantry
                    .delete_tenant("busy", true)
                    .await
                    .expect_err("running");
                assert!(
                    matches!(err, Error::OperationRunning { ref kind, .. } if kind == "import"),
                    "{err}"
                );
                let err = fx
                    .tenantry
                    .repair_tenant("busy")
                    .await
                    .expect_err("running");
                assert!(matches!(err, Error::OperationRunning { .. }), "{err}");
                break;
            }
        }
        assert!(
            !task.is_finished(),
            "the import ended before it could be disturbed"
        );
        tokio::task::yield_now().await;
    }
    let imported = task.await.expect("join").expect("the import completes");
    assert_eq!(imported.tenant.status, tenantry::Status::Active);
    assert_eq!(fx.tenant("busy").await.status, tenantry::Status::Active);
    fx.cleanup().await;
}

/// Starts importing a large archive of the seeded source into tenant `slug` on `pg`, from
/// another handle, so a test can act while the import runs.
async fn import_elsewhere(
    fx: &Fixture,
    slug: &str,
) -> tokio::task::JoinHandle<tenantry::Result<tenantry::Imported>> {
    let t = seeded(fx).await;
    let id = t.id.to_string();
    // Enough rows that loading takes a while.
    let values: Vec<String> = (0..20_000)
        .map(|n| format!("('{id}', {}, {n}, 'filler')", 10 + n))
        .collect();
    exec(
        fx,
        &t,
        &format!("INSERT INTO notes VALUES {}", values.join(", ")),
    )
    .await;
    let file = fx.dir.path().join("big.tnt");
    fx.tenantry
        .export_tenant("source", &file)
        .await
        .expect("export");
    let other = fx.reopen(Settings::default()).await;
    let slug = slug.to_owned();
    tokio::spawn(async move {
        other
            .import_tenant(
                &file,
                ImportTenant {
                    slug,
                    server: Some("pg".into()),
                    ..Default::default()
                },
            )
            .await
    })
}
