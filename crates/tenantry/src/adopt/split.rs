//! Splitting one shared database (a table set with a tenant column, such as `business_id`)
//! into one tenant per distinct value of the column. The source is read, never written: its
//! schema must hold the migration set up to a baseline (as for an adoption), each value's
//! rows are cut from one snapshot into an archive ([`crate::archive::slice`]), and each
//! tenant is imported from its archive, so it becomes active only once its rows were read
//! back and matched the archive's counts and checksums.
//!
//! Refused before anything is written: a table the set does not create, rows with no
//! value, a value that makes no valid slug, a slug already taken. A split that fails
//! part-way keeps the tenants it finished (each whole) and names the value it stopped at.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use super::BaselineSource;
use crate::Tenantry;
use crate::archive::ImportTenant;
use crate::archive::export::begin_snapshot;
use crate::archive::scope::{TableSpec, tables_by};
use crate::archive::slice::{Slice, write_slice};
use crate::catalog::{Strategy, Tenant};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ident::{Slug, SqlName, StorageName};

/// What `split_database` needs.
#[derive(Debug, Clone)]
pub struct SplitDatabase {
    /// The server the shared database is on (registered in the catalog).
    pub server: String,
    /// The shared database (SQLite: the file `<name>.db` in the server's directory).
    pub database: String,
    /// The column whose distinct values are the tenants.
    pub column: String,
    /// Each tenant's slug is this prefix and its value.
    pub slug_prefix: String,
    /// Where the tenants go: server (the placement policy's choice when `None`) and
    /// strategy (the configured default when `None`).
    pub to_server: Option<String>,
    pub strategy: Option<Strategy>,
    /// The version the source's schema holds, when it has no `_sqlx_migrations`.
    pub baseline: Option<i64>,
}

/// One tenant made by a split.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SplitTenant {
    /// The column's value its rows hold.
    pub value: String,
    pub tenant: Tenant,
    /// Rows copied (and verified) into it.
    pub rows: u64,
}

/// What a split made.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Split {
    pub baseline: i64,
    pub source: BaselineSource,
    pub tenants: Vec<SplitTenant>,
    /// Tables without the column: nobody's own rows, left in the source only.
    pub unsplit_tables: Vec<String>,
}

