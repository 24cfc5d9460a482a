use std::process::ExitCode;

use tenantry::Tenantry;

use crate::cli::ServerCommand;
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: ServerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ServerCommand::Add { name, url } => {
            let server = tenantry.add_server(&name, &url).await?;
            outln!(
                "server {} added ({}, {})",
                server.name,
                server.engine,
                server.display_url()
            )?;
        }
        ServerCommand::List { json } => {
            let servers = tenantry.catalog().servers().await?;
            if json {
                let rows: Vec<serde_json::Value> = servers
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name,
                            "engine": s.engine,
                            "url": s.display_url(),
                            "created_at": s.created_at,
                        })
                    })
                    .collect();
                output::json(&rows)?;
            } else {
                outln!("{}", output::servers(&servers))?;
            }
        }
        ServerCommand::Remove { name } => {
            tenantry.remove_server(&name).await?;
            outln!("server {name} removed")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
