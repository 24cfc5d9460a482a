//! The resolver: from a request's parts to one tenant, the caller and their role — or a
//! [`Refusal`].
//!
//! Every configured identifier is asked; when two name different tenants the request is
//! refused (`tenant_mismatch`), never settled by picking one. The configured order says which
//! identifier a resolution is reported `via`. "The user's only membership" is a fallback,
//! asked only when no other identifier named a tenant.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

use super::directory::Directory;
use super::jwt::{JwtVerifier, VerifiedClaims};
use super::{Host, IdentifierKind, Refusal, RoutingConfig};
use crate::Tenantry;
use crate::catalog::{Status, Tenant, User, UserStatus};

/// What a resolver looks at: the request's host(s), headers and path.
#[derive(Debug, Clone, Default)]
pub struct RequestParts {
    /// Every `Host` header, and the request target's host when it differs; more than one is
    /// refused.
    pub hosts: Vec<String>,
    /// Header names in any case.
    pub headers: Vec<(String, String)>,
    pub path: String,
}

impl RequestParts {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order, by case-insensitive name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }
}

/// A tenant as an identifier names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    /// A slug or a tenant id.
    Name(String),
    /// A custom domain (normalised host).
    Host(String),
}

/// What an identifier sees: the request, its parsed host and its verified token.
#[derive(Debug)]
pub struct Ask<'a> {
    pub request: &'a RequestParts,
    pub host: Option<&'a Host>,
    pub claims: Option<&'a VerifiedClaims>,
}

/// One way of naming the tenant of a request. Implement it to slot in your own (a session
/// lookup, say) with [`Resolver::with_identifier`].
pub trait Identifier: Send + Sync {
    /// The name it is reported under (`via`).
    fn name(&self) -> &str;
    /// The tenant the request names this way, if it names one.
    fn identify<'a>(
        &'a self,
        ask: &'a Ask<'a>,
    ) -> BoxFuture<'a, Result<Option<TenantRef>, Refusal>>;
}

/// The caller behind a verified token.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    /// The role in the resolved tenant; `None` on a public route for a non-member.
    pub role: Option<String>,
}

/// A request resolved: its tenant, which identifier named it, and the caller.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub tenant: Arc<Tenant>,
    pub via: String,
    pub caller: Option<Caller>,
}

/// Whether a route needs its caller to be a member of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// As configured (`require_membership`).
    #[default]
    Configured,
    /// Anyone reaching the tenant, token or not (a token given is still checked).
    Public,
}

#[derive(Clone)]
enum Step {
    Builtin(IdentifierKind),
    Custom(Arc<dyn Identifier>),
}

/// Resolves requests; cheap to clone, one per application.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    tenantry: Tenantry,
    config: RoutingConfig,
    steps: Vec<Step>,
    jwt: Option<JwtVerifier>,
    directory: Arc<Directory>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("identifiers", &self.identifiers())
            .finish()
    }
}

impl Resolver {
    /// A resolver as `[routing]` configures it. Starts the task that follows the catalog's
    /// changes, so it must be called inside a tokio runtime.
    pub fn new(tenantry: &Tenantry) -> crate::Result<Resolver> {
        let config = tenantry.config().routing.clone();
        let jwt =
            match &config.jwt {
                Some(settings) => Some(JwtVerifier::from_settings(settings).map_err(|e| {
                    crate::Error::Config {
                        path: crate::config::CONFIG_FILE.into(),
                        reason: format!("[routing.jwt]: {e}"),
                    }
                })?),
                None => None,
            };
        let directory = Directory::new(tenantry.catalog().clone(), config.poll_interval);
        let steps = config
            .identifiers
            .iter()
            .map(|kind| Step::Builtin(*kind))
            .collect();
        Ok(Resolver {
            inner: Arc::new(Inner {
                tenantry: tenantry.clone(),
                config,
                steps,
                jwt,
                directory,
            }),
        })
    }

    /// Adds an application's own identifier at `position` in the chain (0: first; past the
    /// end: last).
    pub fn with_identifier(self, position: usize, identifier: Arc<dyn Identifier>) -> Resolver {
        // Another clone keeps its chain; this one gets a copy around the same directory.
        let mut inner = Arc::unwrap_or_clone(self.inner);
        let at = position.min(inner.steps.len());
        inner.steps.insert(at, Step::Custom(identifier));
        Resolver {
            inner: Arc::new(inner),
        }
    }

    /// The identifiers in the order they are asked.
    pub fn identifiers(&self) -> Vec<String> {
        self.inner
            .steps
            .iter()
            .map(|s| match s {
                Step::Builtin(k) => k.as_str().to_owned(),
                Step::Custom(c) => c.name().to_owned(),
            })
            .collect()
    }

