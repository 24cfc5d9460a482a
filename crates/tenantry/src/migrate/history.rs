//! One tenant's migrations as its ledger records them (`migrate status --tenant`): every
//! version of the set and of the ledger, each applied, pending, dirty, or applied from a file
//! that is now missing or changed. Read through the tenant's administrative migration
//! connection; a shared tenant's ledger is its pool's, which every tenant of the pool shares.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::{AnyConnection, Connection, Row};

use super::apply::check_ledger;
use super::ledger::{self, LedgerRow};
use super::source::MigrationSet;
use crate::Tenantry;
use crate::catalog::{Status, Strategy};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Where one migration stands in a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Applied, and its file has the checksum the ledger recorded.
    Applied,
    /// In the set, not in the ledger.
    Pending,
    /// Started and not finished (MySQL, or a `-- no-transaction` file); see `migrate resolve`.
    Dirty,
    /// Applied, and its file is gone from the migrations directory.
    MissingFile,
    /// Applied, and its file's checksum is not the one the ledger recorded.
    ChangedFile,
}

impl MigrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Dirty => "dirty",
            MigrationState::MissingFile => "missing file",
            MigrationState::ChangedFile => "changed file",
        }
    }
}

/// One version of the set or the ledger.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationEntry {
    pub version: i64,
    /// The file's description, or the ledger's where the file is gone.
    pub description: String,
    pub state: MigrationState,
    /// When the ledger recorded it (`None`: not in the ledger).
    pub applied_at: Option<String>,
    /// How long it ran, as the ledger recorded it.
    pub execution_ms: Option<i64>,
    /// Whether the file's checksum is the ledger's (`None`: one of the two is missing).
    pub checksum_matches: Option<bool>,
    /// For a dirty migration, the statement it stopped at.
    pub failed_statement: Option<String>,
}

/// A tenant's migrations, in version order.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantMigrations {
    pub tenant: String,
    pub strategy: Strategy,
    pub server: String,
    /// Whose ledger was read: the tenant's slug, or `shared pool on <server>`.
    pub ledger_of: String,
    /// The ledger belongs to the tenant's shared pool and is every pool tenant's.
    pub shared: bool,
    /// The highest applied version in the ledger (0: none).
    pub version: i64,
    /// The set's highest version.
    pub latest: i64,
    pub migrations: Vec<MigrationEntry>,
}

impl TenantMigrations {
    /// How many migrations are in a state other than applied.
    pub fn unsettled(&self) -> usize {
        self.migrations
            .iter()
            .filter(|m| m.state != MigrationState::Applied)
            .count()
    }
}

impl Tenantry {
    /// The tenant's migrations against `set`, read from its ledger (its shared pool's, for a
    /// shared tenant) through its administrative migration connection. Reads only: takes no
    /// lock and creates no ledger. A deleted tenant has no storage to read.
    pub async fn tenant_migrations(
        &self,
        slug: &str,
        set: &MigrationSet,
    ) -> Result<TenantMigrations> {
        let tenant = self.catalog.tenant(slug).await?;
        if tenant.status == Status::Deleted {
            return Err(Error::InvalidTransition {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                action: "read its migrations",
                hint: "; its storage was dropped",
            });
        }
        let target = self.migration_target(&tenant).await?;
        let (owner, engine, mut conn) = (target.owner, target.engine, target.conn);
        let rows = read_ledger(&mut conn, engine, &owner).await;
        let _ = conn.close().await;
        let rows = rows?.unwrap_or_default();
        Ok(TenantMigrations {
            tenant: tenant.slug.to_string(),
            strategy: tenant.strategy,
            server: tenant.server.to_string(),
            shared: tenant.strategy.ops().pooled(),
            ledger_of: owner.clone(),
            version: ledger::version(&rows),
            latest: set.latest(),
            migrations: entries(&owner, &rows, set),
        })
    }
}

/// The ledger's rows, or `None` where the ledger table does not exist (no migration ever ran
/// there).
pub(crate) async fn read_ledger(
    conn: &mut AnyConnection,
    engine: Engine,
    owner: &str,
) -> Result<Option<Vec<LedgerRow>>> {
    let tables = sqlx::query(engine.list_tables_sql())
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::storage(owner, "list tables"))?;
    let mut present = false;
    for row in &tables {
        let name: String = row
            .try_get("name")
            .map_err(Error::storage(owner, "list tables"))?;
        present |= name.eq_ignore_ascii_case(ledger::TABLE);
    }
    if !present {
        return Ok(None);
    }
    ledger::read(conn)
        .await
        .map(Some)
        .map_err(Error::storage(owner, "read the migration ledger"))
}

/// Why the ledger check ([`check_ledger`]) refuses a ledger row, as its state and the
/// check's message; `None` if it is applied as its file says.
pub(crate) fn refusal(
    owner: &str,
    row: &LedgerRow,
    set: &MigrationSet,
) -> Option<(MigrationState, String)> {
    let error = check_ledger(owner, std::slice::from_ref(row), set).err()?;
    let state = match error {
        Error::Dirty { .. } => MigrationState::Dirty,
        Error::MigrationMissing { .. } => MigrationState::MissingFile,
        // The one other refusal: `ChecksumMismatch`.
        _ => MigrationState::ChangedFile,
    };
    Some((state, error.to_string()))
}

/// Every version of `set` and of the ledger `rows`, in order.
fn entries(owner: &str, rows: &[LedgerRow], set: &MigrationSet) -> Vec<MigrationEntry> {
    let versions: BTreeSet<i64> = set
        .iter()
        .map(|m| m.version)
        .chain(rows.iter().map(|r| r.version))
        .collect();
    versions
        .into_iter()
        .map(|version| {
            let file = set.get(version);
            let row = rows.iter().find(|r| r.version == version);
            let description = file
                .map(|m| m.description.clone())
                .or_else(|| row.map(|r| r.description.clone()))
                .unwrap_or_default();
            let Some(row) = row else {
                return MigrationEntry {
                    version,
                    description,
                    state: MigrationState::Pending,
                    applied_at: None,
                    execution_ms: None,
                    checksum_matches: None,
                    failed_statement: None,
                };
            };
            MigrationEntry {
                version,
                description,
                state: refusal(owner, row, set).map_or(MigrationState::Applied, |(s, _)| s),
                applied_at: Some(row.applied_at.clone()),
                execution_ms: Some(row.execution_ms),
                checksum_matches: file.map(|m| hex::encode(&m.checksum) == row.checksum),
                failed_statement: row.failed_statement.clone(),
            }
        })
        .collect()
}
