//! Writing a tenant's archive: its ledger and tables first, then every table's rows from one
//! snapshot, streamed from a cursor to the file.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};

use super::checksum::TableSum;
use super::file::ArchiveWriter;
use super::scope::{self, DataScope, TableSpec};
use super::{
    ArchivedColumn, ArchivedMigration, ArchivedTable, ArchivedTenant, FORMAT, FORMAT_VERSION,
    Header, Manifest, Mark, TableSummary, Trailer,
};
use crate::Tenantry;
use crate::catalog::{Status, Tenant, now};
use crate::engine::Engine;
use crate::engine::value::normalize;
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::migrate::ledger;
use crate::storage::shared;

impl Tenantry {
    /// Writes the tenant's archive to `path` (gzip-compressed if it ends in `.gz`): its
    /// ledger, its tables and every row of them (of a shared tenant, its own rows), read in
    /// one snapshot where the engine offers one. The file appears under its name only once
    /// complete. The tenant must be active or suspended; it keeps serving meanwhile.
    pub async fn export_tenant(&self, slug: &str, path: &Path) -> Result<Manifest> {
        let tenant = self.catalog.tenant(slug).await?;
        if !matches!(tenant.status, Status::Active | Status::Suspended) {
            return Err(Error::InvalidTransition {
                slug: slug.to_owned(),
                status: tenant.status,
                action: "export",
                hint: "; only an active or suspended tenant's storage is complete",
            });
        }
        self.refuse_unfinished(&tenant).await?;
        let mut scope = DataScope::open(self, &tenant).await?;
        let engine = scope.engine;
        let pooled = scope.filter.is_some();
        let mut tx = begin_snapshot(&mut scope.conn, engine, slug).await?;
        // The ledger and tables as the snapshot sees them, so the rows are of that version
        // even if a migration commits meanwhile.
        let rows = ledger::read(&mut tx)
            .await
            .map_err(Error::storage(slug, "read its ledger"))?;
        if let Some(dirty) = rows.iter().find(|r| !r.is_applied()) {
            return Err(Error::VerifyFailed {
                tenant: slug.to_owned(),
                detail: format!(
                    "migration {} is dirty in its ledger; repair it before exporting",
                    dirty.version
                ),
            });
        }
        let tables = scope::tables_in(self, &tenant, engine, &mut tx, pooled).await?;
        let header = header(self, &tenant, engine, &tables, &rows);
        let mut writer = ArchiveWriter::create(path)?;
        writer.line(&Mark::Header(Box::new(header.clone())))?;
        if pooled {
            // Rolled back at the end: the admission entered here is never committed.
            shared::enter_rows(self, &tenant, &mut tx).await?;
        }
        let mut summaries = Vec::with_capacity(tables.len());
        for table in &tables {
            writer.line(&Mark::Table(table.name.to_string()))?;
            let sum = read_table(
                &mut tx,
                engine,
                &tenant,
                table,
                scope.filter.as_ref(),
                |row| writer.line(&row),
            )
            .await?;
            let summary = TableSummary {
                name: table.name.to_string(),
                rows: sum.rows,
                checksum: sum.checksum(),
            };
            writer.line(&Mark::End(summary.clone()))?;
            summaries.push(summary);
        }
        drop(tx);
        let trailer = Trailer {
            tables: summaries,
            digest: writer.digest(),
        };
        writer.finish(&Mark::Trailer(trailer.clone()))?;
        let manifest = Manifest {
            header,
            totals: trailer,
        };
        let detail = format!(
            "{} rows in {} tables to {}",
            manifest.rows(),
            manifest.totals.tables.len(),
            path.display()
        );
        self.event(&tenant, "tenant.export", "ok", Some(detail), None)
            .await;
        Ok(manifest)
    }
}

