//! `tenantry apikey create | list | revoke`.

use std::process::ExitCode;

use tenantry::{NewApiKey, Scope, Tenantry};

use crate::cli::ApikeyCommand;
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: ApikeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApikeyCommand::Create {
            name,
            scopes,
            tenant,
            json,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s.trim()))
                .collect::<tenantry::Result<Vec<_>>>()?;
            let minted = tenantry
                .create_api_key(NewApiKey {
                    name,
                    scopes,
                    tenant,
                })
                .await?;
            if json {
                output::json(&minted)?;
            } else {
                outln!("{}", output::api_keys(std::slice::from_ref(&minted.key)))?;
                outln!("key (shown once; only its hash is stored):")?;
                outln!("{}", minted.secret)?;
            }
        }
        ApikeyCommand::List { json } => {
            let keys = tenantry.api_keys().await?;
            if json {
                output::json(&keys)?;
            } else {
                outln!("{}", output::api_keys(&keys))?;
            }
        }
        ApikeyCommand::Revoke { name, json } => {
            let key = tenantry.revoke_api_key(&name).await?;
            if json {
                output::json(&key)?;
            } else {
                outln!("revoked API key {:?}", key.name)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
