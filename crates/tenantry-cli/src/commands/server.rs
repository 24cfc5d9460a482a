use std::process::ExitCode;

use tenantry::Tenantry;
use tenantry::placement::PlacementChange;

use crate::cli::{PlacementArgs, ServerCommand};
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: ServerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ServerCommand::Add {
            name,
            url,
            pooler,
            placement,
        } => {
            let mut server = tenantry.add_server(&name, &url).await?;
            if let Some(pooler) = pooler {
                server = tenantry.set_server_pooler(&name, Some(&pooler)).await?;
            }
            if placement.capacity.is_some()
                || placement.region.is_some()
                || !placement.labels.is_empty()
            {
                server = tenantry
                    .set_server_placement(&name, change(placement, false, false, Vec::new()))
                    .await?;
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
        ServerCommand::Set {
            name,
            placement,
            no_capacity,
            no_region,
            unlabel,
        } => {
            let server = tenantry
                .set_server_placement(&name, change(placement, no_capacity, no_region, unlabel))
                .await?;
            outln!("{}", output::servers(std::slice::from_ref(&server)))?;
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
                            "capacity": s.capacity,
                            "region": s.region,
                            "labels": s.labels,
                            "created_at": s.created_at,
                        })
                    })
                    .collect();
                output::json(&rows)?;
            } else {
                outln!("{}", output::servers(&servers))?;
            }
        }
        ServerCommand::Drain {
            name,
            to,
            strategy,
            concurrency,
            max_failures,
            json,
        } => {
            let strategy = strategy
                .map(|s| s.parse::<tenantry::Strategy>())
                .transpose()?;
            let drain = tenantry::Drain {
                server: name,
                to,
                strategy,
                concurrency,
                max_failures,
            };
            return super::moves::drain(tenantry, drain, json).await;
        }
        ServerCommand::Undrain { name } => {
            tenantry.undrain_server(&name).await?;
            outln!("server {name} takes new tenants again")?;
        }
        ServerCommand::Remove { name } => {
            tenantry.remove_server(&name).await?;
            outln!("server {name} removed")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The change `server add` / `server set` asks for.
fn change(
    args: PlacementArgs,
    no_capacity: bool,
    no_region: bool,
    unlabel: Vec<String>,
) -> PlacementChange {
    PlacementChange {
        capacity: match (args.capacity, no_capacity) {
            (_, true) => Some(None),
            (Some(n), false) => Some(Some(n)),
            (None, false) => None,
        },
        region: match (args.region, no_region) {
            (_, true) => Some(None),
            (Some(r), false) => Some(Some(r)),
            (None, false) => None,
        },
        add_labels: args.labels,
        remove_labels: unlabel,
    }
}