    pub fn tenantry(&self) -> &Tenantry {
        &self.inner.tenantry
    }

    /// The cache the resolver reads through.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.inner.directory
    }

    /// Resolves a request.
    pub async fn resolve(
        &self,
        request: &RequestParts,
        access: Access,
    ) -> Result<Resolution, Refusal> {
        let inner = &*self.inner;
        let host = match request.hosts.as_slice() {
            [] => None,
            [one] => Some(Host::parse(one).map_err(|e| Refusal::InvalidHost {
                reason: e.to_string(),
            })?),
            _ => {
                return Err(Refusal::InvalidHost {
                    reason: "the request names more than one host (Host headers, or a Host \
                             header and a request target that disagree)"
                        .into(),
                });
            }
        };
        if inner.jwt.is_some()
            && request
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                .count()
                > 1
        {
            return Err(Refusal::InvalidToken {
                reason: "the request has more than one Authorization header".into(),
            });
        }
        let claims = match (&inner.jwt, request.bearer()) {
            (Some(jwt), Some(token)) => {
                Some(jwt.verify(token).map_err(|e| Refusal::InvalidToken {
                    reason: e.to_string(),
                })?)
            }
            _ => None,
        };
        let caller = match &claims {
            Some(claims) => Some(self.active_user(&claims.subject).await?),
            None => None,
        };
        let ask = Ask {
            request,
            host: host.as_ref(),
            claims: claims.as_ref(),
        };
        let mut named: Option<(Arc<Tenant>, String)> = None;
        let mut membership_step = false;
        for step in &inner.steps {
            let (via, found) = match step {
                Step::Builtin(IdentifierKind::Membership) => {
                    membership_step = true;
                    continue;
                }
                Step::Builtin(kind) => (kind.as_str().to_owned(), self.builtin(*kind, &ask).await?),
                Step::Custom(custom) => {
                    let found = match custom.identify(&ask).await? {
                        Some(TenantRef::Name(name)) => {
                            Some((name.clone(), self.by_name(&name).await?))
                        }
                        Some(TenantRef::Host(host)) => {
                            Some((host.clone(), self.by_host(&host).await?))
                        }
                        None => None,
                    };
                    (custom.name().to_owned(), found)
                }
            };
            let Some((label, tenant)) = found else {
                continue;
            };
            let Some(tenant) = tenant else {
                return Err(Refusal::TenantNotFound { named: label, via });
            };
            match &named {
                Some((first, first_via)) if first.id != tenant.id => {
                    return Err(Refusal::TenantMismatch {
                        first: first.slug.to_string(),
                        first_via: first_via.clone(),
                        second: tenant.slug.to_string(),
                        second_via: via,
                    });
                }
                Some(_) => {}
                None => named = Some((tenant, via)),
            }
        }
        if named.is_none()
            && membership_step
            && let Some(user) = &caller
        {
            named = self.only_membership(user).await?;
        }
        let Some((tenant, via)) = named else {
            return Err(Refusal::TenantNotFound {
                named: "named by this request".into(),
                via: "no identifier matched".into(),
            });
        };
        match tenant.status {
            Status::Active => {}
            Status::Suspended => {
                return Err(Refusal::TenantSuspended {
                    tenant: tenant.slug.to_string(),
                    status: tenant.status.to_string(),
                });
            }
            other => {
                return Err(Refusal::TenantNotFound {
                    named: tenant.slug.to_string(),
                    via: format!("it is {other}"),
                });
            }
        }
        let must_be_member = access == Access::Configured && inner.config.require_membership;
        let caller = match caller {
            Some(user) => {
                let role = self.role_in(&user, &tenant).await?;
                if role.is_none() && must_be_member {
                    return Err(Refusal::NotAMember {
                        user: user.email.clone(),
                        tenant: tenant.slug.to_string(),
                    });
                }
                Some(Caller {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    display_name: user.display_name.clone(),
                    role,
                })
            }
            None if must_be_member => {
                return Err(Refusal::InvalidToken {
                    reason: "this route needs a bearer token".into(),
                });
            }
            None => None,
        };
        Ok(Resolution {
            tenant,
            via,
            caller,
        })
    }

    /// What a built-in identifier names: `(the text that named it, the tenant if it exists)`.
    async fn builtin(
        &self,
        kind: IdentifierKind,
        ask: &Ask<'_>,
    ) -> Result<Option<(String, Option<Arc<Tenant>>)>, Refusal> {
        let config = &self.inner.config;
        Ok(match kind {
            IdentifierKind::Domain => match ask.host {
                // A host that is not a custom domain may still be a subdomain: absent, not
                // unknown.
                Some(host) => self
                    .by_host(host.as_str())
                    .await?
                    .map(|tenant| (host.to_string(), Some(tenant))),
                None => None,
            },
            IdentifierKind::Subdomain => {
                let label = ask.host.and_then(|host| {
                    config
                        .base_domains
                        .iter()
                        .find_map(|base| host.subdomain_of(base))
                });
                match label {
                    Some(slug) => Some((slug.to_owned(), self.by_name(slug).await?)),
                    None => None,
                }
            }
            IdentifierKind::Header => {
                // Sent more than once, every value must name the same tenant: the first is
                // not taken over the others.
                let mut values = ask.request.header_values(&config.header).map(str::trim);
                match values.next() {
                    Some(first) => {
                        let named = self.by_name(first).await?;
                        if let Some(tenant) = &named {
                            for other in values.filter(|v| *v != first) {
                                match self.by_name(other).await? {
                                    Some(t) if t.id == tenant.id => {}
                                    Some(t) => {
                                        return Err(Refusal::TenantMismatch {
                                            first: tenant.slug.to_string(),
                                            first_via: kind.as_str().to_owned(),
                                            second: t.slug.to_string(),
                                            second_via: kind.as_str().to_owned(),
                                        });
                                    }
                                    None => {
                                        return Err(Refusal::TenantNotFound {
                                            named: other.to_owned(),
                                            via: kind.as_str().to_owned(),
                                        });
                                    }
                                }
                            }
                        }
                        Some((first.to_owned(), named))
                    }
                    None => None,
                }
            }
            IdentifierKind::Path => match path_slug(&ask.request.path, &config.path_prefix) {
                Some(slug) => Some((slug.to_owned(), self.by_name(slug).await?)),
                None => None,
            },
            IdentifierKind::Jwt => match ask.claims.and_then(|c| c.tenant.as_deref()) {
                Some(name) => Some((name.to_owned(), self.by_name(name).await?)),
                None => None,
            },
            IdentifierKind::Membership => None,
        })
    }

    async fn by_name(&self, name: &str) -> Result<Option<Arc<Tenant>>, Refusal> {
        if name.is_empty() || name.len() > 63 {
            return Ok(None);
        }
        self.inner
            .directory
            .tenant_by_name(name)
            .await
            .map_err(refused)
    }

    async fn by_host(&self, host: &str) -> Result<Option<Arc<Tenant>>, Refusal> {
        self.inner
            .directory
            .tenant_by_host(host)
            .await
            .map_err(refused)
    }

    async fn active_user(&self, id: &str) -> Result<Arc<User>, Refusal> {
        let user = self.inner.directory.user(id).await.map_err(refused)?;
        match user {
            Some(user) if user.status == UserStatus::Active => Ok(user),
            Some(_) => Err(Refusal::InvalidToken {
                reason: "its user is disabled".into(),
            }),
            None => Err(Refusal::InvalidToken {
                reason: "its subject is not a known user".into(),
            }),
        }
    }

    async fn role_in(&self, user: &User, tenant: &Tenant) -> Result<Option<String>, Refusal> {
        let memberships = self
            .inner
            .directory
            .memberships(&user.id)
            .await
            .map_err(refused)?;
        Ok(memberships
            .iter()
            .find(|m| m.tenant_id == tenant.id.to_string())
            .map(|m| m.role.clone()))
    }

    async fn only_membership(&self, user: &User) -> Result<Option<(Arc<Tenant>, String)>, Refusal> {
        let memberships = self
            .inner
            .directory
            .memberships(&user.id)
            .await
            .map_err(refused)?;
        match memberships.as_slice() {
            [only] => {
                let tenant = self.by_name(&only.tenant_id).await?;
                Ok(tenant.map(|t| (t, "membership".to_owned())))
            }
            _ => Ok(None),
        }
    }
}

/// A library error met while resolving, as a refusal.
fn refused(error: crate::Error) -> Refusal {
    Refusal::from_error(&error)
}

/// The slug after the path prefix: `/t/acme/documents` → `acme`.
fn path_slug<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    let slug = rest.split(['/', '?']).next()?;
    (!slug.is_empty()).then_some(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefixes_name_a_slug() {
        assert_eq!(path_slug("/t/acme/documents", "/t/"), Some("acme"));
        assert_eq!(path_slug("/t/acme", "/t/"), Some("acme"));
        assert_eq!(path_slug("/t//x", "/t/"), None);
        assert_eq!(path_slug("/documents", "/t/"), None);
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        let parts = RequestParts {
            headers: vec![("Authorization".into(), "Bearer abc.def".into())],
            ..RequestParts::default()
        };
        assert_eq!(parts.bearer(), Some("abc.def"));
        let basic = RequestParts {
            headers: vec![("authorization".into(), "Basic xyz".into())],
            ..RequestParts::default()
        };
        assert_eq!(basic.bearer(), None);
    }
}
