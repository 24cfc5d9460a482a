//! What every shared migration must leave: row-level security on every tenant table, and
//! keys that lead with the tenant column.
//!
//! Row-level security filters rows *after* an index has found them, and constraints are
//! checked across all rows regardless of policies. So a unique key on `email` alone lets one
//! tenant test whether another has an address (a duplicate-key error), an index on it lets
//! `EXPLAIN ANALYZE` with range conditions count another tenant's values, and a foreign key
//! on `id` alone lets one tenant reference, and so pin, another's row. The lint refuses
//! these at their root: every primary key, unique constraint and index on a tenant table
//! leads with the tenant column, and every foreign key to a tenant table pairs the tenant
//! column with the referenced table's.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{PRIVATE_SCHEMA, SHARED_SCHEMA, shared_schema};
use crate::engine::Engine;
use crate::error::Error;
use crate::ident::{RoleName, SqlName};
use crate::migrate::ledger;
use crate::storage::HookError;

/// The policy Tenantry puts on every shared table.
const POLICY: &str = "tenantry_tenant_isolation";

/// What the row-level-security hook enforces after each shared migration.
#[derive(Debug, Clone)]
pub struct RlsPolicy {
    pub server: String,
    pub role: RoleName,
    pub column: SqlName,
    pub globals: Vec<SqlName>,
}

/// The tables of the shared schema (without the ledger), and whether each has the column.
pub(super) async fn tables(
    conn: &mut AnyConnection,
    column: &str,
) -> sqlx::Result<Vec<(String, bool)>> {
    let rows = sqlx::query(
        "SELECT t.table_name::text AS name, \
         EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = t.table_schema \
                 AND c.table_name = t.table_name AND c.column_name = $1) AS has_column \
         FROM information_schema.tables t \
         WHERE t.table_schema = $2 AND t.table_type = 'BASE TABLE' AND t.table_name <> $3 \
         ORDER BY 1",
    )
    .bind(column)
    .bind(SHARED_SCHEMA)
    .bind(ledger::TABLE)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("has_column")?)))
        .collect()
}

/// Indexes (with the constraints they back) of the shared schema whose first key is not the
/// tenant column, on tables that have it: `(table, name, kind, key columns)`.
const LEADING_INDEXES: &str = "
SELECT c.relname::text AS tbl, ic.relname::text AS name,
  CASE WHEN i.indisprimary THEN 'primary key'
       WHEN con.contype = 'u' THEN 'unique constraint'
       WHEN con.contype = 'x' THEN 'exclusion constraint'
       WHEN i.indisunique THEN 'unique index'
       ELSE 'index' END AS kind,
  (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)
     FROM generate_series(1, i.indnkeyatts) AS k) AS cols
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                            AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = $1 AND c.relname <> $2
  AND i.indkey[0] IS DISTINCT FROM (SELECT a.attnum FROM pg_attribute a
       WHERE a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped)
  AND EXISTS (SELECT 1 FROM pg_attribute a
       WHERE a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped)
ORDER BY 1, 2";

/// Foreign keys of the shared schema to a table with the tenant column that do not pair the
/// tenant column with the referenced table's: `(table, name, columns, referenced table,
/// referenced columns)`.
const UNPAIRED_FOREIGN_KEYS: &str = "
SELECT c.relname::text AS tbl, con.conname::text AS name,
  (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n) FROM unnest(con.conkey) WITH ORDINALITY AS k(att, n)
     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.att) AS cols,
  rc.relname::text AS ref,
  (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n) FROM unnest(con.confkey) WITH ORDINALITY AS k(att, n)
     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.att) AS ref_cols
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = con.confrelid
WHERE con.contype = 'f' AND n.nspname = $1
  AND EXISTS (SELECT 1 FROM pg_attribute ra
       WHERE ra.attrelid = con.confrelid AND ra.attname = $2 AND NOT ra.attisdropped)
  AND NOT EXISTS (
    SELECT 1 FROM unnest(con.conkey, con.confkey) AS k(l, r)
    JOIN pg_attribute la ON la.attrelid = con.conrelid AND la.attnum = k.l
    JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.r
    WHERE la.attname = $2 AND ra.attname = $2)
ORDER BY 1, 2";

