//! Loading an archive into a new tenant: checked against the fleet's migrations, loaded at
//! the archive's version in one transaction, checked against the file and read back, then
//! migrated to the fleet's version and activated as a create does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use super::checksum::TableSum;
use super::export::read_table;
use super::file::ArchiveReader;
use super::scope::{DataScope, TableSpec};
use super::{FORMAT, FORMAT_VERSION, Header, Manifest, Mark, TableSummary, Trailer};
use crate::Tenantry;
use crate::catalog::{Status, Strategy, Tenant};
use crate::engine::Engine;
use crate::engine::value::{Class, Neutral};
use crate::error::{Error, Result};
use crate::ident::Slug;
use crate::lifecycle::Provision;
use crate::migrate::MigrationSet;
use crate::storage::shared;

/// The operation record an import keeps on its tenant until its rows are verified.
pub(crate) const IMPORT: &str = "import";

/// What [`Tenantry::import_tenant`] needs besides the archive.
#[derive(Debug, Clone, Default)]
pub struct ImportTenant {
    pub slug: String,
    /// Display name; the archived tenant's when `None`.
    pub name: Option<String>,
    /// Server; the configured default when `None`.
    pub server: Option<String>,
    /// Strategy; the configured default when `None`.
    pub strategy: Option<Strategy>,
}

/// An imported tenant and the manifest it was checked against.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub tenant: Tenant,
    pub manifest: Manifest,
}

/// One archived table, as it is written into the new storage: the destination's columns
/// in the archive's order, with the archive's class of each.
struct Plan {
    table: TableSpec,
    archived: Vec<Class>,
}

