//! `tenantry tenant export` and `tenant import`.

use std::path::Path;

use tenantry::{ImportTenant, Manifest, Tenantry};

use crate::output;

pub async fn export(tenantry: &Tenantry, slug: &str, to: &Path, json: bool) -> anyhow::Result<()> {
    let manifest = tenantry.export_tenant(slug, to).await?;
    if json {
        output::json(&manifest)?;
    } else {
        outln!("{}", tables(&manifest))?;
        outln!(
            "exported tenant {slug} at version {}: {} rows in {} tables to {}",
            manifest.header.version,
            manifest.rows(),
            manifest.totals.tables.len(),
            to.display()
        )?;
    }
    Ok(())
}

pub async fn import(
    tenantry: &Tenantry,
    file: &Path,
    req: ImportTenant,
    json: bool,
) -> anyhow::Result<()> {
    let imported = tenantry.import_tenant(file, req).await?;
    if json {
        output::json(&imported)?;
    } else {
        let (tenant, manifest) = (&imported.tenant, &imported.manifest);
        outln!("{}", tables(manifest))?;
        outln!("{}", output::tenant(tenant))?;
        outln!(
            "tenant {} imported from {} ({} rows, counts and checksums read back and verified), \
             now active at version {}",
            tenant.slug,
            manifest.header.tenant.slug,
            manifest.rows(),
            tenant.version
        )?;
    }
    Ok(())
}

fn tables(manifest: &Manifest) -> comfy_table::Table {
    let mut table = output::table(&["table", "rows", "checksum"]);
    for t in &manifest.totals.tables {
        output::add_row(
            &mut table,
            [
                t.name.clone(),
                t.rows.to_string(),
                t.checksum.get(..16).unwrap_or(&t.checksum).to_owned(),
            ],
        );
    }
    table
}
