//! `tenantry tenant backup`, `tenant backups` and `tenant restore`.

use tenantry::{Backup, Tenantry};

use crate::output;

pub async fn backup(
    tenantry: &Tenantry,
    slug: &str,
    native: bool,
    json: bool,
) -> anyhow::Result<()> {
    let backup = tenantry.backup_tenant(slug, native).await?;
    if json {
        output::json(&backup)?;
    } else {
        let held = backup
            .writes_held_ms
            .map(|ms| format!("; the tenant's writes waited {ms} ms for it to start"))
            .unwrap_or_default();
        outln!(
            "backup {} of tenant {slug}: {} rows in {} tables at version {}, {} bytes in {}{held}",
            backup.id,
            backup.rows(),
            backup.tables.len(),
            backup.version,
            backup.bytes,
            backup.dir.display()
        )?;
    }
    Ok(())
}

pub async fn list(tenantry: &Tenantry, slug: &str, json: bool) -> anyhow::Result<()> {
    let backups = tenantry.backups(slug).await?;
    if json {
        output::json(&backups)?;
    } else if backups.is_empty() {
        outln!("tenant {slug} has no backups; take one with `tenantry tenant backup {slug}`")?;
    } else {
        outln!("{}", table(&backups))?;
    }
    Ok(())
}

pub async fn restore(
    tenantry: &Tenantry,
    slug: &str,
    from: &str,
    as_slug: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let tenant = tenantry.restore_tenant(slug, from, as_slug).await?;
    if json {
        output::json(&tenant)?;
    } else {
        outln!("{}", output::tenant(&tenant))?;
        match as_slug {
            Some(new) => outln!(
                "backup {from} of {slug} restored into new tenant {new}, verified, {} at version {}",
                tenant.status,
                tenant.version
            )?,
            None => outln!(
                "backup {from} restored in place into {slug}, verified; {} at version {}",
                tenant.status,
                tenant.version
            )?,
        }
    }
    Ok(())
}

fn table(backups: &[Backup]) -> comfy_table::Table {
    let mut table = output::table(&[
        "id", "taken", "method", "engine", "strategy", "version", "rows", "bytes",
    ]);
    for b in backups {
        output::add_row(
            &mut table,
            [
                b.id.clone(),
                b.created_at.clone(),
                format!("{:?}", b.method).to_ascii_lowercase(),
                b.engine.clone(),
                b.strategy.clone(),
                b.version.to_string(),
                b.rows().to_string(),
                b.bytes.to_string(),
            ],
        );
    }
    table
}