impl Tenantry {
    /// Creates tenant `req.slug` from the archive at `path` (see the module). Refused before
    /// anything is created if the archive is unreadable, is not an archive, or holds a
    /// migration the fleet's set does not have; removed again, storage and row, if loading
    /// or verification fails.
    pub async fn import_tenant(&self, path: &Path, req: ImportTenant) -> Result<Imported> {
        let mut reader = ArchiveReader::open(path)?;
        let header = read_header(&mut reader)?;
        let set = self.migrations()?;
        check_migrations(&header, &set, path)?;
        let slug = Slug::new(&req.slug)?;
        crate::spares::refuse_spare_slug(&slug)?;
        if let Some(existing) = self.catalog.find_tenant(slug.as_str()).await? {
            return Err(Error::TenantExists {
                slug: slug.to_string(),
                status: existing.status,
            });
        }
        let name = req
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| header.tenant.name.clone());
        let strategy = req.strategy.unwrap_or(self.config.default_strategy);
        let server = match req.server {
            Some(server) => server,
            None => self.choose_server(strategy, None).await?,
        };
        let from = path.display().to_string();
        // The lock is taken before the row is written, and held until the import ends.
        let (tenant, _running) = self
            .insert_provisioning(
                slug,
                name,
                (&server, strategy),
                &set,
                Some((IMPORT, Some(&from))),
                None,
            )
            .await?;
        self.event(&tenant, "tenant.import", "started", Some(from), None)
            .await;
        let loaded = self
            .load(&tenant, &header, &mut reader, &set, &[Status::Provisioning])
            .await;
        let totals = match loaded {
            Ok(totals) => totals,
            Err(e) => {
                self.event(
                    &tenant,
                    "tenant.import",
                    "failed",
                    None,
                    Some(e.to_string()),
                )
                .await;
                if let Err(cleanup) = self.abandon_import(&tenant).await {
                    tracing::error!(tenant = %tenant.slug, error = %cleanup, "could not remove the failed import");
                }
                return Err(e);
            }
        };
        let manifest = Manifest { header, totals };
        // Its rows are verified: from here on it is an ordinary tenant being created, which a
        // repair completes.
        self.catalog.end_operation(tenant.id).await?;
        let detail = format!(
            "{} rows in {} tables at version {}",
            manifest.rows(),
            manifest.totals.tables.len(),
            manifest.header.version
        );
        self.event(&tenant, "tenant.import", "ok", Some(detail), None)
            .await;
        // Provisioning ends as a create does; a failure here (a later migration, say) leaves
        // the tenant `failed` with its verified rows, and `repair` resumes it.
        let tenant = self.provision(tenant, &set, Provision::Tenant).await?;
        Ok(Imported { tenant, manifest })
    }

    /// Storage at the archive's version, then every row, checked; returns the trailer. The
    /// tenant must stay in one of `expect` throughout.
    pub(crate) async fn load(
        &self,
        tenant: &Tenant,
        header: &Header,
        reader: &mut ArchiveReader,
        set: &MigrationSet,
        expect: &[Status],
    ) -> Result<Trailer> {
        let slug = tenant.slug.as_str();
        self.provision_storage(tenant, false).await?;
        let tenant = &self.catalog.tenant(slug).await?;
        // Provisioning lets the tenant's login in; nothing may use it until it is loaded and
        // verified (a restored tenant's sessions in other processes included).
        self.set_access(tenant, false).await?;
        let pooled = tenant.strategy.ops().pooled();
        // A shared pool is at one version for all its tenants.
        let at = if pooled {
            set.clone()
        } else {
            set.up_to(header.version)
        };
        let version = self.verify_storage(tenant, &at, expect).await?;
        if version != header.version {
            return Err(Error::ArchiveRefused {
                path: reader.path.clone(),
                detail: format!(
                    "the shared pool on {} is at version {version} and the archive at {}: \
                     import it into a database or schema of its own",
                    tenant.server, header.version
                ),
            });
        }
        let mut scope = DataScope::open(self, tenant).await?;
        let plans = plan(tenant, header, &scope.tables)?;
        let engine = scope.engine;
        let mut tx = scope
            .conn
            .begin()
            .await
            .map_err(Error::storage(slug, "begin loading"))?;
        let entered = match scope.filter {
            Some(_) => shared::enter_rows(self, tenant, &mut tx).await?,
            None => false,
        };
        let trailer = load_rows(&mut tx, engine, tenant, header, reader, &plans).await?;
        for plan in &plans {
            engine
                .dialect()
                .continue_identities(&mut tx, &plan.table.name)
                .await
                .map_err(Error::storage(slug, "continue its identity sequences"))?;
        }
        // What the storage holds now, read back, must be what the archive holds.
        for (plan, expected) in plans.iter().zip(&trailer.tables) {
            let sum = read_table(
                &mut tx,
                engine,
                tenant,
                &plan.table,
                scope.filter.as_ref(),
                |_| Ok(()),
            )
            .await?;
            if sum.rows != expected.rows || sum.checksum() != expected.checksum {
                return Err(Error::ContentMismatch {
                    tenant: slug.to_owned(),
                    table: plan.table.name.to_string(),
                    detail: format!(
                        "{} rows read back with checksum {}, the archive holds {} with {}",
                        sum.rows,
                        sum.checksum(),
                        expected.rows,
                        expected.checksum
                    ),
                });
            }
        }
        if scope.filter.is_some() {
            shared::leave_rows(&mut tx, tenant, entered).await?;
        }
        tx.commit()
            .await
            .map_err(Error::storage(slug, "commit its rows"))?;
        Ok(trailer)
    }

    /// Removes an import's tenant, storage and row, after it failed or was found unfinished.
    /// The caller holds the tenant's operation lock.
    pub(crate) async fn abandon_import(&self, tenant: &Tenant) -> Result<()> {
        let failed = self
            .catalog
            .transition(
                tenant.id,
                &[Status::Provisioning, Status::Failed],
                Status::Failed,
                Some("import abandoned"),
            )
            .await?;
        // Anything else became of it meanwhile (activated, deleted): not this call's to remove.
        if failed.is_some() {
            self.delete_held(tenant.slug.as_str(), true).await?;
        }
        Ok(())
    }
}

