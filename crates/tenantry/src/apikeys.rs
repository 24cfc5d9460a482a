//! API keys for the admin API: minted once, stored as a hash, scoped, optionally bound to
//! one tenant ([docs/0004](../../../docs/0004-control-plane.md)).
//!
//! A key reads `tnt_<key id>_<secret>`: the prefix lets secret scanners recognise it, the id
//! finds its row, and only SHA-256 of the 256-bit random secret is kept, compared in constant
//! time.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use ulid::Ulid;

use crate::Tenantry;
use crate::catalog::{ApiKeyRow, now};
use crate::error::{Error, Result};
use crate::ident::{KeyName, TenantId};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Read tenants, domains, members, servers, migrations and events.
    #[serde(rename = "tenants:read")]
    TenantsRead,
    /// Create, change and delete tenants and their domains.
    #[serde(rename = "tenants:write")]
    TenantsWrite,
    /// Add and change users and memberships.
    #[serde(rename = "members:write")]
    MembersWrite,
    /// Run, revert and undo rollouts.
    #[serde(rename = "migrations:run")]
    MigrationsRun,
    /// Read and verify the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Set and remove tenant secrets (their values are never read back).
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    /// Everything, including servers and API keys.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::TenantsRead,
        Scope::TenantsWrite,
        Scope::MembersWrite,
        Scope::MigrationsRun,
        Scope::AuditRead,
        Scope::SecretsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TenantsRead => "tenants:read",
            Scope::TenantsWrite => "tenants:write",
            Scope::MembersWrite => "members:write",
            Scope::MigrationsRun => "migrations:run",
            Scope::AuditRead => "audit:read",
            Scope::SecretsWrite => "secrets:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Result<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| Error::UnknownScope {
                scope: value.to_owned(),
                scopes: Scope::ALL.map(Scope::as_str).join(", "),
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The tenant the key is bound to (its id), if any.
    pub tenant_id: Option<String>,
    /// That tenant's slug, while the tenant exists.
    pub tenant: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    /// Whether the key grants `scope` (`admin` grants every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// The audit log's actor for what this key does.
    pub fn actor(&self) -> String {
        format!("key:{}", self.name)
    }
}

/// A key just created: the only time its secret is seen.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MintedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `tnt_<id>_<secret>`: show it once; only its hash is stored.
    pub secret: String,
}

/// What a new key may do.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Bind the key to this tenant (a slug).
    pub tenant: Option<String>,
}

const PREFIX: &str = "tnt_";

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a presented key into its id and secret, if it has the shape of one.
fn split(token: &str) -> Option<(String, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id = Ulid::from_string(id).ok()?;
    let well_formed = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| (id.to_string(), secret))
}

impl Tenantry {
    /// Creates a key and returns it with its secret, which is not stored.
    pub async fn create_api_key(&self, new: NewApiKey) -> Result<MintedKey> {
        let name = KeyName::new(&new.name)?;
        let mut scopes = new.scopes;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::NoScopes {
                name: name.to_string(),
            });
        }
        let tenant = match &new.tenant {
            Some(slug) => Some(self.catalog().tenant(slug).await?),
            None => None,
        };
        let id = Ulid::new();
        let secret = hex::encode(crate::crypto::random_key());
        let row = ApiKeyRow {
            id: id.to_string(),
            name: name.to_string(),
            secret_hash: secret_hash(&secret),
            scopes: scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            tenant_id: tenant.as_ref().map(|t| t.id.to_string()),
            created_at: now(),
            created_by: crate::audit::current_actor(),
            revoked_at: None,
        };
        let detail = match &tenant {
            Some(t) => format!("scopes {}; tenant {}", row.scopes, t.slug),
            None => format!("scopes {}", row.scopes),
        };
        self.catalog().insert_api_key(&row, detail).await?;
        let key = self.api_key_of(row).await?;
        let secret = format!("{PREFIX}{}_{secret}", id.to_string().to_ascii_lowercase());
        Ok(MintedKey { key, secret })
    }

    /// Every key, live and revoked, by name.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut keys = Vec::new();
        for row in self.catalog().api_keys().await? {
            keys.push(self.api_key_of(row).await?);
        }
        Ok(keys)
    }

    /// Revokes the key named `name`: refused from the next request on, in every process.
    pub async fn revoke_api_key(&self, name: &str) -> Result<ApiKey> {
        let row = self.catalog().revoke_api_key(name).await?;
        self.api_key_of(row).await
    }

    /// The live key `token` is, or `None` for anything else (malformed, unknown, revoked,
    /// wrong secret) — the caller cannot tell which.
    pub async fn authenticate_api_key(&self, token: &str) -> Result<Option<ApiKey>> {
        let Some((id, secret)) = split(token) else {
            return Ok(None);
        };
        let Some(row) = self.catalog().api_key_by_id(&id).await? else {
            return Ok(None);
        };
        let presented = secret_hash(&secret.to_ascii_lowercase());
        let matches: bool = presented
            .as_bytes()
            .ct_eq(row.secret_hash.as_bytes())
            .into();
        if !matches || row.revoked_at.is_some() {
            return Ok(None);
        }
        self.api_key_of(row).await.map(Some)
    }

    async fn api_key_of(&self, row: ApiKeyRow) -> Result<ApiKey> {
        let scopes = row
            .scopes
            .split_whitespace()
            .map(|s| {
                Scope::parse(s).map_err(|_| Error::CorruptCatalog {
                    field: "api_keys.scopes",
                    value: row.scopes.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tenant = match &row.tenant_id {
            Some(id) => {
                let id = TenantId::parse(id)?;
                self.catalog()
                    .find_tenant_by_id(id)
                    .await?
                    .map(|t| t.slug.to_string())
            }
            None => None,
        };
        Ok(ApiKey {
            id: row.id,
            name: row.name,
            scopes,
            tenant_id: row.tenant_id,
            tenant,
            created_at: row.created_at,
            created_by: row.created_by,
            revoked_at: row.revoked_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_keys_split() {
        let id = Ulid::new().to_string().to_ascii_lowercase();
        let secret = "ab".repeat(32);
        let good = format!("tnt_{id}_{secret}");
        assert!(split(&good).is_some());
        assert!(split(&format!("tnt_{id}_{}", &secret[1..])).is_none());
        assert!(split(&format!("xyz_{id}_{secret}")).is_none());
        assert!(split(&format!("tnt_{id}{secret}")).is_none());
        assert!(split(&format!("tnt_notanid_{secret}")).is_none());
        assert!(split(&format!("tnt_{id}_{}zz", &secret[2..])).is_none());
    }

    #[test]
    fn scopes_parse_by_their_names_only() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()).ok(), Some(scope));
        }
        assert!(matches!(
            Scope::parse("tenants:delete"),
            Err(Error::UnknownScope { .. })
        ));
    }
}
