//! Schema drift: how a unit's [`Shape`] differs from its reference's — each table, column,
//! index and constraint missing, extra, or different. A table missing or extra is one drift,
//! not one per column.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::engine::shape::{Shape, TableShape};

/// What kind of object drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Object {
    Table,
    Column,
    Index,
    Constraint,
}

/// How it drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The reference has it; this unit does not.
    Missing,
    /// This unit has it; the reference does not.
    Extra,
    /// Both have it under one name, defined differently.
    Different,
}

/// One difference from the reference. `expected` is the reference's definition, `found`
/// this unit's (`None` where it has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub table: String,
    pub object: Object,
    /// The column, index or constraint (the table's own name for a table).
    pub name: String,
    pub change: Change,
    pub expected: Option<String>,
    pub found: Option<String>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.object {
            Object::Table => write!(f, "table {}", self.table)?,
            Object::Column => write!(f, "column {}.{}", self.table, self.name)?,
            Object::Index => write!(f, "index {} on {}", self.name, self.table)?,
            Object::Constraint => write!(f, "constraint {} on {}", self.name, self.table)?,
        }
        let show = |v: &Option<String>| v.clone().unwrap_or_default();
        match self.change {
            Change::Missing if self.expected.is_some() => {
                write!(f, ": missing (expected {})", show(&self.expected))
            }
            Change::Missing => f.write_str(": missing"),
            Change::Extra if self.found.is_some() => {
                write!(f, ": extra ({})", show(&self.found))
            }
            Change::Extra => f.write_str(": extra"),
            Change::Different => write!(
                f,
                ": different (expected {}, found {})",
                show(&self.expected),
                show(&self.found)
            ),
        }
    }
}

/// Every difference of `found` from `reference`, table by table in name order.
pub fn compare(reference: &Shape, found: &Shape) -> Vec<Drift> {
    let mut out = Vec::new();
    let table = |name: &str, change| Drift {
        table: name.to_owned(),
        object: Object::Table,
        name: name.to_owned(),
        change,
        expected: None,
        found: None,
    };
    for (name, expected) in &reference.tables {
        match found.tables.get(name) {
            None => out.push(table(name, Change::Missing)),
            Some(actual) => compare_table(name, expected, actual, &mut out),
        }
    }
    for name in found.tables.keys() {
        if !reference.tables.contains_key(name) {
            out.push(table(name, Change::Extra));
        }
    }
    out
}

fn compare_table(table: &str, expected: &TableShape, found: &TableShape, out: &mut Vec<Drift>) {
    compare_map(
        table,
        Object::Column,
        &expected.columns,
        &found.columns,
        out,
    );
    compare_map(table, Object::Index, &expected.indexes, &found.indexes, out);
    compare_map(
        table,
        Object::Constraint,
        &expected.constraints,
        &found.constraints,
        out,
    );
}

fn compare_map<V: PartialEq + fmt::Display>(
    table: &str,
    object: Object,
    expected: &BTreeMap<String, V>,
    found: &BTreeMap<String, V>,
    out: &mut Vec<Drift>,
) {
    let drift = |name: &str, change, expected: Option<&V>, found: Option<&V>| Drift {
        table: table.to_owned(),
        object,
        name: name.to_owned(),
        change,
        expected: expected.map(ToString::to_string),
        found: found.map(ToString::to_string),
    };
    for (name, want) in expected {
        match found.get(name) {
            None => out.push(drift(name, Change::Missing, Some(want), None)),
            Some(have) if have != want => {
                out.push(drift(name, Change::Different, Some(want), Some(have)))
            }
            Some(_) => {}
        }
    }
    for (name, have) in found {
        if !expected.contains_key(name) {
            out.push(drift(name, Change::Extra, None, Some(have)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::shape::{Column, Index};

    /// A table: its name, columns (name, type, nullable) and indexes (name, columns).
    type Table<'a> = (
        &'a str,
        &'a [(&'a str, &'a str, bool)],
        &'a [(&'a str, &'a [&'a str])],
    );

    fn shape(tables: &[Table<'_>]) -> Shape {
        let mut shape = Shape::with_tables(tables.iter().map(|(t, _, _)| (*t).to_owned()));
        for (table, columns, indexes) in tables {
            for (name, data_type, nullable) in *columns {
                let column = Column {
                    data_type: (*data_type).to_owned(),
                    nullable: *nullable,
                };
                shape.add_column(table, (*name).to_owned(), column);
            }
            for (name, columns) in *indexes {
                for column in *columns {
                    shape.add_index_column(table, (*name).to_owned(), false, (*column).to_owned());
                }
            }
        }
        shape
    }

    fn check(reference: &Shape, found: &Shape, expected: &[&str]) {
        let got: Vec<String> = compare(reference, found)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_same_shape_has_no_drift() {
        let a = shape(&[("t", &[("id", "bigint", false)], &[("t_id", &["id"])])]);
        check(&a, &a.clone(), &[]);
    }

    #[test]
    fn each_difference_is_named_once() {
        let reference = shape(&[
            (
                "campaigns",
                &[("id", "bigint", false), ("name", "text", true)],
                &[("campaigns_name", &["name"])],
            ),
            ("gone", &[("id", "bigint", false)], &[]),
        ]);
        let found = shape(&[
            (
                "campaigns",
                &[
                    ("id", "bigint", true),
                    ("name", "text", true),
                    ("budget", "bigint", false),
                ],
                &[],
            ),
            ("tags", &[("id", "bigint", false)], &[]),
        ]);
        check(
            &reference,
            &found,
            &[
                "column campaigns.id: different (expected bigint NOT NULL, found bigint NULL)",
                "column campaigns.budget: extra (bigint NOT NULL)",
                "index campaigns_name on campaigns: missing (expected (name))",
                "table gone: missing",
                "table tags: extra",
            ],
        );
        let index = Index {
            columns: vec!["name".into()],
            unique: true,
        };
        assert_eq!(index.to_string(), "UNIQUE (name)");
    }
}
