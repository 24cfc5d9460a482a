//! The tables of one tenant's storage as its rows are read and written: every base table but
//! the ledger (in a shared pool, only the tables with the tenant column, and only the
//! tenant's rows), each with its columns classified by the engine, parents before the tables
//! that reference them.

use sqlx::AnyConnection;

use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::Engine;
use crate::engine::shape::{ConstraintKind, Shape, TableShape};
use crate::engine::value::ColumnSpec;
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::migrate::ledger;

/// One table, its columns by name.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: SqlName,
    pub columns: Vec<ColumnSpec>,
    /// Where the tenant column is, if the table has one.
    pub tenant_at: Option<usize>,
    /// Where its primary key's columns are, in the key's order (empty: it has none).
    pub key: Vec<usize>,
}

/// An administrative connection scoped to a tenant's storage, with its tables.
pub struct DataScope {
    pub engine: Engine,
    pub conn: AnyConnection,
    pub tables: Vec<TableSpec>,
    /// The tenant column, where the tenant's rows share their tables with other tenants'.
    pub filter: Option<SqlName>,
}

impl DataScope {
    /// Opens the tenant's storage (which must exist) and reads its tables.
    pub async fn open(t: &Tenantry, tenant: &Tenant) -> Result<DataScope> {
        let target = t.migration_target(tenant).await?;
        let pooled = tenant.strategy.ops().pooled();
        DataScope::of_conn(t, tenant, target.engine, target.conn, pooled).await
    }

    /// The tables `conn` (scoped to one unit of storage, `pooled` or not) holds.
    pub async fn of_conn(
        t: &Tenantry,
        tenant: &Tenant,
        engine: Engine,
        mut conn: AnyConnection,
        pooled: bool,
    ) -> Result<DataScope> {
        let slug = tenant.slug.as_str();
        let dialect = engine.dialect();
        if let Some(sql) = dialect.data_session() {
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .map_err(Error::storage(slug, "prepare a data session"))?;
        }
        let tables = tables_in(t, tenant, engine, &mut conn, pooled).await?;
        let column = SqlName::new("tenant column", &t.config.tenant_column)?;
        Ok(DataScope {
            engine,
            conn,
            tables,
            filter: pooled.then_some(column),
        })
    }
}

/// The tables of the storage `conn` is scoped to (read in its transaction, if it has one):
/// every base table but the ledger (`pooled`: only those with the tenant column), columns
/// classified, parents first.
pub async fn tables_in(
    t: &Tenantry,
    tenant: &Tenant,
    engine: Engine,
    conn: &mut AnyConnection,
    pooled: bool,
) -> Result<Vec<TableSpec>> {
    let column = SqlName::new("tenant column", &t.config.tenant_column)?;
    tables_by(tenant.slug.as_str(), engine, conn, &column, pooled).await
}

/// [`tables_in`], with `column` as the tenant column; `owner` names the storage in errors.
pub(crate) async fn tables_by(
    slug: &str,
    engine: Engine,
    conn: &mut AnyConnection,
    column: &SqlName,
    pooled: bool,
) -> Result<Vec<TableSpec>> {
    let dialect = engine.dialect();
    let shape = dialect
        .introspect(conn)
        .await
        .map_err(Error::storage(slug, "read its tables"))?;
    let mut tables = Vec::new();
    for (name, table) in &shape.tables {
        if ledger::is_ledger(name) {
            continue;
        }
        let unsupported = |what: &str| Error::ContentMismatch {
            tenant: slug.to_owned(),
            table: name.clone(),
            detail: format!("{what}: only lowercase names are supported"),
        };
        let table_name = SqlName::new("table", name).map_err(|_| unsupported("its name"))?;
        let mut columns = Vec::with_capacity(table.columns.len());
        for (col, c) in &table.columns {
            columns.push(ColumnSpec {
                name: SqlName::new("column", col)
                    .map_err(|_| unsupported(&format!("column {col}")))?,
                class: dialect.value_class(&c.data_type),
                data_type: c.data_type.clone(),
            });
        }
        let tenant_at = columns.iter().position(|c| &c.name == column);
        if pooled && tenant_at.is_none() {
            // A table all tenants of the pool share: nobody's own rows.
            continue;
        }
        let key = primary_key(table)
            .iter()
            .map(|k| columns.iter().position(|c| c.name.as_str() == k))
            .collect::<Option<Vec<usize>>>()
            .unwrap_or_default();
        tables.push(TableSpec {
            name: table_name,
            columns,
            tenant_at,
            key,
        });
    }
    parents_first(&mut tables, &shape);
    Ok(tables)
}

/// The columns of a table's primary key, from its definition (`PRIMARY KEY (a, b)`).
fn primary_key(table: &TableShape) -> Vec<String> {
    let Some(definition) = table
        .constraints
        .values()
        .find(|c| c.kind == ConstraintKind::PrimaryKey)
        .map(|c| c.definition.as_str())
    else {
        return Vec::new();
    };
    let inner = definition
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or("", |(inner, _)| inner);
    inner
        .split(',')
        .map(|c| c.trim().trim_matches(['"', '`']).to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The table a foreign key's definition references (`… REFERENCES name (…)`).
fn referenced(definition: &str) -> Option<String> {
    let rest = definition.split("REFERENCES").nth(1)?.trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '(')
        .filter(|c| !matches!(c, '"' | '`'))
        .collect();
    let name = name.rsplit('.').next().unwrap_or(&name).to_owned();
    (!name.is_empty()).then_some(name)
}

/// Orders `tables` so that a table comes after every other table it references (cycles
/// keep their name order).
fn parents_first(tables: &mut Vec<TableSpec>, shape: &Shape) {
    let parents = |table: &str| -> Vec<String> {
        shape.tables.get(table).map_or_else(Vec::new, |t| {
            t.constraints
                .values()
                .filter(|c| c.kind == ConstraintKind::ForeignKey)
                .filter_map(|c| referenced(&c.definition))
                .filter(|p| p != table)
                .collect()
        })
    };
    let mut left = std::mem::take(tables);
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            parents(t.name.as_str())
                .iter()
                .all(|p| !left.iter().any(|o| o.name.as_str() == p))
        });
        tables.push(left.remove(ready.unwrap_or(0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engines_primary_key_names_its_columns() {
        for definition in [
            "PRIMARY KEY (tenant_id, id)",
            "PRIMARY KEY (`tenant_id`, `id`)",
            "PRIMARY KEY (\"tenant_id\", \"id\")",
        ] {
            let mut table = TableShape::default();
            table.constraints.insert(
                "pk".into(),
                crate::engine::shape::Constraint {
                    kind: ConstraintKind::PrimaryKey,
                    definition: definition.into(),
                },
            );
            assert_eq!(primary_key(&table), ["tenant_id", "id"], "{definition}");
        }
        assert!(primary_key(&TableShape::default()).is_empty());
    }

    #[test]
    fn every_engines_foreign_key_names_its_parent() {
        for definition in [
            "FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns(tenant_id, id)",
            "FOREIGN KEY (`tenant_id`) REFERENCES `campaigns` (`tenant_id`) ON DELETE CASCADE",
            "FOREIGN KEY (a) REFERENCES \"campaigns\" (b)",
            "FOREIGN KEY (a) REFERENCES shared.campaigns(b)",
        ] {
            assert_eq!(
                referenced(definition).as_deref(),
                Some("campaigns"),
                "{definition}"
            );
        }
    }
}
