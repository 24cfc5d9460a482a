//! `tenantry demo`: the whole story on embedded SQLite, in a fresh `./tenantry-demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tenantry::{NewTenant, Settings, Tenantry};

use crate::output;

const ROOT: &str = "tenantry-demo";
const MARKER: &str = ".tenantry-demo";

const BUDGET: (&str, &str) = (
    "20250101000009_add_campaign_budget.sql",
    "ALTER TABLE campaigns ADD COLUMN budget_cents BIGINT NOT NULL DEFAULT 0;\n",
);
const TAGS_NAME: &str = "20250101000010_add_campaign_tags.sql";
const TAGS_BROKEN: &str = "ALTER TABLE campaigns ADD COLUMN archived_at TIMESTAMP;\n\
                           CREATE TABLEE campaign_tags (campaign_id VARCHAR(26), tag VARCHAR(64));\n";
const TAGS_FIXED: &str = "ALTER TABLE campaigns ADD COLUMN archived_at TIMESTAMP;\n\
                          CREATE TABLE campaign_tags (\n    tenant_id VARCHAR(26) NOT NULL,\n    \
                          campaign_id VARCHAR(26) NOT NULL,\n    tag VARCHAR(64) NOT NULL\n);\n";

pub async fn run(server: Option<String>) -> anyhow::Result<ExitCode> {
    let _ = &server;
    let started = std::time::Instant::now();
    let root = PathBuf::from(ROOT);
    prepare(&root)?;
    let migrations = root.join("migrations").join("tenant");
    let data = root.join("data");
    let flags = format!(
        "--data-dir {} --migrations {}",
        data.display(),
        migrations.display()
    );
    let config = Settings {
        data_dir: Some(data.clone()),
        migrations: Some(migrations.clone()),
        ..Settings::default()
    }
    .resolve();

    step(
        "1. A catalog on embedded SQLite, and a tenant migration set",
        "tenantry init",
    );
    tenantry::example::write_tenant_migrations(&migrations)?;
    let t = Tenantry::open(config).await?;
    let set = t.migrations()?;
    println!(
        "catalog: {}\nmigrations: {} files in {} (eight tenant tables, every one with a tenant_id column)",
        data.join("catalog.db").display(),
        set.len(),
        migrations.display()
    );

    step(
        "2. Create three tenants: storage, every migration, verified, then active",
        "tenantry tenant create acme --name \"Acme Corp\"",
    );
    for (slug, name) in [
        ("acme", "Acme Corp"),
        ("globex", "Globex"),
        ("initech", "Initech"),
    ] {
        t.create_tenant(NewTenant {
            slug: slug.into(),
            name: Some(name.into()),
            ..NewTenant::default()
        })
        .await
        .with_context(|| format!("create tenant {slug}"))?;
    }
    println!("{}", output::tenants(&t.catalog().tenants().await?));
    println!(
        "each tenant is its own SQLite file under {}",
        data.join("tenants").display()
    );

    step(
        "3. Add a migration and roll it out to the fleet",
        "tenantry migrate --all",
    );
    write(&migrations, BUDGET.0, BUDGET.1)?;
    println!("added {}", BUDGET.0);
    println!("{}", output::status(&t.status().await?));
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    println!("{}", output::fleet(&report));

    step(
        "4. A broken migration: live tenants keep serving their previous version",
        "tenantry migrate --all   # exits non-zero, names each failed tenant",
    );
    write(&migrations, TAGS_NAME, TAGS_BROKEN)?;
    println!("added {TAGS_NAME} (it has a typo: CREATE TABLEE)");
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    println!("{}", output::fleet(&report));
    let acme = t.catalog().tenant("acme").await?;
    let mut conn = t.connect_storage(&acme).await?;
    let columns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('campaigns') WHERE name = 'archived_at'",
    )
    .fetch_one(&mut conn)
    .await?;
    println!(
        "acme is still active at version {}; campaigns.archived_at columns: {columns} \
         (SQLite DDL is transactional: the ALTER TABLE before the typo was rolled back with it)",
        acme.version
    );

    step(
        "5. A tenant created now fails at that migration and is never marked active",
        "tenantry tenant create umbrella",
    );
    match t
        .create_tenant(NewTenant {
            slug: "umbrella".into(),
            name: Some("Umbrella".into()),
            ..NewTenant::default()
        })
        .await
    {
        Ok(_) => bail!("the broken migration was expected to fail"),
        Err(e) => println!("error: {e}"),
    }
    println!("{}", output::status(&t.status().await?));

    step(
        "6. Fix the file, repair the failed tenant, roll out again",
        "tenantry tenant repair umbrella && tenantry migrate --all",
    );
    write(&migrations, TAGS_NAME, TAGS_FIXED)?;
    let umbrella = t.repair_tenant("umbrella").await?;
    println!(
        "tenant {} is {} at version {}",
        umbrella.slug, umbrella.status, umbrella.version
    );
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    println!("{}", output::fleet(&report));
    println!("{}", output::status(&t.status().await?));

    step(
        "7. The catalog's event log keeps the history",
        "tenantry events --tenant umbrella",
    );
    let events = t.catalog().events(Some(&umbrella), 10).await?;
    println!("{}", output::events(&events));

    t.catalog().close().await;
    println!(
        "\nDone in {:.1}s. Look around with:\n  tenantry {flags} tenant list\n  tenantry {flags} migrate status",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn step(title: &str, command: &str) {
    println!("\n== {title}\n$ {command}");
}

fn write(dir: &Path, name: &str, sql: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, sql).with_context(|| format!("write {}", path.display()))
}

/// Starts from an empty demo directory; refuses to touch a directory it did not make.
fn prepare(root: &Path) -> anyhow::Result<()> {
    if root.exists() {
        if !root.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by `tenantry demo`; move it away or run the demo elsewhere",
                root.display()
            );
        }
        std::fs::remove_dir_all(root).with_context(|| format!("clear {}", root.display()))?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    std::fs::write(
        root.join(MARKER),
        "made by `tenantry demo`; removed by the next run\n",
    )
    .with_context(|| format!("write {}", root.join(MARKER).display()))
}