pub(crate) fn read_header(reader: &mut ArchiveReader) -> Result<Header> {
    let first = reader
        .next()?
        .ok_or_else(|| reader.invalid("the file is empty"))?;
    let header = match serde_json::from_value::<Mark>(first) {
        Ok(Mark::Header(header)) => *header,
        _ => return Err(reader.invalid("not a Tenantry archive: the first line is no header")),
    };
    if header.format != FORMAT || header.format_version != FORMAT_VERSION {
        return Err(reader.invalid(format!(
            "format {} version {}: this Tenantry reads {FORMAT} version {FORMAT_VERSION}",
            header.format, header.format_version
        )));
    }
    Ok(header)
}

/// The archive's migrations must be exactly the set's up to its version.
pub(crate) fn check_migrations(header: &Header, set: &MigrationSet, path: &Path) -> Result<()> {
    let refuse = |detail: String| Error::ArchiveRefused {
        path: PathBuf::from(path),
        detail,
    };
    let archived: BTreeMap<i64, &str> = header
        .migrations
        .iter()
        .map(|m| (m.version, m.checksum.as_str()))
        .collect();
    for m in &header.migrations {
        match set.get(m.version) {
            None => {
                return Err(refuse(format!(
                    "migration {} ({}) is not in the fleet's migration set {}",
                    m.version,
                    m.description,
                    set.dir.display()
                )));
            }
            Some(ours) if hex::encode(&ours.checksum) != m.checksum => {
                return Err(refuse(format!(
                    "migration {} differs from the fleet's {}: another checksum",
                    m.version,
                    ours.path.display()
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(missing) = set
        .iter()
        .find(|m| m.version <= header.version && !archived.contains_key(&m.version))
    {
        return Err(refuse(format!(
            "the archive's tenant never applied migration {} ({}), which the fleet's set has below its version {}",
            missing.version, missing.description, header.version
        )));
    }
    Ok(())
}

/// Matches each archived table and column with the new storage's.
fn plan(tenant: &Tenant, header: &Header, tables: &[TableSpec]) -> Result<Vec<Plan>> {
    let mismatch = |table: &str, detail: String| Error::ContentMismatch {
        tenant: tenant.slug.to_string(),
        table: table.to_owned(),
        detail,
    };
    let column = header.tenant_column.as_str();
    header
        .tables
        .iter()
        .map(|archived| {
            let Some(ours) = tables.iter().find(|t| t.name.as_str() == archived.name) else {
                return Err(mismatch(
                    &archived.name,
                    "in the archive, not in the new tenant's storage".into(),
                ));
            };
            let mut columns = Vec::with_capacity(archived.columns.len());
            for c in &archived.columns {
                let Some(spec) = ours.columns.iter().find(|o| o.name.as_str() == c.name) else {
                    return Err(mismatch(
                        &archived.name,
                        format!(
                            "column {} is in the archive, not in the new storage",
                            c.name
                        ),
                    ));
                };
                columns.push(spec.clone());
            }
            let tenant_at = columns.iter().position(|c| c.name.as_str() == column);
            Ok(Plan {
                table: TableSpec {
                    name: ours.name.clone(),
                    columns,
                    tenant_at,
                    key: Vec::new(),
                },
                archived: archived.columns.iter().map(|c| c.class).collect(),
            })
        })
        .collect()
}

/// Reads every table's rows from the file and inserts them in batches, checking each
/// table's count and checksum against its end line and the trailer, and the trailer's
/// digest against the file.
async fn load_rows(
    conn: &mut AnyConnection,
    engine: Engine,
    tenant: &Tenant,
    header: &Header,
    reader: &mut ArchiveReader,
    plans: &[Plan],
) -> Result<Trailer> {
    let slug = tenant.slug.as_str();
    let old_id = header.tenant.id.as_str();
    let new_id = tenant.id.to_string();
    let dialect = engine.dialect();
    let mut summaries: Vec<TableSummary> = Vec::with_capacity(plans.len());
    let mut current: Option<(&Plan, TableSum, Vec<Vec<Neutral>>)> = None;
    loop {
        let Some(line) = reader.next()? else {
            return Err(reader.invalid("the file ends before its trailer (truncated)"));
        };
        match line {
            Value::Array(mut values) => {
                let Some((plan, sum, batch)) = current.as_mut() else {
                    return Err(reader.invalid("a row outside any table"));
                };
                if values.len() != plan.archived.len() {
                    return Err(reader.invalid(format!(
                        "a row of {} values in table {}, which has {} columns",
                        values.len(),
                        plan.table.name,
                        plan.archived.len()
                    )));
                }
                sum.add(&mut values, plan.table.tenant_at.map(|at| (at, old_id)));
                let mut row = Vec::with_capacity(values.len());
                for (i, (value, class)) in values.iter().zip(&plan.archived).enumerate() {
                    let neutral = match (plan.table.tenant_at == Some(i), value.as_str()) {
                        (true, Some(id)) if id == old_id => Neutral::Text(new_id.clone()),
                        _ => Neutral::of(*class, value).map_err(|e| {
                            reader.invalid(format!(
                                "table {} column {}: {e}",
                                plan.table.name, plan.table.columns[i].name
                            ))
                        })?,
                    };
                    row.push(neutral);
                }
                batch.push(row);
                if batch.len() >= dialect.batch_rows(plan.table.columns.len()) {
                    flush(conn, engine, slug, &plan.table, batch).await?;
                }
            }
            line => match serde_json::from_value::<Mark>(line) {
                Ok(Mark::Table(name)) => {
                    if current.is_some() {
                        return Err(reader.invalid(format!("table {name} starts inside another")));
                    }
                    let Some(plan) = plans
                        .get(summaries.len())
                        .filter(|p| p.table.name.as_str() == name)
                    else {
                        return Err(reader.invalid(format!(
                            "table {name} is not the next table the header lists"
                        )));
                    };
                    current = Some((plan, TableSum::default(), Vec::new()));
                }
                Ok(Mark::End(end)) => {
                    let Some((plan, sum, mut batch)) = current.take() else {
                        return Err(reader.invalid("a table's end outside any table"));
                    };
                    flush(conn, engine, slug, &plan.table, &mut batch).await?;
                    if end.name != plan.table.name.as_str()
                        || end.rows != sum.rows
                        || end.checksum != sum.checksum()
                    {
                        return Err(reader.invalid(format!(
                            "table {}: {} rows with checksum {} in the file, its end line says {} with {} (the file was changed)",
                            plan.table.name,
                            sum.rows,
                            sum.checksum(),
                            end.rows,
                            end.checksum
                        )));
                    }
                    summaries.push(end);
                }
                Ok(Mark::Trailer(trailer)) => {
                    if current.is_some() || summaries.len() != plans.len() {
                        return Err(reader.invalid("the trailer comes before every table ended"));
                    }
                    if trailer.tables != summaries {
                        return Err(reader.invalid(
                            "the trailer's counts and checksums differ from the tables' (the file was changed)",
                        ));
                    }
                    if trailer.digest != reader.digest() {
                        return Err(reader.invalid(
                            "the file's digest differs from the one its trailer records (the file was changed)",
                        ));
                    }
                    return Ok(trailer);
                }
                _ => return Err(reader.invalid("a line that is no row and no table mark")),
            },
        }
    }
}

/// Inserts a batch of rows into `table` (and empties the batch).
pub(crate) async fn flush(
    conn: &mut AnyConnection,
    engine: Engine,
    slug: &str,
    table: &TableSpec,
    batch: &mut Vec<Vec<Neutral>>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    engine
        .dialect()
        .insert_rows(conn, &table.name, &table.columns, batch)
        .await
        .map_err(|e| Error::ContentMismatch {
            tenant: slug.to_owned(),
            table: table.name.to_string(),
            detail: format!("cannot insert its rows: {}", crate::error::said(&e)),
        })?;
    batch.clear();
    Ok(())
}