fn header(
    t: &Tenantry,
    tenant: &Tenant,
    engine: Engine,
    tables: &[TableSpec],
    rows: &[ledger::LedgerRow],
) -> Header {
    Header {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        tenantry: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: now(),
        tenant: ArchivedTenant {
            id: tenant.id.to_string(),
            slug: tenant.slug.to_string(),
            name: tenant.name.clone(),
            engine: engine.to_string(),
            strategy: tenant.strategy.to_string(),
        },
        version: ledger::version(rows),
        migrations: rows
            .iter()
            .map(|r| ArchivedMigration {
                version: r.version,
                description: r.description.clone(),
                checksum: r.checksum.clone(),
            })
            .collect(),
        tenant_column: t.config.tenant_column.clone(),
        tables: archived_tables(tables),
    }
}

/// The header's description of `tables`: names, and each column's name, class and type.
pub(crate) fn archived_tables(tables: &[TableSpec]) -> Vec<ArchivedTable> {
    tables
        .iter()
        .map(|table| ArchivedTable {
            name: table.name.to_string(),
            columns: table
                .columns
                .iter()
                .map(|c| ArchivedColumn {
                    name: c.name.to_string(),
                    class: c.class,
                    data_type: c.data_type.clone(),
                })
                .collect(),
        })
        .collect()
}

/// A transaction on `conn` in which every table is read from one snapshot.
pub(crate) async fn begin_snapshot<'c>(
    conn: &'c mut AnyConnection,
    engine: Engine,
    slug: &str,
) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::storage(slug, "begin reading its rows"))?;
    if let Some(sql) = engine.dialect().snapshot() {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(Error::storage(slug, "take a snapshot"))?;
    }
    Ok(tx)
}

/// Streams a table's rows (a shared tenant's own) as neutral values in `table`'s column
/// order, handing each to `each`, and sums them.
pub(crate) async fn read_table(
    conn: &mut AnyConnection,
    engine: Engine,
    tenant: &Tenant,
    table: &TableSpec,
    filter: Option<&SqlName>,
    mut each: impl FnMut(&[Value]) -> Result<()>,
) -> Result<TableSum> {
    let id = tenant.id.to_string();
    let mut rows = std::pin::pin!(table_rows(conn, engine, tenant, table, filter));
    let mut sum = TableSum::default();
    while let Some(mut values) = rows.try_next().await? {
        each(&values)?;
        sum.add(&mut values, table.tenant_at.map(|at| (at, id.as_str())));
    }
    Ok(sum)
}

/// A table's rows (a shared tenant's own), each as neutral values in `table`'s column order.
pub(crate) fn table_rows<'c>(
    conn: &'c mut AnyConnection,
    engine: Engine,
    tenant: &'c Tenant,
    table: &'c TableSpec,
    filter: Option<&SqlName>,
) -> impl futures::Stream<Item = Result<Vec<Value>>> + 'c {
    let filter = filter.map(|column| (column, tenant.id.to_string()));
    rows_where(conn, engine, tenant.slug.as_str(), table, filter)
}

/// A table's rows (with `filter`, those whose column's text is the value), each as neutral
/// values in `table`'s column order; `owner` names the storage in errors.
pub(crate) fn rows_where<'c>(
    conn: &'c mut AnyConnection,
    engine: Engine,
    owner: &'c str,
    table: &'c TableSpec,
    filter: Option<(&SqlName, String)>,
) -> impl futures::Stream<Item = Result<Vec<Value>>> + 'c {
    let slug = owner;
    let sql = engine.dialect().select_rows(
        &table.name,
        &table.columns,
        filter.as_ref().map(|(c, _)| *c),
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some((_, value)) = filter {
        query = query.bind(value);
    }
    query.fetch(conn).map(move |row| {
        let row = row.map_err(Error::storage(slug, "read its rows"))?;
        let mut values = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let text: Option<String> = row
                .try_get(i)
                .map_err(Error::storage(slug, "read its rows"))?;
            values.push(match text {
                None => Value::Null,
                Some(text) => {
                    normalize(column.class, &text).map_err(|e| Error::ContentMismatch {
                        tenant: slug.to_owned(),
                        table: table.name.to_string(),
                        detail: format!("column {}: {e}", column.name),
                    })?
                }
            });
        }
        Ok(values)
    })
}
