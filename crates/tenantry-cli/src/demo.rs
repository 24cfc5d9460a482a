//! `tenantry demo`: the whole story on embedded SQLite, in a fresh `./tenantry-demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tenantry::crypto::MasterKey;
use tenantry::{Engine, NewTenant, Settings, Strategy, Tenantry};

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

/// A demo tenant: slug, display name, and where it goes when the demo has a PostgreSQL server.
struct Member {
    slug: &'static str,
    name: &'static str,
    on_server: Option<Strategy>,
}

const FLEET: [Member; 4] = [
    Member {
        slug: "acme",
        name: "Acme Corp",
        on_server: Some(Strategy::Database),
    },
    Member {
        slug: "globex",
        name: "Globex",
        on_server: Some(Strategy::Schema),
    },
    Member {
        slug: "initech",
        name: "Initech",
        on_server: Some(Strategy::Shared),
    },
    Member {
        slug: "hooli",
        name: "Hooli",
        on_server: Some(Strategy::Shared),
    },
];

pub async fn run(server: Option<String>) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let root = PathBuf::from(ROOT);
    prepare(&root).await?;
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
    )?;
    tenantry::example::write_tenant_migrations(&migrations)?;
    MasterKey::generate_if_missing(&config.master_key_file)?;
    let t = Tenantry::open_or_create(config).await?;
    let set = t.migrations()?;
    outln!(
        "catalog: {}\nmigrations: {} files in {} (eight tenant tables, every one with a tenant_id column)",
        data.join("catalog.db").display(),
        set.len(),
        migrations.display()
    )?;
    if let Some(url) = &server {
        step(
            "1b. A PostgreSQL server for the fleet",
            "tenantry server add pg <url>",
        )?;
        let added = t
            .add_server("pg", url)
            .await
            .context("add the PostgreSQL server")?;
        outln!("server pg: {}", added.display_url())?;
    }

    let placed = |m: &Member| match (&server, m.on_server) {
        (Some(_), strategy) => (Some("pg".to_owned()), strategy),
        (None, _) => (None, None),
    };
    let members: Vec<&Member> = match server {
        Some(_) => FLEET.iter().collect(),
        None => FLEET.iter().take(3).collect(),
    };
    step(
        "2. Create tenants: storage, every migration, verified, then active",
        if server.is_some() {
            "tenantry tenant create acme --server pg --strategy database   # globex: schema, initech and hooli: shared"
        } else {
            "tenantry tenant create acme --name \"Acme Corp\""
        },
    )?;
    for m in &members {
        let (server, strategy) = placed(m);
        t.create_tenant(NewTenant {
            slug: m.slug.into(),
            name: Some(m.name.into()),
            server,
            strategy,
        })
        .await
        .with_context(|| format!("create tenant {}", m.slug))?;
    }
    if server.is_some() {
        t.create_tenant(NewTenant {
            slug: "pied-piper".into(),
            name: Some("Pied Piper".into()),
            ..NewTenant::default()
        })
        .await
        .context("create tenant pied-piper")?;
    }
    outln!("{}", output::tenants(&t.catalog().tenants().await?))?;
    if server.is_some() {
        outln!(
            "acme has a database and globex a schema of their own, each reached through its own login role;\n\
             initech and hooli share tables protected by row-level security; pied-piper is a SQLite file."
        )?;
    } else {
        outln!(
            "each tenant is its own SQLite file under {}",
            data.join("tenants").display()
        )?;
    }

    step(
        "3. Add a migration and roll it out to the fleet",
        "tenantry migrate --all",
    )?;
    write(&migrations, BUDGET.0, BUDGET.1)?;
    outln!("added {}", BUDGET.0)?;
    outln!("{}", output::status(&t.status().await?))?;
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    outln!("{}", output::fleet(&report, 0))?;
    if server.is_some() {
        outln!("initech and hooli share one pool: its tables were migrated once for both.")?;
    }

    step(
        "4. A broken migration: live tenants keep serving their previous version",
        "tenantry migrate --all   # exits non-zero, names each failed tenant",
    )?;
    write(&migrations, TAGS_NAME, TAGS_BROKEN)?;
    outln!("added {TAGS_NAME} (it has a typo: CREATE TABLEE)")?;
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    outln!("{}", output::fleet(&report, 0))?;
    let acme = t.catalog().tenant("acme").await?;
    let columns = archived_at_columns(&t, &acme).await?;
    outln!(
        "acme is still {} at version {}; campaigns.archived_at columns: {columns} \
         (DDL is transactional here: the ALTER TABLE before the typo was rolled back with it)",
        acme.status,
        acme.version
    )?;

    step(
        "5. A tenant created now fails at that migration and is never marked active",
        "tenantry tenant create umbrella",
    )?;
    let (umbrella_server, umbrella_strategy) = match &server {
        Some(_) => (Some("pg".to_owned()), Some(Strategy::Schema)),
        None => (None, None),
    };
    match t
        .create_tenant(NewTenant {
            slug: "umbrella".into(),
            name: Some("Umbrella".into()),
            server: umbrella_server,
            strategy: umbrella_strategy,
        })
        .await
    {
        Ok(_) => bail!("the broken migration was expected to fail"),
        Err(e) => outln!("error: {e}")?,
    }
    outln!("{}", output::status(&t.status().await?))?;

    step(
        "6. Fix the file, repair the failed tenant, roll out again",
        "tenantry tenant repair umbrella && tenantry migrate --all",
    )?;
    write(&migrations, TAGS_NAME, TAGS_FIXED)?;
    let umbrella = t.repair_tenant("umbrella").await?;
    outln!(
        "tenant {} is {} at version {}",
        umbrella.slug,
        umbrella.status,
        umbrella.version
    )?;
    let set = t.migrations()?;
    let report = t.migrate_all(&set, &|_| {}).await?;
    outln!("{}", output::fleet(&report, 0))?;
    outln!("{}", output::status(&t.status().await?))?;

    if server.is_some() {
        step(
            "6b. Isolation the database enforces",
            "tenantry sql initech \"SELECT COUNT(*) FROM campaigns\"",
        )?;
        isolation_glimpse(&t).await?;
    }

    step(
        "7. The catalog's event log keeps the history",
        "tenantry events --tenant umbrella",
    )?;
    let events = t.catalog().events(Some(&umbrella), 10).await?;
    outln!("{}", output::events(&events))?;

    t.catalog().close().await;
    outln!(
        "\nDone in {:.1}s. Look around with:\n  tenantry {flags} tenant list\n  tenantry {flags} migrate status",
        started.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// How many `archived_at` columns acme's campaigns table has (0: the failed ALTER rolled back).
async fn archived_at_columns(t: &Tenantry, acme: &tenantry::Tenant) -> anyhow::Result<i64> {
    let sql = match t.catalog().server(acme.server.as_str()).await?.engine {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('campaigns') WHERE name = 'archived_at'"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_name = 'campaigns' AND column_name = 'archived_at' \
             AND table_schema = current_schema()"
        }
    };
    let mut conn = t.connect_storage(acme).await?;
    Ok(sqlx::query_scalar(sql).fetch_one(&mut conn).await?)
}

