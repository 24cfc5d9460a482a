//! Reading the [`Shape`] of the current database from MySQL's and MariaDB's
//! `information_schema`: types as `column_type` writes them (`varchar(26)`, `int(11)`),
//! indexes from `statistics` (a prefix length as `col(10)`), constraints from
//! `table_constraints` with their columns, referenced keys, rules and check clauses.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::engine::shape::{Column, Constraint, ConstraintKind, Shape, column_list};

const COLUMNS: &str = "SELECT CAST(table_name AS CHAR) AS tbl, CAST(column_name AS CHAR) AS name, \
     CAST(column_type AS CHAR) AS data_type, CAST(is_nullable AS CHAR) AS nullable \
     FROM information_schema.columns WHERE table_schema = DATABASE() \
     ORDER BY table_name, ordinal_position";

const INDEXES: &str = "SELECT CAST(table_name AS CHAR) AS tbl, CAST(index_name AS CHAR) AS name, \
     CAST(non_unique AS SIGNED) AS non_unique, \
     CAST(CONCAT(COALESCE(column_name, '(expression)'), \
                 IF(sub_part IS NULL, '', CONCAT('(', sub_part, ')'))) AS CHAR) AS col \
     FROM information_schema.statistics WHERE table_schema = DATABASE() \
     ORDER BY table_name, index_name, seq_in_index";

const CONSTRAINTS: &str = "SELECT CAST(table_name AS CHAR) AS tbl, \
     CAST(constraint_name AS CHAR) AS name, CAST(constraint_type AS CHAR) AS kind \
     FROM information_schema.table_constraints WHERE table_schema = DATABASE()";

const KEY_COLUMNS: &str = "SELECT CAST(table_name AS CHAR) AS tbl, \
     CAST(constraint_name AS CHAR) AS name, CAST(column_name AS CHAR) AS col, \
     CAST(referenced_table_name AS CHAR) AS ref_table, \
     CAST(referenced_column_name AS CHAR) AS ref_col \
     FROM information_schema.key_column_usage WHERE table_schema = DATABASE() \
     ORDER BY table_name, constraint_name, ordinal_position";

const RULES: &str = "SELECT CAST(table_name AS CHAR) AS tbl, \
     CAST(constraint_name AS CHAR) AS name, CAST(update_rule AS CHAR) AS on_update, \
     CAST(delete_rule AS CHAR) AS on_delete \
     FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()";

/// MariaDB names each check's table (its check names are unique per table only).
const CHECKS_MARIADB: &str = "SELECT CAST(table_name AS CHAR) AS tbl, \
     CAST(constraint_name AS CHAR) AS name, CAST(check_clause AS CHAR) AS clause \
     FROM information_schema.check_constraints WHERE constraint_schema = DATABASE()";

/// MySQL's check names are unique per database; its `check_constraints` has no table.
const CHECKS_MYSQL: &str = "SELECT CAST(tc.table_name AS CHAR) AS tbl, \
     CAST(tc.constraint_name AS CHAR) AS name, CAST(cc.check_clause AS CHAR) AS clause \
     FROM information_schema.table_constraints tc \
     JOIN information_schema.check_constraints cc \
       ON cc.constraint_schema = tc.constraint_schema AND cc.constraint_name = tc.constraint_name \
     WHERE tc.table_schema = DATABASE() AND tc.constraint_type = 'CHECK'";

/// A key constraint's columns and, for a foreign key, what it references.
#[derive(Default)]
struct Key {
    columns: Vec<String>,
    ref_table: Option<String>,
    ref_columns: Vec<String>,
}

/// The current database's base tables with their columns, indexes and constraints.
pub async fn shape(conn: &mut AnyConnection) -> sqlx::Result<Shape> {
    let tables = sqlx::query(super::LIST_TABLES)
        .fetch_all(&mut *conn)
        .await?;
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
            nullable: row.try_get::<String, _>("nullable")? == "YES",
        };
        shape.add_column(&table, row.try_get("name")?, column);
    }
    for row in sqlx::query(INDEXES).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        let unique = row.try_get::<i64, _>("non_unique")? == 0;
        shape.add_index_column(&table, row.try_get("name")?, unique, row.try_get("col")?);
    }
    constraints(conn, &mut shape).await?;
    Ok(shape)
}

async fn constraints(conn: &mut AnyConnection, shape: &mut Shape) -> sqlx::Result<()> {
    let mut keys: BTreeMap<(String, String), Key> = BTreeMap::new();
    for row in sqlx::query(KEY_COLUMNS).fetch_all(&mut *conn).await? {
        let key = keys
            .entry((row.try_get("tbl")?, row.try_get("name")?))
            .or_default();
        key.columns.push(row.try_get("col")?);
        if let Some(table) = row.try_get::<Option<String>, _>("ref_table")? {
            key.ref_table = Some(table);
        }
        if let Some(column) = row.try_get::<Option<String>, _>("ref_col")? {
            key.ref_columns.push(column);
        }
    }
    let mut rules: BTreeMap<(String, String), String> = BTreeMap::new();
    for row in sqlx::query(RULES).fetch_all(&mut *conn).await? {
        let on_update: String = row.try_get("on_update")?;
        let on_delete: String = row.try_get("on_delete")?;
        rules.insert(
            (row.try_get("tbl")?, row.try_get("name")?),
            format!("ON UPDATE {on_update} ON DELETE {on_delete}"),
        );
    }
    let mut checks: BTreeMap<(String, String), String> = BTreeMap::new();
    let check_rows = match sqlx::query(CHECKS_MARIADB).fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(_) => sqlx::query(CHECKS_MYSQL).fetch_all(&mut *conn).await?,
    };
    for row in check_rows {
        let clause: String = row.try_get("clause")?;
        checks.insert(
            (row.try_get("tbl")?, row.try_get("name")?),
            format!("CHECK ({clause})"),
        );
    }
    for row in sqlx::query(CONSTRAINTS).fetch_all(&mut *conn).await? {
        let id: (String, String) = (row.try_get("tbl")?, row.try_get("name")?);
        let key = keys.remove(&id).unwrap_or_default();
        let (kind, definition) = match row.try_get::<String, _>("kind")?.as_str() {
            "PRIMARY KEY" => (
                ConstraintKind::PrimaryKey,
                format!("PRIMARY KEY {}", column_list(&key.columns)),
            ),
            "UNIQUE" => (
                ConstraintKind::Unique,
                format!("UNIQUE {}", column_list(&key.columns)),
            ),
            "FOREIGN KEY" => {
                let rule = rules.get(&id).map(String::as_str).unwrap_or_default();
                let definition = format!(
                    "FOREIGN KEY {} REFERENCES {} {} {rule}",
                    column_list(&key.columns),
                    key.ref_table.as_deref().unwrap_or("?"),
                    column_list(&key.ref_columns),
                );
                (ConstraintKind::ForeignKey, definition.trim_end().to_owned())
            }
            "CHECK" => (
                ConstraintKind::Check,
                checks
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "CHECK".to_owned()),
            ),
            _ => continue,
        };
        let (table, name) = id;
        shape.add_constraint(&table, name, Constraint { kind, definition });
    }
    Ok(())
}
