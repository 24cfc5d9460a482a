//! [`Shape`]: what a tenant's storage holds, as each engine's introspection reads it
//! ([`super::Dialect::introspect`]): base tables, their columns (name, type, nullability),
//! indexes (name, columns, unique) and constraints (primary key, foreign keys, unique, check
//! where the engine exposes them). `migrate verify` compares two of them.
//!
//! Only what every tenant of one engine spells alike is kept: column defaults (which name a
//! tenant's own sequences or schema) and the engine's internal tables are left out.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The schema of one unit's storage, tables by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub tables: BTreeMap<String, TableShape>,
}

/// One base table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableShape {
    pub columns: BTreeMap<String, Column>,
    pub indexes: BTreeMap<String, Index>,
    /// By name; a constraint the engine keeps without a name (SQLite) by its definition,
    /// its primary key as `PRIMARY KEY`.
    pub constraints: BTreeMap<String, Constraint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The type as the engine writes it (`character varying(26)`, `varchar(26)`, `TEXT`).
    pub data_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Key columns (or expressions) in order.
    pub columns: Vec<String>,
    pub unique: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    PrimaryKey,
    ForeignKey,
    Unique,
    Check,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    pub kind: ConstraintKind,
    /// `PRIMARY KEY (a, b)`, `FOREIGN KEY (a) REFERENCES t (b) …`, `UNIQUE (a)`,
    /// `CHECK (…)`, as the engine words it.
    pub definition: String,
}

impl Shape {
    /// Starts a shape with these base tables.
    pub fn with_tables(names: impl IntoIterator<Item = String>) -> Shape {
        Shape {
            tables: names
                .into_iter()
                .map(|name| (name, TableShape::default()))
                .collect(),
        }
    }

    /// A listed table, to fill in; `None` for anything else (views, internal tables).
    pub fn table_mut(&mut self, name: &str) -> Option<&mut TableShape> {
        self.tables.get_mut(name)
    }

    /// Adds a column to a listed table.
    pub fn add_column(&mut self, table: &str, name: String, column: Column) {
        if let Some(t) = self.table_mut(table) {
            t.columns.insert(name, column);
        }
    }

    /// Adds a key column to a listed table's index, creating the index.
    pub fn add_index_column(&mut self, table: &str, index: String, unique: bool, column: String) {
        if let Some(t) = self.table_mut(table) {
            t.indexes
                .entry(index)
                .or_insert_with(|| Index {
                    columns: Vec::new(),
                    unique,
                })
                .columns
                .push(column);
        }
    }

    /// Adds a constraint to a listed table.
    pub fn add_constraint(&mut self, table: &str, key: String, constraint: Constraint) {
        if let Some(t) = self.table_mut(table) {
            t.constraints.insert(key, constraint);
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.nullable { "NULL" } else { "NOT NULL" };
        write!(f, "{} {null}", self.data_type)
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unique {
            f.write_str("UNIQUE ")?;
        }
        write!(f, "({})", self.columns.join(", "))
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.definition)
    }
}

/// `(a, b)`, for definitions built from column lists.
pub fn column_list(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}
