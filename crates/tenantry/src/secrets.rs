//! Tenant secrets (an API token of the tenant's own, a webhook signing key): set by an
//! operator, sealed with the master key in the catalog, listed by name only, and opened
//! only for the tenant's own context ([`Tenantry::tenant_secrets`]).

use std::collections::BTreeMap;

use crate::Tenantry;
use crate::catalog::{SecretInfo, Status};
use crate::error::{Error, Result};
use crate::session::TenantPool;

/// The largest value a secret holds, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Refuses a name that is not 1–63 characters of `A-Z a-z 0-9 _ . -`, starting with a
/// letter or digit.
pub fn check_secret_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(Error::InvalidSecret {
            name: name.to_owned(),
            field: "name",
            reason: "a name is 1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
        }),
    }
}

impl Tenantry {
    /// Sets a tenant's secret (replacing one of the same name), sealed before it reaches the
    /// catalog; the audit log records its name, never its value.
    pub async fn set_secret(&self, slug: &str, name: &str, value: &str) -> Result<SecretInfo> {
        check_secret_name(name)?;
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(Error::InvalidSecret {
                name: name.to_owned(),
                field: "value",
                reason: "a value is 1 byte to 64 KiB",
            });
        }
        let tenant = self.catalog.tenant(slug).await?;
        if matches!(tenant.status, Status::Deleted | Status::Deleting) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "hold secrets",
                hint: "its storage is gone",
            });
        }
        let sealed = self.sealing_key().await?.seal(value);
        self.catalog.put_secret(&tenant, name, &sealed).await?;
        self.catalog
            .secret_names(tenant.id)
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::SecretNotFound {
                tenant: slug.to_owned(),
                name: name.to_owned(),
            })
    }

    /// A tenant's secrets' names and times, by name; never their values.
    pub async fn secret_names(&self, slug: &str) -> Result<Vec<SecretInfo>> {
        let tenant = self.catalog.tenant(slug).await?;
        self.catalog.secret_names(tenant.id).await
    }

    /// Removes a tenant's secret.
    pub async fn remove_secret(&self, slug: &str, name: &str) -> Result<()> {
        let tenant = self.catalog.tenant(slug).await?;
        match self.catalog.delete_secret(&tenant, name).await? {
            true => Ok(()),
            false => Err(Error::SecretNotFound {
                tenant: slug.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    /// The secrets of the tenant `pool` serves, opened: the only way a value leaves the
    /// catalog, for that tenant's own context, while it is active.
    pub async fn tenant_secrets(&self, pool: &TenantPool) -> Result<BTreeMap<String, String>> {
        let tenant = self.catalog.tenant_by_id(pool.tenant().id).await?;
        if tenant.status != Status::Active {
            return Err(Error::InvalidTransition {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                action: "read its secrets",
                hint: "only an active tenant's context reads its secrets",
            });
        }
        let mut out = BTreeMap::new();
        for (name, sealed) in self.catalog.sealed_secrets(tenant.id).await? {
            let what = format!("secret {name:?} of tenant {:?}", tenant.slug.as_str());
            let value = self.open_sealed(&sealed, &what)?;
            out.insert(name, value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::check_secret_name;

    #[test]
    fn secret_names_are_plain() {
        for good in ["STRIPE_KEY", "webhook.signing-key", "a", "9lives"] {
            assert!(check_secret_name(good).is_ok(), "{good}");
        }
        for bad in ["", "_x", "has space", "semi;colon", &"x".repeat(64), "é"] {
            assert!(check_secret_name(bad).is_err(), "{bad:?}");
        }
    }
}
