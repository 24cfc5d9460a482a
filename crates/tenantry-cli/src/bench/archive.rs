//! `tenantry bench archive`: one tenant of N rows exported to an archive and imported into a
//! new tenant on the same server and strategy (the import reads every row back and checks
//! it), then backed up and restored in place, portably and with the engine's own copy where
//! it has one; on a throwaway catalog; times, file size and the process's peak memory, which
//! stays flat as N grows because rows are streamed.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use tenantry::{ImportTenant, NewTenant, Settings, Strategy};

use super::scratch;
use super::stats::{peak_rss_mib, round, secs};
use crate::cli::ArchiveBenchArgs;
use crate::output;

#[derive(Debug, Serialize)]
struct Report {
    engine: String,
    strategy: String,
    rows: u64,
    file_mib: f64,
    compressed: bool,
    export_s: f64,
    export_rows_per_s: f64,
    /// Creating the tenant, loading, checking the file, reading every row back.
    import_s: f64,
    import_rows_per_s: f64,
    /// A portable backup restored in place (the tenant suspended, emptied, loaded, read back).
    restore_archive_s: f64,
    /// The engine's own copy (SQLite `VACUUM INTO`, `pg_dump`, `mysqldump`), where it has
    /// one: taking it (with the manifest's checksums), and restoring it in place.
    backup_native_s: Option<f64>,
    restore_native_s: Option<f64>,
    /// How long the native backup held the tenant's writes (MySQL/MariaDB's read lock
    /// until the dump started).
    native_writes_held_ms: Option<u64>,
    peak_rss_mib: Option<f64>,
}

pub async fn run(args: ArchiveBenchArgs) -> anyhow::Result<ExitCode> {
    let strategy: Strategy = args.strategy.parse()?;
    anyhow::ensure!(args.rows > 0, "--rows takes 1 or more");
    let dir = scratch::scratch_dir();
    let result = measure(&dir, &args, strategy).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        output::json(&report)?;
    } else {
        outln!(
            "{} {}: {} rows, archive {} MiB{}; export {} s ({} rows/s), import {} s ({} rows/s, read back and verified); restore in place {} s; native backup {} s{}, its restore {} s; peak memory {} MiB",
            report.engine,
            report.strategy,
            report.rows,
            report.file_mib,
            if report.compressed { " (gzip)" } else { "" },
            report.export_s,
            report.export_rows_per_s,
            report.import_s,
            report.import_rows_per_s,
            report.restore_archive_s,
            report
                .backup_native_s
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            report
                .native_writes_held_ms
                .map(|ms| format!(" (writes held {ms} ms)"))
                .unwrap_or_default(),
            report
                .restore_native_s
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            report
                .peak_rss_mib
                .map_or_else(|| "?".to_owned(), |m| m.to_string())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    dir: &std::path::Path,
    args: &ArchiveBenchArgs,
    strategy: Strategy,
) -> anyhow::Result<Report> {
    let scratch = scratch::open(dir, Settings::default(), args.server.clone()).await?;
    let t = &scratch.tenantry;
    let create = |slug: &str| NewTenant {
        slug: slug.into(),
        server: Some(scratch.server.clone()),
        strategy: Some(strategy),
        ..NewTenant::default()
    };
    let source = t.create_tenant(create("source")).await?;
    seed(t, &source, args.rows).await?;
    let file = dir.join(if args.gzip {
        "source.tnt.gz"
    } else {
        "source.tnt"
    });
    let started = Instant::now();
    let manifest = t.export_tenant("source", &file).await?;
    let export = started.elapsed();
    let bytes = std::fs::metadata(&file).context("archive size")?.len();
    let started = Instant::now();
    t.import_tenant(
        &file,
        ImportTenant {
            slug: "copy".into(),
            server: Some(scratch.server.clone()),
            strategy: Some(strategy),
            ..ImportTenant::default()
        },
    )
    .await?;
    let import = started.elapsed();
    let backup = t.backup_tenant("source", false).await?;
    let started = Instant::now();
    t.restore_tenant("source", &backup.id, None).await?;
    let restore_archive = started.elapsed();
    // Every engine copies a tenant's own database (and PostgreSQL its schema) natively.
    let (backup_native, restore_native, writes_held) = if strategy != Strategy::Shared {
        let started = Instant::now();
        let backup = t.backup_tenant("source", true).await?;
        let taken = started.elapsed();
        let started = Instant::now();
        t.restore_tenant("source", &backup.id, None).await?;
        (
            Some(secs(taken)),
            Some(secs(started.elapsed())),
            backup.writes_held_ms,
        )
    } else {
        (None, None, None)
    };
    for slug in ["copy", "source"] {
        t.delete_tenant(slug, true).await?;
    }
    let rows = manifest.rows();
    let per_s = |d: std::time::Duration| round(rows as f64 / d.as_secs_f64().max(1e-9));
    Ok(Report {
        engine: scratch.engine.to_string(),
        strategy: strategy.to_string(),
        rows,
        file_mib: round(bytes as f64 / (1024.0 * 1024.0)),
        compressed: args.gzip,
        export_s: secs(export),
        export_rows_per_s: per_s(export),
        import_s: secs(import),
        import_rows_per_s: per_s(import),
        restore_archive_s: secs(restore_archive),
        backup_native_s: backup_native,
        restore_native_s: restore_native,
        native_writes_held_ms: writes_held,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// `rows` usage events, inserted a thousand per statement through the administrative
/// connection.
pub(super) async fn seed(
    t: &tenantry::Tenantry,
    tenant: &tenantry::Tenant,
    rows: u64,
) -> anyhow::Result<()> {
    let mut conn = t.connect_storage(tenant).await?;
    let id = tenant.id;
    let mut n = 0u64;
    while n < rows {
        let batch = (rows - n).min(1_000);
        let values: Vec<String> = (n..n + batch)
            .map(|i| {
                format!(
                    "('{i:026}', '{id}', 'api.call', {}, '2025-0{}-1{} 1{}:2{}:3{}')",
                    i % 1_000,
                    1 + i % 9,
                    i % 10,
                    i % 10,
                    i % 6,
                    i % 10
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO usage_events (id, tenant_id, event_type, quantity, occurred_at) VALUES {}",
            values.join(", ")
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .context("seed usage events")?;
        n += batch;
    }
    Ok(())
}
