//! The `[routing]` table of `tenantry.toml`: the role set, the chain of identifiers and its
//! order, base domains, the tenant header, the path prefix, membership, the change poll.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::identity::Roles;
use crate::routing::jwt::JwtSettings;

/// One way a request names its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    /// The request's host is one of a tenant's domains.
    Domain,
    /// The request's host is `<slug>.<base domain>`.
    Subdomain,
    /// A header (default `X-Tenant`) holds the tenant's slug or id.
    Header,
    /// The path starts with `<prefix><slug>/` (default `/t/`).
    Path,
    /// The bearer token's tenant claim holds the slug or id.
    Jwt,
    /// The caller is a member of exactly one tenant.
    Membership,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 6] = [
        IdentifierKind::Domain,
        IdentifierKind::Subdomain,
        IdentifierKind::Header,
        IdentifierKind::Path,
        IdentifierKind::Jwt,
        IdentifierKind::Membership,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Domain => "domain",
            IdentifierKind::Subdomain => "subdomain",
            IdentifierKind::Header => "header",
            IdentifierKind::Path => "path",
            IdentifierKind::Jwt => "jwt",
            IdentifierKind::Membership => "membership",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentifierKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        IdentifierKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown identifier {s:?}; known: domain, subdomain, header, path, jwt, membership"
                )
            })
    }
}

/// `[routing]` as written in `tenantry.toml`; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Membership roles, highest first [default: owner, admin, manager, employee, viewer].
    pub roles: Option<Vec<String>>,
    /// The identifiers tried, in order [default: domain, subdomain, header, path, jwt,
    /// membership].
    pub identifiers: Option<Vec<String>>,
    /// Base domains under which `<slug>.<base>` names a tenant [default: none].
    pub base_domains: Option<Vec<String>>,
    /// The header naming the tenant by slug or id [default: X-Tenant].
    pub header: Option<String>,
    /// The path prefix before a tenant's slug [default: /t/].
    pub path_prefix: Option<String>,
    /// Whether a caller must be a member of the resolved tenant [default: true when
    /// `[routing.jwt]` is set]; a layer can still make some routes public.
    pub require_membership: Option<bool>,
    /// How often each process reads the catalog's change counter, in milliseconds
    /// [default: 250].
    pub poll_interval_ms: Option<u64>,
    /// Bearer tokens (`[routing.jwt]`).
    pub jwt: Option<JwtSettings>,
}

/// `[routing]` resolved, with defaults filled and names checked.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub roles: Roles,
    pub identifiers: Vec<IdentifierKind>,
    pub base_domains: Vec<crate::routing::Host>,
    pub header: String,
    pub path_prefix: String,
    pub require_membership: bool,
    pub poll_interval: Duration,
    pub jwt: Option<JwtSettings>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            roles: Roles::default(),
            identifiers: IdentifierKind::ALL.to_vec(),
            base_domains: Vec::new(),
            header: "X-Tenant".to_owned(),
            path_prefix: "/t/".to_owned(),
            require_membership: false,
            poll_interval: Duration::from_millis(250),
            jwt: None,
        }
    }
}

impl RoutingSettings {
    /// Defaults filled in; a bad role, identifier, base domain, header or prefix is refused
    /// with what was wrong.
    pub fn resolve(self) -> Result<RoutingConfig, String> {
        let mut config = RoutingConfig::default();
        if let Some(roles) = self.roles {
            config.roles = Roles::new(&roles)?;
        }
        if let Some(ids) = self.identifiers {
            let mut kinds = Vec::new();
            for id in ids {
                let kind: IdentifierKind = id.parse()?;
                if kinds.contains(&kind) {
                    return Err(format!("identifier {id:?} is listed twice"));
                }
                kinds.push(kind);
            }
            if kinds.is_empty() {
                return Err("at least one identifier is needed".into());
            }
            config.identifiers = kinds;
        }
        if let Some(bases) = self.base_domains {
            config.base_domains = bases
                .iter()
                .map(|b| {
                    crate::routing::Host::parse(b).map_err(|e| format!("base domain {b:?}: {e}"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(header) = self.header {
            let valid = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(format!("header {header:?}: letters, digits, '-' or '_'"));
            }
            config.header = header;
        }
        if let Some(prefix) = self.path_prefix {
            if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 3 {
                return Err(format!(
                    "path prefix {prefix:?}: must start and end with '/', e.g. \"/t/\""
                ));
            }
            config.path_prefix = prefix;
        }
        // Membership is checked against a token's subject: required by default when tokens
        // are configured, and impossible to require without them.
        config.require_membership = self.require_membership.unwrap_or(self.jwt.is_some());
        if config.require_membership && self.jwt.is_none() {
            return Err("require_membership needs bearer tokens: add [routing.jwt]".into());
        }
        config.jwt = self.jwt;
        if let Some(ms) = self.poll_interval_ms {
            config.poll_interval = Duration::from_millis(ms.clamp(10, 1000));
        }
        Ok(config)
    }
}
