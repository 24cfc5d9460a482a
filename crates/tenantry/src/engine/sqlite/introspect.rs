//! Reading the [`Shape`] of a tenant's file through SQLite's table-valued pragmas: columns
//! with their declared types, indexes (the automatic ones of keys and `UNIQUE` included),
//! the primary key, unique constraints (indexes of origin `u`) and foreign keys. SQLite keeps
//! these constraints without names, so each is known by its definition; it does not expose
//! check constraints apart from the table's SQL text, so they are not read.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::engine::shape::{Column, Constraint, ConstraintKind, Shape, column_list};

const COLUMNS: &str = "SELECT m.name AS tbl, p.name AS name, p.type AS data_type, \
     p.\"notnull\" AS not_null, p.pk AS pk \
     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     ORDER BY m.name, p.cid";

const INDEXES: &str = "SELECT m.name AS tbl, il.name AS name, il.\"unique\" AS is_unique, \
     il.origin AS origin, COALESCE(ii.name, '(expression)') AS col \
     FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     ORDER BY m.name, il.name, ii.seqno";

const FOREIGN_KEYS: &str = "SELECT m.name AS tbl, f.id AS id, f.\"table\" AS ref_table, \
     f.\"from\" AS col, f.\"to\" AS ref_col, f.on_update AS on_update, f.on_delete AS on_delete \
     FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     ORDER BY m.name, f.id, f.seq";

/// A foreign key's columns, read one row per column.
#[derive(Default)]
struct ForeignKey {
    columns: Vec<String>,
    ref_table: String,
    ref_columns: Vec<String>,
    rules: String,
}

/// The file's base tables with their columns, indexes and constraints.
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
    // Primary-key columns by their position in the key.
    let mut primary: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for row in sqlx::query(COLUMNS).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        let name: String = row.try_get("name")?;
        let pk: i64 = row.try_get("pk")?;
        if pk > 0 {
            primary
                .entry(table.clone())
                .or_default()
                .insert(pk, name.clone());
        }
        let column = Column {
            data_type: row.try_get("data_type")?,
            nullable: row.try_get::<i64, _>("not_null")? == 0,
        };
        shape.add_column(&table, name, column);
    }
    for (table, columns) in primary {
        let columns: Vec<String> = columns.into_values().collect();
        let constraint = Constraint {
            kind: ConstraintKind::PrimaryKey,
            definition: format!("PRIMARY KEY {}", column_list(&columns)),
        };
        shape.add_constraint(&table, "PRIMARY KEY".to_owned(), constraint);
    }
    let mut unique: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in sqlx::query(INDEXES).fetch_all(&mut *conn).await? {
        let table: String = row.try_get("tbl")?;
        let name: String = row.try_get("name")?;
        let column: String = row.try_get("col")?;
        if row.try_get::<String, _>("origin")? == "u" {
            unique
                .entry((table.clone(), name.clone()))
                .or_default()
                .push(column.clone());
        }
        let is_unique = row.try_get::<i64, _>("is_unique")? != 0;
        shape.add_index_column(&table, name, is_unique, column);
    }
    for ((table, _), columns) in unique {
        let definition = format!("UNIQUE {}", column_list(&columns));
        let constraint = Constraint {
            kind: ConstraintKind::Unique,
            definition: definition.clone(),
        };
        shape.add_constraint(&table, definition, constraint);
    }
    foreign_keys(conn, &mut shape).await?;
    Ok(shape)
}

async fn foreign_keys(conn: &mut AnyConnection, shape: &mut Shape) -> sqlx::Result<()> {
    let mut keys: BTreeMap<(String, i64), ForeignKey> = BTreeMap::new();
    for row in sqlx::query(FOREIGN_KEYS).fetch_all(&mut *conn).await? {
        let key = keys
            .entry((row.try_get("tbl")?, row.try_get("id")?))
            .or_default();
        key.columns.push(row.try_get("col")?);
        key.ref_table = row.try_get("ref_table")?;
        // No referenced column: the referenced table's primary key.
        if let Some(column) = row.try_get::<Option<String>, _>("ref_col")? {
            key.ref_columns.push(column);
        }
        let on_update: String = row.try_get("on_update")?;
        let on_delete: String = row.try_get("on_delete")?;
        key.rules = format!("ON UPDATE {on_update} ON DELETE {on_delete}");
    }
    for ((table, _), key) in keys {
        let references = match key.ref_columns.is_empty() {
            true => key.ref_table.clone(),
            false => format!("{} {}", key.ref_table, column_list(&key.ref_columns)),
        };
        let definition = format!(
            "FOREIGN KEY {} REFERENCES {references} {}",
            column_list(&key.columns),
            key.rules
        );
        let constraint = Constraint {
            kind: ConstraintKind::ForeignKey,
            definition: definition.clone(),
        };
        shape.add_constraint(&table, definition, constraint);
    }
    Ok(())
}
