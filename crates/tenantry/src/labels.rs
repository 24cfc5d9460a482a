//! Tenant labels: short lowercase tags (`beta`, `tier=gold`) that rollouts select tenants
//! by (`--label`) and order them by (`--order-by label:tier`).

use crate::Tenantry;
use crate::error::{Error, Result};

/// Refuses a label that is not 1–63 characters of `a-z 0-9 _ . : = -`, starting with a
/// letter or digit.
pub fn check_label(label: &str) -> Result<()> {
    let ok = (1..=63).contains(&label.len())
        && label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:=-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(Error::InvalidLabel {
            label: label.to_owned(),
        }),
    }
}

impl Tenantry {
    /// Adds labels to a tenant (every label is checked before any is added).
    pub async fn label_tenant(&self, slug: &str, labels: &[String]) -> Result<Vec<String>> {
        labels.iter().try_for_each(|l| check_label(l))?;
        let tenant = self.catalog.tenant(slug).await?;
        for label in labels {
            self.catalog.add_label(tenant.id, label).await?;
        }
        self.audited(Some(&tenant), "tenant.label", None, Some(labels.join(" ")))
            .await;
        self.tenant_labels(slug).await
    }

    /// Removes labels from a tenant; one it does not have is ignored.
    pub async fn unlabel_tenant(&self, slug: &str, labels: &[String]) -> Result<Vec<String>> {
        let tenant = self.catalog.tenant(slug).await?;
        for label in labels {
            self.catalog.remove_label(tenant.id, label).await?;
        }
        self.audited(
            Some(&tenant),
            "tenant.unlabel",
            None,
            Some(labels.join(" ")),
        )
        .await;
        self.tenant_labels(slug).await
    }

    /// A tenant's labels, sorted.
    pub async fn tenant_labels(&self, slug: &str) -> Result<Vec<String>> {
        let tenant = self.catalog.tenant(slug).await?;
        Ok(self
            .catalog
            .labels()
            .await?
            .remove(&tenant.id)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::check_label;

    #[test]
    fn labels_are_short_lowercase_tags() {
        for good in ["beta", "tier=gold", "region:eu-1", "a"] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in ["", "Beta", "-x", "a b", "x'; DROP", &"a".repeat(64)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }
}
