use std::process::ExitCode;

use anyhow::Context;
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
            let code = match &e {
                sqlx::Error::Database(db) => db
                    .code()
                    .map(|c| format!(" (SQLSTATE {c})"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            return Err(e).with_context(|| {
                format!("tenant {slug:?}: the SQL failed{code}; nothing was committed")
            });
        }
    };
    tx.commit()
        .await
        .with_context(|| format!("tenant {slug:?}: commit"))?;
    print_rows(&rows, json)
}

/// Runs SQL with the administrative connection scoped to the tenant's storage.
pub async fn run_admin(
    tenantry: &Tenantry,
    slug: &str,
    sql: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rows = tenantry.run_admin_sql(slug, sql).await?;
    print_rows(&rows, json)
}

/// The rows of the last statement: JSON, or a table (cells escaped) and a count.
fn print_rows(rows: &tenantry::session::JsonRows, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        output::json(rows)?;
    } else if let Some(table) = output::sql_rows(rows) {
        outln!("{table}")?;
        outln!("({} row(s))", rows.len())?;
    } else {
        outln!("(0 rows)")?;
    }
    Ok(ExitCode::SUCCESS)
}