impl Tenantry {
    /// Turns a shared database into tenants, one per distinct value of `req.column` (see
    /// the module); `each` hears of every tenant as it is finished.
    pub async fn split_database(
        &self,
        req: SplitDatabase,
        each: impl Fn(&SplitTenant) + Sync,
    ) -> Result<Split> {
        let set = self.migrations()?;
        let storage = StorageName::existing(&req.database)?;
        let owner = format!("{}/{}", req.server, storage);
        let refuse = |detail: String| Error::AdoptRefused {
            storage: storage.to_string(),
            server: req.server.clone(),
            detail,
        };
        let column = SqlName::new("column", &req.column)?;
        let strategy = req.strategy.unwrap_or(self.config.default_strategy);
        // A shared tenant's rows are told apart by the tenant column, which holds its id.
        let tenant_column = if strategy.ops().pooled() {
            if req.column != self.config.tenant_column {
                return Err(refuse(format!(
                    "shared tenants' rows are told apart by the tenant column {:?}: split on it, or choose the database or schema strategy",
                    self.config.tenant_column
                )));
            }
            req.column.clone()
        } else {
            String::new()
        };
        let server = self.catalog.server(&req.server).await?;
        let slug = Slug::new("split-source")?;
        let probe = self.probe(&slug, &server.name, &storage, Strategy::Database);
        if !self.storage_exists(&probe).await? {
            return Err(refuse("the server has no database of that name".into()));
        }
        let found = self
            .read_baseline(&probe, &set, req.baseline)
            .await?
            .map_err(&refuse)?;
        if !found.extra_tables.is_empty() {
            return Err(refuse(format!(
                "the migration set does not create table(s) {}: a tenant would have no place for their rows",
                found.extra_tables.join(", ")
            )));
        }
        let target = self.migration_target(&probe).await?;
        let (engine, mut conn) = (target.engine, target.conn);
        let all = tables_by(&owner, engine, &mut conn, &column, false).await?;
        let (tables, unsplit): (Vec<TableSpec>, Vec<TableSpec>) =
            all.into_iter().partition(|t| t.tenant_at.is_some());
        if tables.is_empty() {
            return Err(refuse(format!("no table has a column {column}")));
        }
        let values = distinct_values(&mut conn, engine, &owner, &tables, &column)
            .await?
            .map_err(&refuse)?;
        let mut slugs = Vec::with_capacity(values.len());
        for value in &values {
            let slug = Slug::new(&format!("{}{value}", req.slug_prefix)).map_err(|e| {
                refuse(format!(
                    "value {value:?} makes no slug ({e}); choose a --slug-prefix"
                ))
            })?;
            crate::spares::refuse_spare_slug(&slug)?;
            if let Some(existing) = self.catalog.find_tenant(slug.as_str()).await? {
                return Err(Error::TenantExists {
                    slug: slug.to_string(),
                    status: existing.status,
                });
            }
            slugs.push(slug);
        }

        // Every slice from one snapshot of the source, then each imported and verified.
        let at = set.up_to(found.version);
        let dir = self.config.data_dir.join("split");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let run = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let path_of = |i: usize| dir.join(format!("{run}-{i}.archive"));
        let written = async {
            let mut tx = begin_snapshot(&mut conn, engine, &owner).await?;
            for (i, (value, slug)) in values.iter().zip(&slugs).enumerate() {
                let slice = Slice {
                    owner: &owner,
                    engine,
                    tables: &tables,
                    column: &column,
                    value,
                    slug: slug.as_str(),
                    migrations: &at,
                    version: found.version,
                    tenant_column: &tenant_column,
                };
                write_slice(&mut tx, &slice, &path_of(i)).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        let _ = sqlx::Connection::close(conn).await;
        let mut made = Vec::with_capacity(values.len());
        let imported = async {
            written?;
            for (i, (value, slug)) in values.iter().zip(&slugs).enumerate() {
                let request = ImportTenant {
                    slug: slug.to_string(),
                    name: None,
                    server: req.to_server.clone(),
                    strategy: Some(strategy),
                };
                let imported = self
                    .import_tenant(&path_of(i), request)
                    .await
                    .map_err(|e| Error::SplitStopped {
                        value: value.clone(),
                        done: made.len(),
                        source: Box::new(e),
                    })?;
                let _ = std::fs::remove_file(path_of(i));
                let done = SplitTenant {
                    value: value.clone(),
                    rows: imported.manifest.rows(),
                    tenant: imported.tenant,
                };
                each(&done);
                made.push(done);
            }
            Ok::<(), Error>(())
        }
        .await;
        for i in 0..values.len() {
            let _ = std::fs::remove_file(path_of(i));
        }
        imported?;
        Ok(Split {
            baseline: found.version,
            source: found.source,
            tenants: made,
            unsplit_tables: unsplit.iter().map(|t| t.name.to_string()).collect(),
        })
    }
}

/// Every distinct value of `column` across `tables`, as the text the row filter compares
/// with; `Err(detail)` if a row has none.
async fn distinct_values(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    owner: &str,
    tables: &[TableSpec],
    column: &SqlName,
) -> Result<std::result::Result<BTreeSet<String>, String>> {
    let mut values = BTreeSet::new();
    for table in tables {
        let Some(at) = table.tenant_at else { continue };
        let spec = std::slice::from_ref(&table.columns[at]);
        let inner = engine.dialect().select_rows(&table.name, spec, None);
        let sql = format!("SELECT DISTINCT * FROM ({inner}) AS d");
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn);
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(Error::storage(owner, "read the split column's values"))?
        {
            let value: Option<String> = row
                .try_get(0)
                .map_err(Error::storage(owner, "read the split column's values"))?;
            match value {
                Some(value) => {
                    values.insert(value);
                }
                None => {
                    return Ok(Err(format!(
                        "table {} has rows with no {column}: they belong to no tenant",
                        table.name
                    )));
                }
            }
        }
    }
    Ok(Ok(values))
}