/// `cols` with the tenant column first (and only once).
fn led_by(column: &str, cols: &str) -> String {
    let rest: Vec<&str> = cols
        .split(", ")
        .filter(|c| !c.is_empty() && *c != column)
        .collect();
    std::iter::once(column)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RlsPolicy {
    /// Enables and forces row-level security with Tenantry's policy on every table that has
    /// the tenant column, grants the runtime role row access to them (read-only access to
    /// declared global tables), refuses any other table, and lints the keys.
    pub async fn enforce(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        let pg = Engine::Postgres;
        let schema = pg.quote(&shared_schema());
        let role = pg.quote(&self.role);
        let column = pg.quote(&self.column);
        let found = tables(conn, self.column.as_str())
            .await
            .map_err(HookError::Sql)?;
        let mut sql = format!("GRANT USAGE ON SCHEMA {schema} TO {role};\n");
        for (name, has_column) in found {
            let table = SqlName::new("shared table", &name).map_err(HookError::Refused)?;
            let qualified = format!("{schema}.{}", pg.quote(&table));
            if self.globals.contains(&table) {
                sql.push_str(&format!("GRANT SELECT ON {qualified} TO {role};\n"));
                continue;
            }
            if !has_column {
                return Err(HookError::Refused(Error::UnprotectedTable {
                    server: self.server.clone(),
                    table: name,
                    column: self.column.to_string(),
                }));
            }
            let check = format!("({column})::text = (SELECT {PRIVATE_SCHEMA}.current_tenant())");
            sql.push_str(&format!(
                "ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY;\n\
                 ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY;\n\
                 DROP POLICY IF EXISTS {POLICY} ON {qualified};\n\
                 CREATE POLICY {POLICY} ON {qualified} FOR ALL USING ({check}) WITH CHECK ({check});\n\
                 GRANT SELECT, INSERT, UPDATE, DELETE ON {qualified} TO {role};\n"
            ));
        }
        self.lint(conn).await?;
        sql.push_str(&format!(
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};\n\
             REVOKE ALL ON TABLE {schema}.{} FROM {role};\n",
            pg.quote(&SqlName::new("table", ledger::TABLE).map_err(HookError::Refused)?)
        ));
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(conn)
            .await
            .map_err(HookError::Sql)?;
        Ok(())
    }

    /// Refuses the first key that does not lead with (or, for a foreign key, pair) the tenant
    /// column, naming the table and the constraint and spelling out the fix.
    async fn lint(&self, conn: &mut AnyConnection) -> Result<(), HookError> {
        let column = self.column.as_str();
        let refuse = |table: String, constraint: String, problem: String, fix: String| {
            HookError::Refused(Error::SharedKeyLint {
                server: self.server.clone(),
                table,
                constraint,
                problem,
                fix,
            })
        };
        let indexes = sqlx::query(LEADING_INDEXES)
            .bind(SHARED_SCHEMA)
            .bind(ledger::TABLE)
            .bind(column)
            .fetch_all(&mut *conn)
            .await
            .map_err(HookError::Sql)?;
        for row in indexes {
            let get = |name: &str| -> Result<String, HookError> {
                row.try_get::<Option<String>, _>(name)
                    .map(Option::unwrap_or_default)
                    .map_err(HookError::Sql)
            };
            let (table, name, kind) = (get("tbl")?, get("name")?, get("kind")?);
            if self.globals.iter().any(|g| g.as_str() == table) {
                continue;
            }
            let cols = led_by(column, &get("cols")?);
            let fix = match kind.as_str() {
                "primary key" => format!("declare it PRIMARY KEY ({cols})"),
                "unique constraint" => format!("declare it UNIQUE ({cols})"),
                "unique index" => format!("create it as UNIQUE INDEX ON {table} ({cols})"),
                "exclusion constraint" => {
                    format!("add {column} WITH = as its first element")
                }
                _ => format!("create it as INDEX ON {table} ({cols})"),
            };
            return Err(refuse(
                table,
                name,
                format!("{kind} does not lead with the tenant column {column:?}"),
                fix,
            ));
        }
        let keys = sqlx::query(UNPAIRED_FOREIGN_KEYS)
            .bind(SHARED_SCHEMA)
            .bind(column)
            .fetch_all(&mut *conn)
            .await
            .map_err(HookError::Sql)?;
        if let Some(row) = keys.first() {
            let get = |name: &str| -> Result<String, HookError> {
                row.try_get::<Option<String>, _>(name)
                    .map(Option::unwrap_or_default)
                    .map_err(HookError::Sql)
            };
            let (table, name, reference) = (get("tbl")?, get("name")?, get("ref")?);
            let (cols, ref_cols) = (
                led_by(column, &get("cols")?),
                led_by(column, &get("ref_cols")?),
            );
            return Err(refuse(
                table,
                name,
                format!(
                    "foreign key to {reference:?} does not pair the tenant column {column:?} with {reference}.{column}"
                ),
                format!(
                    "declare it FOREIGN KEY ({cols}) REFERENCES {reference} ({ref_cols}), with a PRIMARY KEY or UNIQUE ({ref_cols}) on {reference}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::led_by;

    #[test]
    fn the_tenant_column_leads_once() {
        assert_eq!(led_by("tenant_id", "email"), "tenant_id, email");
        assert_eq!(led_by("tenant_id", "id, tenant_id"), "tenant_id, id");
        assert_eq!(led_by("tenant_id", ""), "tenant_id");
    }
}
