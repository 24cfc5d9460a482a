//! `tenantry token mint`: a signed token for a user, as an identity provider would issue it.

use std::process::ExitCode;

use anyhow::{Context, bail};
use tenantry::Tenantry;
use tenantry::catalog::UserStatus;
use tenantry::routing::jwt::{JwtAlgorithm, JwtSettings, mint_hs256};

use crate::cli::TokenCommand;

pub async fn run(tenantry: &Tenantry, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Mint { user, tenant, ttl } = cmd;
    let settings = tenantry
        .config()
        .routing
        .jwt
        .clone()
        .unwrap_or_else(|| JwtSettings::new(JwtAlgorithm::HS256));
    let secret = settings
        .hs256_secret()
        .context("find the secret to sign with")?;
    let user = tenantry.user(&user).await?;
    if user.status != UserStatus::Active {
        bail!(
            "user {} is disabled: a token for them would be refused",
            user.email
        );
    }
    if let Some(slug) = &tenant {
        tenantry.catalog().tenant(slug).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("read the clock")?
        .as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert(settings.subject_claim.clone(), user.id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl.max(1)).into());
    if let Some(slug) = tenant {
        claims.insert(settings.tenant_claim.clone(), slug.into());
    }
    if let Some(iss) = &settings.issuer {
        claims.insert("iss".into(), iss.clone().into());
    }
    if let Some(aud) = &settings.audience {
        claims.insert("aud".into(), aud.clone().into());
    }
    let token = mint_hs256(&secret, &serde_json::Value::Object(claims))?;
    outln!("{token}")?;
    Ok(ExitCode::SUCCESS)
}