/// hooli writes a row; initech, in the same tables, cannot see it or reach it.
async fn isolation_glimpse(t: &Tenantry) -> anyhow::Result<()> {
    let hooli = t.catalog().tenant("hooli").await?;
    let pool = t.tenant_pool("hooli").await?;
    let mut tx = pool.begin().await?;
    tx.run_script(&format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('h1', '{}', 'Hooli launch')",
        hooli.id
    ))
    .await?;
    let seen = tx.run_script("SELECT COUNT(*) AS n FROM campaigns").await?;
    tx.commit().await?;
    outln!(
        "hooli sees its campaigns: {}",
        serde_json::Value::from(seen)
    )?;
    let initech = t.tenant_pool("initech").await?;
    for sql in [
        "SELECT COUNT(*) AS n FROM campaigns".to_owned(),
        format!("SELECT set_config('tenantry.tenant', '{}', true)", hooli.id),
        "SET ROLE postgres".to_owned(),
        "ALTER TABLE campaigns DISABLE ROW LEVEL SECURITY".to_owned(),
    ] {
        let mut tx = initech.begin().await?;
        match tx.run_script(&sql).await {
            Ok(rows) => outln!("initech> {sql}\n  {}", serde_json::Value::from(rows))?,
            Err(e) => outln!("initech> {sql}\n  refused: {e}")?,
        }
        let _ = tx.rollback().await;
    }
    let mut tx = initech.begin().await?;
    let after = tx
        .run_script(&format!(
            "SELECT set_config('tenantry.tenant', '{}', true); SELECT COUNT(*) AS n FROM campaigns",
            hooli.id
        ))
        .await?;
    outln!(
        "initech, after claiming hooli's id without its signature, sees: {}",
        serde_json::Value::from(after)
    )?;
    Ok(())
}

fn step(title: &str, command: &str) -> anyhow::Result<()> {
    outln!("\n== {title}\n$ {command}")
}

fn write(dir: &Path, name: &str, sql: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, sql).with_context(|| format!("write {}", path.display()))
}

/// Starts from an empty demo directory; refuses to touch a directory it did not make. The
/// tenants of a previous run are deleted first, so none is left on a server.
async fn prepare(root: &Path) -> anyhow::Result<()> {
    if root.exists() {
        if !root.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by `tenantry demo`; move it away or run the demo elsewhere",
                root.display()
            );
        }
        let data = root.join("data");
        if data.join("catalog.db").exists() {
            let config = Settings {
                data_dir: Some(data),
                migrations: Some(root.join("migrations").join("tenant")),
                ..Settings::default()
            }
            .resolve();
            if let Ok(old) = Tenantry::open(config).await {
                for tenant in old.catalog().tenants().await.unwrap_or_default() {
                    if let Err(e) = old.delete_tenant(tenant.slug.as_str(), true).await {
                        errln!(
                            "note: could not delete the previous demo's tenant {}: {e}",
                            tenant.slug
                        );
                    }
                }
                if old.catalog().server("pg").await.is_ok()
                    && let Err(e) = old.remove_server("pg").await
                {
                    errln!("note: could not remove the previous demo's server: {e}");
                }
                old.catalog().close().await;
            }
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
