//! Validated names. Anything that reaches SQL as an identifier is one of these types, built
//! only through their constructors, and quoted by [`crate::engine::Engine::quote_ident`].

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::error::{Error, Result};

/// The longest slug or server name: PostgreSQL's identifier limit.
pub const MAX_NAME_LEN: usize = 63;

/// Checks the shared rule for slugs and server names: a lowercase ASCII letter, then lowercase
/// letters, digits, `_` or `-`, at most 63 characters.
fn check_name(kind: &'static str, value: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidName {
            kind,
            value: value.to_owned(),
            reason,
        })
    };
    let Some(first) = value.chars().next() else {
        return fail("it is empty");
    };
    if value.len() > MAX_NAME_LEN {
        return fail("it is longer than 63 characters");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return fail("only lowercase letters, digits, '_' and '-' are allowed");
    }
    if value.chars().any(|c| c.is_ascii_uppercase()) {
        return fail("it has uppercase letters; use lowercase");
    }
    if !first.is_ascii_lowercase() {
        return fail("it must start with a lowercase letter a-z");
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; see the type's documentation for the rule.
            pub fn new(value: &str) -> Result<Self> {
                check_name($kind, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A tenant's public, human-chosen name: a lowercase letter, then lowercase letters,
    /// digits, `_` or `-`; 63 characters at most. Never used to name physical storage.
    Slug,
    "slug"
);

name_type!(
    /// The name of a database server in the catalog; same rule as [`Slug`].
    ServerName,
    "server name"
);

name_type!(
    /// The name of an API key (the audit log's actor `key:<name>`); same rule as [`Slug`].
    KeyName,
    "API key name"
);

/// Each name type is a string in the API's schemas.
#[cfg(feature = "openapi")]
macro_rules! string_schema {
    ($($name:ident),*) => {$(
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    )*};
}

#[cfg(feature = "openapi")]
string_schema!(Slug, ServerName, KeyName, TenantId, StorageName, RoleName);

/// A tenant's id: a ULID, assigned once at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Ulid);

impl TenantId {
    pub fn generate() -> Self {
        Self(Ulid::new())
    }

    pub fn parse(value: &str) -> Result<Self> {
        Ulid::from_string(value)
            .map(Self)
            .map_err(|_| Error::CorruptCatalog {
                field: "tenants.id",
                value: value.to_owned(),
            })
    }

    /// The physical name of this tenant's storage (database, schema or file stem).
    /// It derives from the id alone, so renaming a slug never moves data.
    pub fn storage_name(&self) -> StorageName {
        StorageName(format!(
            "tenant_{}",
            self.0.to_string().to_ascii_lowercase()
        ))
    }

    /// The login role (PostgreSQL) or user (MySQL) of this tenant's runtime connections:
    /// `t_` + the id, 28 characters (within MySQL's 32-character user names).
    pub fn role_name(&self) -> RoleName {
        RoleName(format!("t_{}", self.0.to_string().to_ascii_lowercase()))
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A physical storage name (database, schema, file stem). Only [`TenantId::storage_name`]
/// (`tenant_` followed by 26 lowercase base-32 characters), [`StorageName::existing`] (an
/// adopted database or schema's own name) and [`StorageName::parse`] (either, read back
/// from the catalog) build one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct StorageName(String);

/// Names no tenant's adopted storage may have: the servers' own databases and schemas.
const RESERVED_STORAGE: &[&str] = &[
    "postgres",
    "template0",
    "template1",
    "public",
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
];

impl StorageName {
    /// Re-validates a name read back from the catalog.
    pub fn parse(value: &str) -> Result<Self> {
        if is_derived(value) || check_existing(value).is_ok() {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::CorruptCatalog {
                field: "tenants.storage",
                value: value.to_owned(),
            })
        }
    }

    /// The name of a database or schema that exists already and is to be adopted: a
    /// lowercase letter or `_`, then lowercase letters, digits or `_`, at most 63
    /// characters; not a server's own database or schema (`postgres`, `public`, `mysql`,
    /// `pg_…`), and not of the form Tenantry gives its own tenants (`tenant_…`).
    pub fn existing(value: &str) -> Result<Self> {
        check_existing(value)?;
        Ok(Self(value.to_owned()))
    }

    /// Whether this is a name adopted with the storage rather than derived from the id.
    pub fn is_adopted(&self) -> bool {
        !is_derived(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `tenant_` followed by 26 lowercase base-32 characters: a name derived from a tenant id.
fn is_derived(value: &str) -> bool {
    value.strip_prefix("tenant_").is_some_and(|rest| {
        rest.len() == 26
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

fn check_existing(value: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidName {
            kind: "database or schema",
            value: value.to_owned(),
            reason,
        })
    };
    let Some(first) = value.chars().next() else {
        return fail("it is empty");
    };
    if value.len() > MAX_NAME_LEN {
        return fail("it is longer than 63 characters");
    }
    if !(first.is_ascii_lowercase() || first == '_')
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return fail(
            "only lowercase letters, digits and '_' are allowed, not starting with a digit",
        );
    }
    if RESERVED_STORAGE.contains(&value) || value.starts_with("pg_") {
        return fail("it is one of the server's own databases or schemas");
    }
    if value.starts_with("tenant_") {
        return fail("names starting with 'tenant_' are Tenantry's own tenants' storage");
    }
    Ok(())
}

impl fmt::Display for StorageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something that may be written into SQL as an identifier, after quoting by
/// [`crate::engine::Engine::quote`]. Implemented only by validated name types.
pub trait SqlIdent {
    fn ident(&self) -> &str;
}

impl SqlIdent for StorageName {
    fn ident(&self) -> &str {
        &self.0
    }
}

/// A runtime login role or user name: `t_<ulid>` for a tenant, `p_<ulid>` for a shared pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    /// The runtime role of a shared pool with this id.
    pub fn for_pool(pool: Ulid) -> RoleName {
        RoleName(format!("p_{}", pool.to_string().to_ascii_lowercase()))
    }

    /// Re-validates a name read back from the catalog.
    pub fn parse(value: &str) -> Result<RoleName> {
        let ok = (value.starts_with("t_") || value.starts_with("p_"))
            && value.len() == 28
            && value[2..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if ok {
            Ok(RoleName(value.to_owned()))
        } else {
            Err(Error::CorruptCatalog {
                field: "role_name",
                value: value.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SqlIdent for RoleName {
    fn ident(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain lowercase SQL name (table, column, schema): a letter or `_`, then lowercase
/// letters, digits or `_`; 63 characters at most. Used for names that come from
/// configuration or from a database's own catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SqlName(String);

impl SqlName {
    pub fn new(kind: &'static str, value: &str) -> Result<SqlName> {
        let valid = !value.is_empty()
            && value.len() <= MAX_NAME_LEN
            && value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(SqlName(value.to_owned()))
        } else {
            Err(Error::InvalidName {
                kind,
                value: value.to_owned(),
                reason: "use a lowercase letter or '_', then lowercase letters, digits or '_' (63 at most)",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SqlIdent for SqlName {
    fn ident(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SqlName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ok: bool) {
        assert_eq!(Slug::new(input).is_ok(), ok, "slug {input:?}");
    }

    #[test]
    fn slug_rules() {
        check("acme", true);
        check("a", true);
        check("acme-co_2", true);
        check(&"a".repeat(63), true);
        check(&"a".repeat(64), false);
        check("", false);
        check("1acme", false);
        check("Acme", false);
        check("ac me", false);
        check("acme'", false);
        check("acme\"", false);
        check("acme;drop", false);
        check("a..b", false);
        check("a; DROP TABLE tenants; --", false);
        check("_acme", false);
        check("-acme", false);
        check("acmé", false);
    }

    #[test]
    fn storage_name_derives_from_id_only() {
        let id = TenantId::generate();
        let name = id.storage_name();
        assert!(StorageName::parse(name.as_str()).is_ok());
        assert_eq!(name.as_str().len(), 33);
        assert!(StorageName::parse("tenant_x\"; drop").is_err());
        assert!(!name.is_adopted());
    }

    #[test]
    fn adopted_storage_names() {
        for ok in ["shop", "legacy_db2", "_old"] {
            let name = StorageName::existing(ok).expect(ok);
            assert!(name.is_adopted(), "{ok}");
            assert!(StorageName::parse(ok).is_ok(), "{ok}");
        }
        let refused = [
            "",
            "Shop",
            "2shop",
            "shop-db",
            "shop;drop",
            "sh\"op",
            "postgres",
            "public",
            "mysql",
            "pg_catalog",
            "information_schema",
            "tenant_shop",
        ];
        for bad in refused {
            assert!(
                matches!(StorageName::existing(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(StorageName::existing(&"a".repeat(64)).is_err());
    }
}
