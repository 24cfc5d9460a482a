//! `tenantry spares`: build, count and remove spares.

use std::process::ExitCode;

use serde::Serialize;
use tenantry::{Strategy, Tenantry};

use crate::cli::SparesCommand;
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: SparesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SparesCommand::Add {
            count,
            server,
            strategy,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            let built = tenantry
                .add_spares(server.as_deref(), strategy, count)
                .await?;
            if json {
                output::json(&built)?;
            } else if let Some(first) = built.first() {
                outln!(
                    "{} spare(s) built on {} ({}) at version {}, closed to every login",
                    built.len(),
                    first.server,
                    first.strategy,
                    first.version
                )?;
            } else {
                outln!("no spares built")?;
            }
        }
        SparesCommand::List { json } => {
            let counts = tenantry.spare_counts().await?;
            if json {
                output::json(&counts)?;
            } else if counts.is_empty() {
                outln!("no spares; build some with `tenantry spares add --count N`")?;
            } else {
                outln!("{}", output::spares(&counts))?;
            }
        }
        SparesCommand::Remove {
            count,
            server,
            strategy,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            let removed = tenantry
                .remove_spares(server.as_deref(), strategy, count)
                .await?;
            if json {
                #[derive(Serialize)]
                struct Removed {
                    removed: usize,
                }
                output::json(&Removed { removed })?;
            } else {
                outln!("{removed} spare(s) removed")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
