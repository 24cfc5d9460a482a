//! `tenantry resolve`: what a request resolves to, or why it is refused.

use std::process::ExitCode;

use anyhow::bail;
use tenantry::Tenantry;
use tenantry::routing::{Access, RequestParts, Resolver};

use crate::cli::ResolveArgs;
use crate::output;

pub async fn run(tenantry: &Tenantry, args: ResolveArgs) -> anyhow::Result<ExitCode> {
    let mut headers = Vec::new();
    for header in &args.header {
        let Some((name, value)) = header.split_once(':') else {
            bail!("header {header:?}: write it as 'Name: value'");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(token) = &args.bearer {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    let request = RequestParts {
        hosts: args.host.clone(),
        headers,
        path: args.path.clone(),
    };
    let resolver = Resolver::new(tenantry)?;
    let access = if args.public {
        Access::Public
    } else {
        Access::Configured
    };
    match resolver.resolve(&request, access).await {
        Ok(resolution) => {
            if args.json {
                output::json(&serde_json::json!({
                    "tenant": {
                        "id": resolution.tenant.id.to_string(),
                        "slug": resolution.tenant.slug,
                        "strategy": resolution.tenant.strategy,
                        "server": resolution.tenant.server,
                        "status": resolution.tenant.status,
                    },
                    "via": resolution.via,
                    "caller": resolution.caller,
                }))?;
            } else {
                outln!(
                    "tenant  {} ({}, {} on {})",
                    output::escaped(resolution.tenant.slug.as_str()),
                    resolution.tenant.id,
                    resolution.tenant.strategy,
                    resolution.tenant.server
                )?;
                outln!("via     {}", output::escaped(&resolution.via))?;
                match &resolution.caller {
                    Some(caller) => {
                        outln!(
                            "user    {} ({})",
                            output::escaped(&caller.email),
                            caller.user_id
                        )?;
                        outln!(
                            "role    {}",
                            caller.role.as_deref().unwrap_or("(not a member)")
                        )?;
                    }
                    None => outln!("user    (anonymous)")?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            if args.json {
                output::json(&refusal.body())?;
            } else {
                outln!(
                    "refused {} ({}): {}",
                    refusal.code(),
                    refusal.status(),
                    output::escaped(&refusal.to_string())
                )?;
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
