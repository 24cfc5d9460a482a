//! Loading a tenant migration directory in sqlx-cli's file format:
//! `<VERSION>_<DESCRIPTION>.sql`, or `<VERSION>_<DESCRIPTION>.up.sql` / `.down.sql` pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

use crate::error::{Error, Result};

/// One forward migration, with the script that reverses it if there is one.
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
    /// Its `<VERSION>_<DESCRIPTION>.down.sql`, if the directory has one.
    pub down: Option<DownScript>,
}

/// The script that reverses one migration: `<VERSION>_<DESCRIPTION>.down.sql` beside its
/// `.up.sql` (or plain `.sql`) file. It has no checksum in the ledger: the ledger records what
/// was applied, and a reverted version leaves it.
#[derive(Debug, Clone)]
pub struct DownScript {
    pub path: PathBuf,
    pub sql: String,
    /// The file starts with `-- no-transaction`: run it outside a transaction.
    pub no_transaction: bool,
}

impl Migration {
    /// Where its down script is, or would be: `<VERSION>_<DESCRIPTION>.down.sql` beside it.
    pub fn down_path(&self) -> PathBuf {
        match &self.down {
            Some(down) => down.path.clone(),
            None => down_path_beside(&self.path),
        }
    }
}

/// `<stem>.down.sql` for a forward file `<stem>.up.sql` or `<stem>.sql`.
fn down_path_beside(forward: &Path) -> PathBuf {
    let name = forward
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".up.sql")
        .or_else(|| name.strip_suffix(".sql"))
        .unwrap_or(name);
    forward.with_file_name(format!("{stem}.down.sql"))
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
    /// does not parse, two files for one version, a file that is not UTF-8, or a `.down.sql`
    /// file without the forward file of the same name (`.up.sql` or `.sql`) is an error.
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
        let mut down: BTreeMap<i64, DownScript> = BTreeMap::new();
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
            let sql = read_sql(&path)?;
            let no_transaction = sql.trim_start().starts_with("-- no-transaction");
            if kind == Kind::Down {
                if let Some(first) = down.get(&version) {
                    return Err(Error::DuplicateVersion {
                        version,
                        first: first.path.clone(),
                        second: path,
                    });
                }
                down.insert(
                    version,
                    DownScript {
                        path,
                        sql,
                        no_transaction,
                    },
                );
                continue;
            }
            if let Some(first) = forward.get(&version) {
                return Err(Error::DuplicateVersion {
                    version,
                    first: first.path.clone(),
                    second: path,
                });
            }
            let checksum = Sha384::digest(sql.as_bytes()).to_vec();
            forward.insert(
                version,
                Migration {
                    version,
                    description,
                    path,
                    sql,
                    checksum,
                    no_transaction,
                    down: None,
                },
            );
        }
        // Each down file goes with the forward file of its own name; one without is a typo
        // or a leftover, and reverting by it could undo something else.
        for (version, script) in down {
            let paired = forward
                .get_mut(&version)
                .filter(|m| down_path_beside(&m.path) == script.path);
            match paired {
                Some(migration) => migration.down = Some(script),
                None => {
                    return Err(Error::DownWithoutUp {
                        path: script.path,
                        forward: forward.get(&version).map(|m| m.path.clone()),
                    });
                }
            }
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

    /// The same set without the migrations after `version`.
    pub fn up_to(&self, version: i64) -> MigrationSet {
        MigrationSet {
            dir: self.dir.clone(),
            migrations: self
                .migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        }
    }

    /// The highest version in the set (0 when empty).
    pub fn latest(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// The digest a ledger holding exactly this set has (`ledger::digest`).
    pub fn digest(&self) -> String {
        let checksums: Vec<(i64, String)> = self
            .iter()
            .map(|m| (m.version, hex::encode(&m.checksum)))
            .collect();
        super::ledger::digest_of(checksums.iter().map(|(v, c)| (*v, c.as_str())))
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

/// A migration file's text; it must be UTF-8.
fn read_sql(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        path: path.to_owned(),
    })
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

        let reversible = set.get(20240102).expect("20240102");
        let down = reversible.down.as_ref().expect("its down script is kept");
        assert_eq!(down.path, dir.path().join("20240102_add_users.down.sql"));
        assert_eq!(down.sql, "DROP TABLE users;");
        assert_eq!(reversible.down_path(), down.path);
        // The checksum is the up file's alone.
        assert_eq!(
            reversible.checksum,
            Sha384::digest(b"CREATE TABLE users (id INT);").to_vec()
        );
        let simple = set.get(20240101).expect("20240101");
        assert!(simple.down.is_none());
        assert_eq!(
            simple.down_path(),
            dir.path().join("20240101_init.down.sql")
        );
    }

    #[test]
    fn a_down_file_goes_with_the_forward_file_of_its_name() {
        let beside_simple = dir_with(&[
            ("1_init.sql", b"CREATE TABLE a (id INT);"),
            ("1_init.down.sql", b"DROP TABLE a;"),
        ]);
        let set = MigrationSet::load(beside_simple.path()).expect("load");
        assert!(set.get(1).and_then(|m| m.down.as_ref()).is_some());

        let alone = dir_with(&[
            ("1_init.sql", b"CREATE TABLE a (id INT);"),
            ("2_users.down.sql", b"DROP TABLE users;"),
        ]);
        let err = MigrationSet::load(alone.path()).expect_err("a down file alone");
        assert!(
            matches!(&err, Error::DownWithoutUp { path, forward: None } if path.ends_with("2_users.down.sql")),
            "{err}"
        );
        assert!(err.to_string().contains("2_users.up.sql"), "{err}");

        let misnamed = dir_with(&[
            ("2_add_users.up.sql", b"CREATE TABLE users (id INT);"),
            ("2_add_user.down.sql", b"DROP TABLE users;"),
        ]);
        let err = MigrationSet::load(misnamed.path()).expect_err("another name");
        assert!(
            matches!(&err, Error::DownWithoutUp { path, forward: Some(f) }
                if path.ends_with("2_add_user.down.sql") && f.ends_with("2_add_users.up.sql")),
            "{err}"
        );

        let twice = dir_with(&[
            ("2_a.up.sql", b"SELECT 1;"),
            ("2_a.down.sql", b"SELECT 1;"),
            ("02_a.down.sql", b"SELECT 2;"),
        ]);
        let err = MigrationSet::load(twice.path()).expect_err("two down files");
        assert!(
            matches!(err, Error::DuplicateVersion { version: 2, .. }),
            "{err}"
        );

        let binary = dir_with(&[("1_a.up.sql", b"SELECT 1;"), ("1_a.down.sql", &[0xff])]);
        let err = MigrationSet::load(binary.path()).expect_err("not utf-8");
        assert!(
            matches!(&err, Error::NotUtf8 { path } if path.ends_with("1_a.down.sql")),
            "{err}"
        );
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
