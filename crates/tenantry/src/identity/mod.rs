//! Who may reach which tenant: domains, users and their memberships (the catalog keeps them,
//! [`crate::catalog`] writes them), with validation on the way in and an event for every
//! change. Routing ([`crate::routing`]) reads them through its cache.
//!
//! Invariants: a host is stored only in its normalised form ([`Host`]), so one host cannot be
//! held twice under two spellings; an e-mail is unique on its lowercase form; a membership's
//! role is one of the configured [`Roles`].

mod password;
mod roles;

pub use password::{hash_password, verify_password};
pub use roles::Roles;

use crate::Tenantry;
use crate::catalog::{Domain, Membership, NewEvent, Tenant, User, UserStatus};
use crate::error::{Error, Result};
use crate::routing::Host;

/// A user to add.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    /// Hashed with argon2id before it reaches the catalog; never stored as given.
    pub password: Option<String>,
}

/// The lowercase form an e-mail is unique on, after checking its shape: one `@`, a local part
/// and a domain, no spaces or control characters, at most 254 characters.
pub fn email_key(email: &str) -> Result<String> {
    let bad = |reason| Error::InvalidEmail {
        value: email.to_owned(),
        reason,
    };
    if email.is_empty() || email.len() > 254 {
        return Err(bad("must be 1 to 254 characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("must contain an @"));
    };
    if local.is_empty() || domain.is_empty() || local.contains('@') {
        return Err(bad("must be local-part@domain"));
    }
    Ok(email.to_lowercase())
}

/// A host that does not parse, as the library's error naming it.
fn invalid_host(input: &str) -> impl FnOnce(crate::routing::HostError) -> Error + '_ {
    move |e| Error::InvalidHost {
        value: input.to_owned(),
        reason: e.to_string(),
    }
}

impl Tenantry {
    /// Routes `host` to the tenant `slug`. The host is normalised first (lowercase, no port,
    /// no trailing dot, IDN as punycode); a host routes to one tenant at most. The tenant's
    /// first domain, or one added with `primary`, becomes its primary domain.
    pub async fn add_domain(&self, slug: &str, host: &str, primary: bool) -> Result<Domain> {
        let host = Host::parse_domain(host).map_err(invalid_host(host))?;
        let tenant = self.live_tenant(slug, "add a domain").await?;
        self.catalog
            .insert_domain(tenant.id, host.as_str(), primary)
            .await?;
        self.identity_event(Some(&tenant), "domain.add", host.to_string())
            .await;
        self.catalog
            .domain(host.as_str())
            .await?
            .ok_or_else(|| Error::DomainNotFound {
                host: host.to_string(),
            })
    }

    /// Stops routing `host` to its tenant.
    pub async fn remove_domain(&self, host: &str) -> Result<Domain> {
        let host = Host::parse(host).map_err(invalid_host(host))?;
        let removed = self.catalog.delete_domain(host.as_str()).await?;
        let tenant = match crate::ident::TenantId::parse(&removed.tenant_id) {
            Ok(id) => self.catalog.tenant_by_id(id).await.ok(),
            Err(_) => None,
        };
        self.identity_event(tenant.as_ref(), "domain.remove", host.to_string())
            .await;
        Ok(removed)
    }

    /// Every domain, or one tenant's.
    pub async fn domains(&self, slug: Option<&str>) -> Result<Vec<Domain>> {
        let tenant = match slug {
            Some(slug) => Some(self.catalog.tenant(slug).await?.id),
            None => None,
        };
        self.catalog.domains(tenant).await
    }

    /// Adds a user; its e-mail must be new (compared case-insensitively).
    pub async fn add_user(&self, new: NewUser) -> Result<User> {
        let email = new.email.trim();
        let key = email_key(email)?;
        let name = new.display_name.trim();
        if name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(Error::InvalidName {
                kind: "display name",
                value: name.to_owned(),
                reason: "must be at most 255 characters, without control characters",
            });
        }
        let hash = match &new.password {
            Some(password) => Some(hash_password(email, password)?),
            None => None,
        };
        let user = self
            .catalog
            .insert_user(email, &key, name, hash.as_deref())
            .await?;
        self.identity_event(None, "user.add", format!("{} {}", user.id, user.email))
            .await;
        Ok(user)
    }

    /// A user by id or e-mail (any case).
    pub async fn user(&self, user: &str) -> Result<User> {
        let found = match self.catalog.user_by_id(user).await? {
            Some(found) => Some(found),
            None => match email_key(user) {
                Ok(key) => self.catalog.user_by_email_key(&key).await?,
                Err(_) => None,
            },
        };
        found.ok_or_else(|| Error::UserNotFound {
            user: user.to_owned(),
        })
    }

    /// Disables (or, with `active`, re-enables) a user: a disabled user's tokens are refused
    /// everywhere within a second, memberships kept.
    pub async fn set_user_active(&self, user: &str, active: bool) -> Result<User> {
        let found = self.user(user).await?;
        let status = if active {
            UserStatus::Active
        } else {
            UserStatus::Disabled
        };
        self.catalog.set_user_status(&found.id, status).await?;
        let action = if active {
            "user.enable"
        } else {
            "user.disable"
        };
        self.identity_event(None, action, format!("{} {}", found.id, found.email))
            .await;
        self.user(&found.id).await
    }

    /// Whether `password` is the user's password (false when none is set).
    pub async fn check_password(&self, user: &str, password: &str) -> Result<bool> {
        let found = self.user(user).await?;
        match self.catalog.user_password_hash(&found.id).await? {
            Some(hash) => verify_password(&found.email, &hash, password),
            None => Ok(false),
        }
    }

    /// Makes `user` a member of `slug` with `role`, or changes the role of an existing
    /// membership.
    pub async fn add_member(&self, user: &str, slug: &str, role: &str) -> Result<Membership> {
        let role = self.roles().check(role)?;
        let found = self.user(user).await?;
        let tenant = self.live_tenant(slug, "add a member").await?;
        let new = self
            .catalog
            .upsert_membership(&found.id, tenant.id, role)
            .await?;
        let action = if new { "member.add" } else { "member.role" };
        self.identity_event(Some(&tenant), action, format!("{} {role}", found.email))
            .await;
        self.membership(&found, &tenant).await
    }

    /// Changes the role of an existing membership.
    pub async fn set_member_role(&self, user: &str, slug: &str, role: &str) -> Result<Membership> {
        let found = self.user(user).await?;
        let tenant = self.catalog.tenant(slug).await?;
        self.membership(&found, &tenant).await?;
        self.add_member(&found.id, slug, role).await
    }

    /// Ends a membership.
    pub async fn remove_member(&self, user: &str, slug: &str) -> Result<()> {
        let found = self.user(user).await?;
        let tenant = self.catalog.tenant(slug).await?;
        if !self.catalog.delete_membership(&found.id, tenant.id).await? {
            return Err(Error::NotAMember {
                user: found.email,
                tenant: slug.to_owned(),
            });
        }
        self.identity_event(Some(&tenant), "member.remove", found.email)
            .await;
        Ok(())
    }

    /// Memberships of a tenant, of a user, or all.
    pub async fn members(&self, slug: Option<&str>, user: Option<&str>) -> Result<Vec<Membership>> {
        let tenant = match slug {
            Some(slug) => Some(self.catalog.tenant(slug).await?.id),
            None => None,
        };
        let user = match user {
            Some(user) => Some(self.user(user).await?.id),
            None => None,
        };
        self.catalog.memberships(tenant, user.as_deref()).await
    }

    /// The configured roles, highest first.
    pub fn roles(&self) -> &Roles {
        &self.config.routing.roles
    }

    async fn membership(&self, user: &User, tenant: &Tenant) -> Result<Membership> {
        self.catalog
            .memberships(Some(tenant.id), Some(&user.id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotAMember {
                user: user.email.clone(),
                tenant: tenant.slug.to_string(),
            })
    }

    /// A tenant that can take domains and members: not deleting or deleted.
    async fn live_tenant(&self, slug: &str, action: &'static str) -> Result<Tenant> {
        use crate::catalog::Status;
        let tenant = self.catalog.tenant(slug).await?;
        if matches!(tenant.status, Status::Deleting | Status::Deleted) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action,
                hint: "",
            });
        }
        Ok(tenant)
    }

    /// Removes a tenant's domains and memberships as it is deleted; each one is recorded in
    /// the event log.
    pub(crate) async fn forget_routes(&self, tenant: &Tenant) -> Result<()> {
        let (domains, members) = self.catalog.forget_tenant_routes(tenant.id).await?;
        for domain in domains {
            self.identity_event(Some(tenant), "domain.remove", domain.host)
                .await;
        }
        for member in members {
            let detail = format!("{} {}", member.email, member.role);
            self.identity_event(Some(tenant), "member.remove", detail)
                .await;
        }
        Ok(())
    }

    async fn identity_event(&self, tenant: Option<&Tenant>, action: &'static str, detail: String) {
        let event = NewEvent {
            tenant,
            action,
            outcome: "ok",
            target: None,
            detail: Some(detail),
            error: None,
        };
        if let Err(e) = self.catalog.record(event).await {
            tracing::warn!(action, error = %e, "could not append an event");
        }
    }
}
