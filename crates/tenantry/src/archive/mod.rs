//! A tenant's rows in a portable file ([docs/0005](../../../docs/0005-tenant-data.md)):
//! [`Tenantry::export_tenant`] writes an archive from any engine and strategy,
//! [`Tenantry::import_tenant`] loads one into a new tenant on any engine and strategy and
//! proves it loaded what the manifest says.
//!
//! Invariant: a tenant created by an import becomes `active` only after its rows were read
//! back from its storage and matched the archive's counts and checksums; until then an
//! operation record marks it, and a tenant found so after a crash is removed, never served.

mod checksum;
pub(crate) mod export;
pub(crate) mod file;
pub(crate) mod import;
pub(crate) mod scope;
pub(crate) mod slice;

pub use checksum::{TableSum, row_hash};
pub(crate) use import::IMPORT;
pub use import::{ImportTenant, Imported};

use serde::{Deserialize, Serialize};

use crate::engine::value::Class;

/// The archive format this version writes and reads.
pub const FORMAT: &str = "tenantry-archive";
pub const FORMAT_VERSION: u32 = 1;

/// The first line of an archive: what it holds, known before its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    /// The Tenantry version that wrote it.
    pub tenantry: String,
    pub created_at: String,
    pub tenant: ArchivedTenant,
    /// The tenant's migration version: every migration up to it was applied.
    pub version: i64,
    pub migrations: Vec<ArchivedMigration>,
    pub tenant_column: String,
    /// In the order their rows follow: parents first.
    pub tables: Vec<ArchivedTable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedTenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub engine: String,
    pub strategy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedMigration {
    pub version: i64,
    pub description: String,
    /// SHA-384 of its SQL, hex.
    pub checksum: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedTable {
    pub name: String,
    pub columns: Vec<ArchivedColumn>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedColumn {
    pub name: String,
    pub class: Class,
    /// The declared type where the rows came from.
    pub data_type: String,
}

/// The last line of an archive: what its rows add up to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trailer {
    pub tables: Vec<TableSummary>,
    /// SHA-256 of every byte of the file before this line (uncompressed).
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TableSummary {
    pub name: String,
    pub rows: u64,
    pub checksum: String,
}

/// What an archive holds: its header and trailer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub header: Header,
    pub totals: Trailer,
}

impl Manifest {
    /// Rows in every table.
    pub fn rows(&self) -> u64 {
        self.totals.tables.iter().map(|t| t.rows).sum()
    }
}

/// One line of an archive that is not a row.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mark {
    Header(Box<Header>),
    Table(String),
    End(TableSummary),
    Trailer(Trailer),
}
