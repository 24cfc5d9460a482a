//! `tenantry audit verify | export`.

use std::process::ExitCode;

use tenantry::Tenantry;
use tenantry::catalog::AuditFilter;

use crate::cli::AuditCommand;
use crate::output;

const PAGE: i64 = 1000;

pub async fn run(tenantry: &Tenantry, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { json } => {
            let report = tenantry.verify_audit().await?;
            if json {
                output::json(&report)?;
            } else if let Some(b) = &report.first_break {
                outln!(
                    "audit chain broken at position {} ({:?}): {}",
                    b.position,
                    b.kind,
                    output::escaped(&b.detail)
                )?;
                outln!("{} entries before it hold", report.checked)?;
            } else {
                outln!(
                    "audit chain valid: {} entries ({} of purged tenants erased to ids)",
                    report.checked,
                    report.erased
                )?;
            }
            Ok(if report.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Export { since, tenant } => {
            let filter = AuditFilter {
                since: since
                    .as_deref()
                    .map(tenantry::audit::parse_time)
                    .transpose()?,
                tenant_id: match &tenant {
                    Some(slug) => Some(tenantry.catalog().tenant(slug).await?.id),
                    None => None,
                },
            };
            let mut after = 0;
            loop {
                let page = tenantry.catalog().audit_page(&filter, after, PAGE).await?;
                let Some(last) = page.last().and_then(|e| e.seq) else {
                    break;
                };
                for entry in &page {
                    outln!("{}", serde_json::to_string(entry)?)?;
                }
                after = last;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
