//! `tenantry tenant adopt` and `tenant split`.

use tenantry::{AdoptTenant, BaselineSource, SplitDatabase, Tenantry};

use crate::output;

pub async fn adopt(tenantry: &Tenantry, req: AdoptTenant, json: bool) -> anyhow::Result<()> {
    let adopted = tenantry.adopt_tenant(req).await?;
    if json {
        output::json(&adopted)?;
        return Ok(());
    }
    outln!("{}", output::tenant(&adopted.tenant))?;
    outln!(
        "tenant {} adopts {}: its ledger starts at version {} ({}); it is active at version {}, every migration verified",
        adopted.tenant.slug,
        adopted.tenant.storage,
        adopted.baseline,
        source(adopted.source),
        adopted.tenant.version
    )?;
    if !adopted.extra_tables.is_empty() {
        outln!(
            "tables the migration set does not create, kept as its data: {}",
            adopted.extra_tables.join(", ")
        )?;
    }
    Ok(())
}

pub async fn split(tenantry: &Tenantry, req: SplitDatabase, json: bool) -> anyhow::Result<()> {
    let split = tenantry
        .split_database(req, |done| {
            if json {
                // A closed pipe ends the output, not the split.
                let _ = outln!(
                    "{}",
                    serde_json::json!({ "value": done.value, "slug": done.tenant.slug, "rows": done.rows })
                );
            } else {
                errln!(
                    "value {:?}: tenant {} on {} ({}), {} rows verified",
                    done.value,
                    done.tenant.slug,
                    done.tenant.server,
                    done.tenant.strategy,
                    done.rows
                );
            }
        })
        .await?;
    if json {
        output::json(&split)?;
        return Ok(());
    }
    let rows: u64 = split.tenants.iter().map(|t| t.rows).sum();
    outln!(
        "{} tenants made from the shared database at version {} ({}), {rows} rows verified by counts and checksums",
        split.tenants.len(),
        split.baseline,
        source(split.source)
    )?;
    if !split.unsplit_tables.is_empty() {
        outln!(
            "tables without the column, left in the source: {}",
            split.unsplit_tables.join(", ")
        )?;
    }
    Ok(())
}

fn source(source: BaselineSource) -> &'static str {
    match source {
        BaselineSource::Sqlx => "from _sqlx_migrations",
        BaselineSource::Given => "as given",
    }
}
