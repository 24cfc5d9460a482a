//! The configured role set, highest first, so "at least manager" can be asked.

use serde::Serialize;

use crate::error::{Error, Result};

/// The roles a membership may carry, highest first. Default:
/// `owner, admin, manager, employee, viewer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Roles(Vec<String>);

pub const DEFAULT_ROLES: [&str; 5] = ["owner", "admin", "manager", "employee", "viewer"];

impl Default for Roles {
    fn default() -> Self {
        Roles(DEFAULT_ROLES.iter().map(|r| (*r).to_owned()).collect())
    }
}

impl Roles {
    /// A role set from configuration: at least one role, each 1 to 32 characters of
    /// lowercase letters, digits, `_` or `-`, no duplicates.
    pub fn new(roles: &[String]) -> std::result::Result<Roles, String> {
        if roles.is_empty() {
            return Err("at least one role is needed".into());
        }
        for (i, role) in roles.iter().enumerate() {
            let valid = !role.is_empty()
                && role.len() <= 32
                && role.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid {
                return Err(format!(
                    "role {role:?}: 1 to 32 lowercase letters, digits, '_' or '-'"
                ));
            }
            if roles[..i].contains(role) {
                return Err(format!("role {role:?} is listed twice"));
            }
        }
        Ok(Roles(roles.to_vec()))
    }

    /// The roles, highest first.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// A role's rank: 0 is the highest.
    pub fn rank(&self, role: &str) -> Option<usize> {
        self.0.iter().position(|r| r == role)
    }

    /// Whether `role` ranks at or above `minimum`; false when either is not a role.
    pub fn at_least(&self, role: &str, minimum: &str) -> bool {
        match (self.rank(role), self.rank(minimum)) {
            (Some(have), Some(need)) => have <= need,
            _ => false,
        }
    }

    /// `role` as one of the configured roles, or [`Error::UnknownRole`].
    pub fn check<'a>(&'a self, role: &str) -> Result<&'a str> {
        self.0
            .iter()
            .find(|r| *r == role)
            .map(String::as_str)
            .ok_or_else(|| Error::UnknownRole {
                role: role.to_owned(),
                roles: self.0.join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_configured_order() {
        let roles = Roles::default();
        assert!(roles.at_least("owner", "manager"));
        assert!(roles.at_least("manager", "manager"));
        assert!(!roles.at_least("viewer", "manager"));
        assert!(!roles.at_least("guest", "viewer"));
        assert!(matches!(
            roles.check("guest"),
            Err(Error::UnknownRole { .. })
        ));
    }

    #[test]
    fn a_configured_set_is_validated() {
        let list = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Roles::new(&list(&["lead", "member"])).is_ok());
        assert!(Roles::new(&[]).is_err());
        assert!(Roles::new(&list(&["Lead"])).is_err());
        assert!(Roles::new(&list(&["a", "a"])).is_err());
    }
}
