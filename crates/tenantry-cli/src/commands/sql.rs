use std::process::ExitCode;

use anyhow::Context;
use comfy_table::Table;
use tenantry::Tenantry;

use crate::output;

/// Runs SQL in one transaction on the tenant's application connection.
pub async fn run(
    tenantry: &Tenantry,
    slug: &str,
    sql: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pool = tenantry.tenant_pool(slug).await?;
    let mut tx = pool.begin().await?;
    let rows = match tx.run_script(sql).await {
        Ok(rows) => rows,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(e).with_context(|| {
                format!("tenant {slug:?}: the SQL failed; nothing was committed")
            });
        }
    };
    tx.commit()
        .await
        .with_context(|| format!("tenant {slug:?}: commit"))?;
    if json {
        output::json(&rows)?;
    } else if let Some(first) = rows.first() {
        let mut table = Table::new();
        table.set_header(first.keys().cloned().collect::<Vec<_>>());
        for row in &rows {
            table.add_row(
                row.values()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        outln!("{table}")?;
        outln!("({} row(s))", rows.len())?;
    } else {
        outln!("(0 rows)")?;
    }
    Ok(ExitCode::SUCCESS)
}
