//! Where the fleet stands, decided from the catalog alone: no tenant's storage is opened, so
//! it answers as fast over ten thousand tenants as over ten. A tenant is counted current by
//! the rule a rollout uses to leave it unopened ([`super::fleet::is_current`]), so the two
//! never disagree.
//!
//! `migrate status --tenant` reads one tenant's ledger ([`super::history`]); `migrate
//! verify` opens every ledger and schema ([`super::audit`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::MigrationSet;
use super::fleet::is_current;
use crate::Tenantry;
use crate::catalog::{Status, Tenant};
use crate::error::Result;

/// A tenant's migration status, for `migrate status --tenants`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Migrations in the directory newer than the tenant's version.
    pub pending: usize,
}

/// The fleet's migrations at a glance (`migrate status`): counts over every tenant that is
/// not deleted, as the catalog records them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationSummary {
    /// The set's highest version.
    pub latest: i64,
    /// How many migrations the set holds.
    pub migrations: usize,
    /// Tenants that are not deleted.
    pub tenants: usize,
    /// Tenants per status.
    pub statuses: BTreeMap<&'static str, usize>,
    /// Tenants per recorded version (JSON keys are strings).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, usize>))]
    pub versions: BTreeMap<i64, usize>,
    /// Live tenants the catalog shows current ([`is_current`]): a rollout would not open
    /// them.
    pub current: usize,
    /// Live tenants that are not current: their recorded version or ledger digest differ
    /// from the set's (or none is recorded), or their last run left an error. A rollout
    /// opens each of them.
    pub pending: usize,
    /// Tenants whose status is `failed` or that have an error on record.
    pub failed: usize,
    /// Tenants whose ledger holds a dirty migration, as their last run read it back.
    pub dirty: usize,
    /// The failed and dirty tenants, in catalog order, with what the catalog says of them.
    pub problems: Vec<Problem>,
}

/// A failed or dirty tenant in a [`MigrationSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MigrationProblem))]
pub struct Problem {
    pub tenant: String,
    pub status: Status,
    pub version: i64,
    pub dirty_version: Option<i64>,
    pub last_error: Option<String>,
}

impl MigrationSummary {
    /// The summary of `tenants` (catalog rows; deleted ones are left out) against `set`.
    pub fn of(tenants: &[Tenant], set: &MigrationSet) -> MigrationSummary {
        let digest = set.digest();
        let mut summary = MigrationSummary {
            latest: set.latest(),
            migrations: set.len(),
            ..MigrationSummary::default()
        };
        for t in tenants.iter().filter(|t| t.status != Status::Deleted) {
            summary.tenants += 1;
            *summary.statuses.entry(t.status.as_str()).or_default() += 1;
            *summary.versions.entry(t.version).or_default() += 1;
            if is_current(t, set, &digest) {
                summary.current += 1;
            } else if t.status.is_live() {
                summary.pending += 1;
            }
            let failed = t.status == Status::Failed || t.last_error.is_some();
            let dirty = t.dirty_version.is_some();
            summary.failed += usize::from(failed);
            summary.dirty += usize::from(dirty);
            if failed || dirty {
                summary.problems.push(Problem {
                    tenant: t.slug.to_string(),
                    status: t.status,
                    version: t.version,
                    dirty_version: t.dirty_version,
                    last_error: t.last_error.clone(),
                });
            }
        }
        summary
    }
}

impl Tenantry {
    /// Where the fleet stands against `set`, from the catalog alone (one read of the
    /// tenants; no tenant's storage is opened).
    pub async fn migration_summary(&self, set: &MigrationSet) -> Result<MigrationSummary> {
        let tenants = self.catalog.tenants().await?;
        Ok(MigrationSummary::of(&tenants, set))
    }

    /// Every tenant that is not deleted, with how many migrations it has pending.
    pub async fn status(&self) -> Result<Vec<StatusRow>> {
        let set = self.migrations()?;
        Ok(self
            .catalog
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != Status::Deleted)
            .map(|tenant| StatusRow {
                pending: set.pending_after(tenant.version),
                tenant,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Strategy;
    use crate::ident::{ServerName, Slug, TenantId};

    fn tenant(slug: &str, status: Status, version: i64, digest: Option<&str>) -> Tenant {
        let id = TenantId::generate();
        Tenant {
            id,
            slug: Slug::new(slug).expect("slug"),
            name: slug.to_owned(),
            status,
            strategy: Strategy::Database,
            server: ServerName::new("local").expect("server"),
            storage: id.storage_name(),
            role: None,
            role_secret: None,
            version,
            last_error: None,
            ledger_digest: digest.map(str::to_owned),
            dirty_version: None,
            created_at: String::new(),
            updated_at: String::new(),
            deleted_at: None,
        }
    }

    fn set() -> (tempfile::TempDir, MigrationSet) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("1_a.sql"), "CREATE TABLE a (id INT);").expect("write");
        std::fs::write(dir.path().join("2_b.sql"), "CREATE TABLE b (id INT);").expect("write");
        let set = MigrationSet::load(dir.path()).expect("load");
        (dir, set)
    }

    #[test]
    fn ten_thousand_tenants_are_counted_from_their_rows() {
        let (_dir, set) = set();
        let digest = set.digest();
        let mut tenants: Vec<Tenant> = (0..10_000)
            .map(|i| tenant(&format!("t{i}"), Status::Active, 2, Some(&digest)))
            .collect();
        // Behind, by version; by digest (another set's checksums); never recorded.
        tenants[0].version = 1;
        tenants[1].ledger_digest = Some("other".into());
        tenants[2].ledger_digest = None;
        // An error on record: failed, and opened by the next rollout.
        tenants[3].last_error = Some("boom".into());
        // Dirty at 2, still at 1.
        tenants[4].version = 1;
        tenants[4].dirty_version = Some(2);
        tenants[4].ledger_digest = None;
        tenants[4].last_error = Some("stopped halfway".into());
        // Failed at provisioning: neither current nor pending; deleted: not counted at all.
        tenants[5].status = Status::Failed;
        tenants[5].version = 0;
        tenants[6].status = Status::Deleted;
        tenants[7].status = Status::Suspended;

        let started = std::time::Instant::now();
        let summary = MigrationSummary::of(&tenants, &set);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(summary.latest, 2);
        assert_eq!(summary.migrations, 2);
        assert_eq!(summary.tenants, 9_999);
        assert_eq!(summary.current, 9_999 - 6);
        assert_eq!(summary.pending, 5);
        assert_eq!(summary.failed, 3);
        assert_eq!(summary.dirty, 1);
        assert_eq!(
            summary.versions,
            BTreeMap::from([(0, 1), (1, 2), (2, 9_996)])
        );
        assert_eq!(summary.statuses.get("active"), Some(&9_997));
        assert_eq!(summary.statuses.get("suspended"), Some(&1));
        assert_eq!(summary.statuses.get("failed"), Some(&1));
        let problems: Vec<&str> = summary.problems.iter().map(|p| p.tenant.as_str()).collect();
        assert_eq!(problems, ["t3", "t4", "t5"]);
    }
}
