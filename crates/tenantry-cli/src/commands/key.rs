//! `tenantry secret set | list | remove` and `tenantry key rotate`: what is sealed with the
//! master key.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use tenantry::Tenantry;

use crate::cli::{KeyCommand, SecretCommand};
use crate::output;

pub async fn secret(tenantry: &Tenantry, cmd: SecretCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCommand::Set { slug, name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("read the secret's value from stdin")?;
            let value = value
                .strip_suffix("\r\n")
                .or_else(|| value.strip_suffix('\n'))
                .unwrap_or(&value);
            let info = tenantry.set_secret(&slug, &name, value).await?;
            outln!("secret {} of tenant {slug} set", info.name)?;
        }
        SecretCommand::List { slug, json } => {
            let secrets = tenantry.secret_names(&slug).await?;
            if json {
                output::json(&secrets)?;
            } else if secrets.is_empty() {
                outln!("tenant {slug} has no secrets")?;
            } else {
                outln!("{}", output::secrets(&secrets))?;
            }
        }
        SecretCommand::Remove { slug, name } => {
            tenantry.remove_secret(&slug, &name).await?;
            outln!("secret {name} of tenant {slug} removed")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn key(tenantry: &Tenantry, cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    let KeyCommand::Rotate { json } = cmd;
    let rotation = tenantry.rotate_master_key().await?;
    if json {
        output::json(&rotation)?;
    } else {
        outln!(
            "master key rotated: {} -> {} ({} values resealed, {} already)",
            rotation.from,
            rotation.to,
            rotation.resealed,
            rotation.already
        )?;
        outln!("the new key: {}", rotation.key)?;
    }
    Ok(ExitCode::SUCCESS)
}
