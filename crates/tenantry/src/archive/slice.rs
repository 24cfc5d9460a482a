//! One tenant's slice of a database Tenantry did not create: the rows whose split column
//! holds one value, written as an archive that a new tenant is then imported from (and
//! verified against, as any import is).

use std::path::Path;

use futures::TryStreamExt;
use sqlx::AnyConnection;

use super::checksum::TableSum;
use super::export::{archived_tables, rows_where};
use super::file::ArchiveWriter;
use super::scope::TableSpec;
use super::{
    ArchivedMigration, ArchivedTenant, FORMAT, FORMAT_VERSION, Header, Mark, TableSummary, Trailer,
};
use crate::catalog::now;
use crate::engine::Engine;
use crate::error::Result;
use crate::ident::SqlName;
use crate::migrate::MigrationSet;

/// What one slice is cut from, and for whom.
pub(crate) struct Slice<'a> {
    /// The source, for messages: `<server>/<database>`.
    pub owner: &'a str,
    pub engine: Engine,
    /// The source's tables that have the split column.
    pub tables: &'a [TableSpec],
    pub column: &'a SqlName,
    pub value: &'a str,
    pub slug: &'a str,
    /// The migrations the source's schema holds.
    pub migrations: &'a MigrationSet,
    pub version: i64,
    /// The column the import gives the new tenant's id (empty: values are kept as they are).
    pub tenant_column: &'a str,
}

/// Writes the slice's archive to `path` from `conn` (in the caller's snapshot); returns its
/// rows.
pub(crate) async fn write_slice(
    conn: &mut AnyConnection,
    slice: &Slice<'_>,
    path: &Path,
) -> Result<u64> {
    let header = Header {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        tenantry: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: now(),
        tenant: ArchivedTenant {
            id: slice.value.to_owned(),
            slug: slice.slug.to_owned(),
            name: slice.slug.to_owned(),
            engine: slice.engine.to_string(),
            strategy: "database".into(),
        },
        version: slice.version,
        migrations: slice
            .migrations
            .iter()
            .map(|m| ArchivedMigration {
                version: m.version,
                description: m.description.clone(),
                checksum: hex::encode(&m.checksum),
            })
            .collect(),
        tenant_column: slice.tenant_column.to_owned(),
        tables: archived_tables(slice.tables),
    };
    let mut writer = ArchiveWriter::create(path)?;
    writer.line(&Mark::Header(Box::new(header)))?;
    let mut summaries = Vec::with_capacity(slice.tables.len());
    let mut total = 0;
    for table in slice.tables {
        writer.line(&Mark::Table(table.name.to_string()))?;
        let own = table
            .columns
            .iter()
            .position(|c| c.name.as_str() == slice.tenant_column);
        let filter = Some((slice.column, slice.value.to_owned()));
        let mut rows = std::pin::pin!(rows_where(
            &mut *conn,
            slice.engine,
            slice.owner,
            table,
            filter
        ));
        let mut sum = TableSum::default();
        while let Some(mut values) = rows.try_next().await? {
            writer.line(&values)?;
            sum.add(&mut values, own.map(|at| (at, slice.value)));
        }
        total += sum.rows;
        let summary = TableSummary {
            name: table.name.to_string(),
            rows: sum.rows,
            checksum: sum.checksum(),
        };
        writer.line(&Mark::End(summary.clone()))?;
        summaries.push(summary);
    }
    let trailer = Trailer {
        tables: summaries,
        digest: writer.digest(),
    };
    writer.finish(&Mark::Trailer(trailer))?;
    Ok(total)
}
