//! Reading the [`Shape`] of the connected storage from PostgreSQL's catalog: the current
//! schema only (a schema tenant's, with the migration connection's search path set to it; a
//! shared pool's; `public` in a tenant's own database). Types as `format_type` writes them;
//! constraints as `pg_get_constraintdef` does, with tables of the current schema unqualified.

use sqlx::{AnyConnection, Row};

use crate::engine::shape::{Column, Constraint, ConstraintKind, Shape};

const TABLES: &str = "SELECT c.relname::text AS name FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition";

const COLUMNS: &str = "SELECT c.relname::text AS tbl, a.attname::text AS name, \
     format_type(a.atttypid, a.atttypmod) AS data_type, NOT a.attnotnull AS nullable \
     FROM pg_attribute a \
     JOIN pg_class c ON c.oid = a.attrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY c.relname, a.attnum";

/// One row per key column of each index, in order (expressions as `pg_get_indexdef` writes
/// them).
const INDEXES: &str = "SELECT t.relname::text AS tbl, i.relname::text AS name, \
     ix.indisunique AS is_unique, pg_get_indexdef(ix.indexrelid, k.n, true) AS col \
     FROM pg_index ix \
     JOIN pg_class i ON i.oid = ix.indexrelid \
     JOIN pg_class t ON t.oid = ix.indrelid \
     JOIN pg_namespace n ON n.oid = t.relnamespace \
     CROSS JOIN LATERAL generate_series(1, ix.indnkeyatts::int) AS k(n) \
     WHERE n.nspname = current_schema() \
     ORDER BY t.relname, i.relname, k.n";

const CONSTRAINTS: &str = "SELECT t.relname::text AS tbl, con.conname::text AS name, \
     con.contype::text AS kind, pg_get_constraintdef(con.oid, true) AS definition \
     FROM pg_constraint con \
     JOIN pg_class t ON t.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = t.relnamespace \
     WHERE n.nspname = current_schema() AND con.contype IN ('p', 'f', 'u', 'c')";

/// The current schema's base tables with their columns, indexes and constraints.
pub async fn shape(conn: &mut AnyConnection) -> sqlx::Result<Shape> {
    let tables = sqlx::query(TABLES).fetch_all(&mut *conn).await?;
    let mut shape = Shape::with_tables(
        tables
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<sqlx::Result<Vec<_>>>()?,
    );
    for row in sqlx::query(COLUMNS).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        let column = Column {
            data_type: row.try_get("data_type")?,
            nullable: row.try_get("nullable")?,
        };
        shape.add_column(&table, row.try_get("name")?, column);
    }
    for row in sqlx::query(INDEXES).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        shape.add_index_column(
            &table,
            row.try_get("name")?,
            row.try_get("is_unique")?,
            row.try_get("col")?,
        );
    }
    for row in sqlx::query(CONSTRAINTS).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        let kind = match row.try_get::<String, _>("kind")?.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "f" => ConstraintKind::ForeignKey,
            "u" => ConstraintKind::Unique,
            _ => ConstraintKind::Check,
        };
        let constraint = Constraint {
            kind,
            definition: row.try_get("definition")?,
        };
        shape.add_constraint(&table, row.try_get("name")?, constraint);
    }
    Ok(shape)
}
