use std::process::ExitCode;

use tenantry::Tenantry;

use crate::cli::ServerCommand;
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: ServerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ServerCommand::Add { name, url, pooler } => {
            let mut server = tenantry.add_server(&name, &url).await?;
            if let Some(pooler) = pooler {
                server = tenantry.set_server_pooler(&name, Some(&pooler)).await?;
            }
            outln!(
                "server {} added ({}, {})",
                server.name,
                server.engine,
                server.display_url()
            )?;
            if let Some(pooler) = server.display_pooler_url() {
                outln!("application connections go through {pooler}")?;
            }
        }
        ServerCommand::Pooler { name, url } => {
            let server = tenantry.set_server_pooler(&name, url.as_deref()).await?;
            match server.display_pooler_url() {
                Some(pooler) => {
                    outln!("server {name}: application connections go through {pooler}")?
                }
                None => outln!("server {name}: application connections go to the server itself")?,
            }
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
                            "pooler_url": s.display_pooler_url(),
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
