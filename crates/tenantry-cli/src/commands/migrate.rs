use std::process::ExitCode;

use tenantry::Tenantry;

use crate::cli::{MigrateArgs, MigrateCommand};
use crate::output;

pub async fn run(tenantry: &Tenantry, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(MigrateCommand::Status(args)) => {
            return super::migrate_status::status(tenantry, args).await;
        }
        Some(MigrateCommand::Verify(args)) => {
            return super::migrate_status::verify(tenantry, args).await;
        }
        Some(MigrateCommand::Resolve {
            slug,
            migration: version,
            applied,
            retry: _,
        }) => {
            let t = tenantry.resolve_dirty(&slug, version, applied).await?;
            let what = if applied {
                "recorded as applied"
            } else {
                "forgotten; the next run applies it again"
            };
            outln!(
                "{slug}: migration {version} {what}; version is now {}",
                t.version
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(MigrateCommand::Down(args)) => return super::rollout::down(tenantry, *args).await,
        Some(MigrateCommand::Add(_)) => unreachable!("handled before the catalog is opened"),
        Some(MigrateCommand::Rollouts { limit, json }) => {
            let rollouts = tenantry.catalog().rollouts(limit).await?;
            match json {
                true => output::json(&rollouts)?,
                false => outln!("{}", output::rollouts(&rollouts))?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(MigrateCommand::Undo(args)) => return super::rollout::undo(tenantry, *args).await,
        Some(MigrateCommand::Rollout { id, json }) => {
            let rollout = tenantry.catalog().rollout(&id).await?;
            let items = tenantry.catalog().rollout_items(&id).await?;
            match json {
                true => output::json(&serde_json::json!({"rollout": rollout, "items": items}))?,
                false => outln!("{}", output::rollout(&rollout, &items))?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if !args.all && args.tenant.is_empty() && args.resume.is_none() {
        anyhow::bail!(
            "say which tenants: `tenantry migrate --all`, `tenantry migrate --tenant <slug>`, \
             `tenantry migrate --resume <rollout>`, or `tenantry migrate status`"
        );
    }
    super::rollout::migrate(tenantry, args).await
}
