//! Loading a tenant migration directory in sqlx-cli's file format:
//! `<VERSION>_<DESCRIPTION>.sql`, or `<VERSION>_<DESCRIPTION>.up.sql` / `.down.sql` pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

use crate::error::{Error, Result};

/// One forward migration.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub description: String,
    pub path: PathBuf,
    pub sql: String,
    /// SHA-384 of the SQL text, as sqlx computes it.
    pub checksum: Vec<u8>,
    /// The file starts with `-- no-transaction`: run it outside a transaction.
    pub no_transaction: bool,
}

/// A directory of migrations, sorted by version, with at most one forward file per version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    migrations: Vec<Migration>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Simple,
    Up,
    Down,
}

impl MigrationSet {
    /// Reads every `.sql` file of `dir`. Other files are ignored; an `.sql` file whose name
    /// does not parse, two files for one version, or a file that is not UTF-8 is an error.
    pub fn load(dir: &Path) -> Result<MigrationSet> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        if !dir.is_dir() {
            return Err(Error::MigrationsDirMissing {
                path: dir.to_owned(),
            });
        }
        let mut forward: BTreeMap<i64, Migration> = BTreeMap::new();
        let mut down: BTreeMap<i64, PathBuf> = BTreeMap::new();
        let mut entries = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io)?;
        entries.sort();
        for path in entries {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".sql") || !path.is_file() {
                continue;
            }
            let (version, description, kind) = parse_name(&path, name)?;
            if kind == Kind::Down {
                if let Some(first) = down.insert(version, path.clone()) {
                    return Err(Error::DuplicateVersion {
                        version,
                        first,
                        second: path,
                    });
                }
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let sql =
                String::from_utf8(bytes).map_err(|_| Error::NotUtf8 { path: path.clone() })?;
            if let Some(first) = forward.get(&version) {
                return Err(Error::DuplicateVersion {
                    version,
                    first: first.path.clone(),
                    second: path,
                });
            }
            let checksum = Sha384::digest(sql.as_bytes()).to_vec();
            let no_transaction = sql.trim_start().starts_with("-- no-transaction");
            forward.insert(
                version,
                Migration {
                    version,
                    description,
                    path,
                    sql,
                    checksum,
                    no_transaction,
                },
            );
        }
        Ok(MigrationSet {
            dir: dir.to_owned(),
            migrations: forward.into_values().collect(),
        })
    }

    /// Migrations in version order.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.migrations.iter()
    }

    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The highest version in the set (0 when empty).
    pub fn latest(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// How many migrations are newer than `version`.
    pub fn pending_after(&self, version: i64) -> usize {
        self.migrations
            .iter()
            .filter(|m| m.version > version)
            .count()
    }
}

fn parse_name(path: &Path, name: &str) -> Result<(i64, String, Kind)> {
    let bad = |reason| Error::BadMigrationName {
        path: path.to_owned(),
        reason,
    };
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".up.sql") {
        (stem, Kind::Up)
    } else if let Some(stem) = name.strip_suffix(".down.sql") {
        (stem, Kind::Down)
    } else if let Some(stem) = name.strip_suffix(".sql") {
        (stem, Kind::Simple)
    } else {
        return Err(bad("it must end in .sql"));
    };
    let (version, description) = stem
        .split_once('_')
        .ok_or_else(|| bad("there is no '_' between the version and the description"))?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the version must be digits"));
    }
    let version: i64 = version
        .parse()
        .map_err(|_| bad("the version does not fit in 64 bits"))?;
    if version <= 0 {
        return Err(bad("the version must be positive"));
    }
    Ok((version, description.replace('_', " "), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        dir
    }

    #[test]
    fn loads_simple_and_reversible_files_in_order() {
        let dir = dir_with(&[
            ("20240102_add_users.up.sql", b"CREATE TABLE users (id INT);"),
            ("20240102_add_users.down.sql", b"DROP TABLE users;"),
            ("20240101_init.sql", b"CREATE TABLE a (id INT);"),
            ("README.md", b"not a migration"),
        ]);
        let set = MigrationSet::load(dir.path()).expect("load");
        let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![20240101, 20240102]);
        assert_eq!(
            set.get(20240102).map(|m| m.description.as_str()),
            Some("add users")
        );
        assert_eq!(set.pending_after(20240101), 1);
    }

    #[test]
    fn refuses_bad_directories() {
        let missing = MigrationSet::load(Path::new("/nonexistent/tenantry/migrations"));
        assert!(matches!(missing, Err(Error::MigrationsDirMissing { .. })));

        let dup = dir_with(&[("1_a.sql", b"SELECT 1;"), ("1_b.sql", b"SELECT 2;")]);
        let err = MigrationSet::load(dup.path()).expect_err("duplicate");
        assert!(
            matches!(err, Error::DuplicateVersion { version: 1, .. }),
            "{err}"
        );

        let bin = dir_with(&[("1_a.sql", &[0xff, 0xfe, 0x00])]);
        let err = MigrationSet::load(bin.path()).expect_err("not utf-8");
        assert!(err.to_string().contains("1_a.sql"), "{err}");

        let name = dir_with(&[("v1_a.sql", b"SELECT 1;")]);
        assert!(matches!(
            MigrationSet::load(name.path()),
            Err(Error::BadMigrationName { .. })
        ));
    }
}
