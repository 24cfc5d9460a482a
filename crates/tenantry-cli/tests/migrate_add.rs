//! `tenantry migrate add`: new migrations in sqlx-cli's format that the loader reads, numbered
//! after the newest, made from the configuration alone (no catalog), never replacing a file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{bare, stderr, stdout};
use tenantry::MigrationSet;

fn add(dir: &Path, args: &[&str]) -> Output {
    bare(dir)
        .args(["migrate", "add"])
        .args(args)
        .output()
        .expect("run tenantry")
}

/// Runs `migrate add <args>` in `dir`, expects success, returns the paths printed.
fn added(dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    let out = add(dir, args);
    assert!(
        out.status.success(),
        "migrate add {args:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out).lines().map(|l| dir.join(l)).collect()
}

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn version_of(path: &Path) -> i64 {
    let name = path.file_name().expect("file name").to_string_lossy();
    let (version, _) = name.split_once('_').expect("<VERSION>_<description>");
    version.parse().expect("a number")
}

#[test]
fn a_simple_migration_is_one_timestamped_file_the_loader_reads_and_needs_no_catalog() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = added(tmp.path(), &["Add users table"]);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let dir = tmp.path().join("migrations/tenant");
    assert_eq!(file.parent(), Some(dir.as_path()), "the default directory");
    let version = version_of(file);
    assert_eq!(version.to_string().len(), 14, "YYYYMMDDHHMMSS: {version}");
    assert!(version > 20250101000000, "the current time: {version}");
    assert_eq!(names(&dir), [format!("{version}_add_users_table.sql")]);

    let set = MigrationSet::load(&dir).expect("the new file loads");
    assert_eq!(set.len(), 1);
    let m = set.get(version).expect("its version");
    assert_eq!(m.description, "add users table");
    assert!(
        m.sql.starts_with("--"),
        "a comment to start from: {:?}",
        m.sql
    );
    assert!(
        !tmp.path().join("tenantry-data").exists(),
        "no catalog or data directory is created"
    );
}

#[test]
fn the_configured_directory_is_used_and_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("tenantry.toml"),
        "migrations = \"db/tenant\"\n",
    )
    .expect("write tenantry.toml");
    let files = added(tmp.path(), &["first"]);
    assert_eq!(
        files[0].parent(),
        Some(tmp.path().join("db/tenant").as_path())
    );

    let files = added(tmp.path(), &["--migrations", "elsewhere", "second"]);
    assert_eq!(
        files[0].parent(),
        Some(tmp.path().join("elsewhere").as_path()),
        "the flag wins over the file"
    );
}

#[test]
fn a_reversible_migration_is_an_up_and_down_pair_and_the_next_one_follows_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("migrations/tenant");
    let out = add(tmp.path(), &["AddDocuments", "--reversible", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let version = json["version"].as_i64().expect("a version");
    let files: Vec<&str> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a path"))
        .collect();
    assert_eq!(
        files,
        [
            format!("migrations/tenant/{version}_add_documents.up.sql"),
            format!("migrations/tenant/{version}_add_documents.down.sql"),
        ]
    );
    for file in &files {
        assert!(tmp.path().join(file).is_file(), "{file}");
    }
    let set = MigrationSet::load(&dir).expect("the pair loads");
    assert_eq!(set.len(), 1, "one migration, its down file beside it");
    assert_eq!(
        set.get(version).map(|m| m.description.as_str()),
        Some("add documents")
    );

    // As in sqlx-cli, the newest migration decides when no flag does; --simple overrides.
    let inferred = added(tmp.path(), &["add index"]);
    assert_eq!(inferred.len(), 2, "a pair after a pair: {inferred:?}");
    let simple = added(tmp.path(), &["--simple", "backfill"]);
    assert_eq!(simple.len(), 1, "{simple:?}");
    assert!(simple[0].to_string_lossy().ends_with("_backfill.sql"));
    let after_simple = added(tmp.path(), &["tidy"]);
    assert_eq!(
        after_simple.len(),
        1,
        "a single file after one: {after_simple:?}"
    );
    assert_eq!(MigrationSet::load(&dir).expect("all load").len(), 4);
}

#[test]
fn quick_calls_and_newer_existing_versions_give_increasing_versions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = version_of(&added(tmp.path(), &["one"])[0]);
    let second = version_of(&added(tmp.path(), &["two"])[0]);
    assert!(second > first, "{second} after {first}");

    // A migration from the future (a clock ahead somewhere): the next one still sorts last.
    let dir = tmp.path().join("migrations/tenant");
    std::fs::write(dir.join("29991231235959_future.sql"), "SELECT 1;").expect("write");
    let next = version_of(&added(tmp.path(), &["three"])[0]);
    assert_eq!(next, 29991231235960);
    let set = MigrationSet::load(&dir).expect("load");
    let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
    assert_eq!(versions, [first, second, 29991231235959, 29991231235960]);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for description in ["", " -- ", "日本語", "!?"] {
        let out = add(tmp.path(), &[description]);
        assert!(!out.status.success(), "{description:?} accepted");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains("no ASCII letter or digit"),
            "{description:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !tmp.path().join("migrations").exists(),
        "no directory is created for a refused description"
    );

    // A directory the runner would refuse gets no new file.
    let dir = tmp.path().join("migrations/tenant");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("v1_bad.sql"), "SELECT 1;").expect("write");
    let out = add(tmp.path(), &["ok"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("v1_bad.sql"), "{}", stderr(&out));
    assert_eq!(names(&dir), ["v1_bad.sql"]);
}

#[test]
fn an_existing_file_is_never_replaced_and_nothing_is_left_half_made() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("migrations/tenant");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("29990101000000_base.sql"), "SELECT 1;").expect("write");
    // Something in the place of the down file the next migration will take (a lone down
    // file would be refused by the loader first): a directory, which the loader ignores.
    let taken = dir.join("29990101000001_undo.down.sql");
    std::fs::create_dir(&taken).expect("mkdir");
    std::fs::write(taken.join("keep"), "keep me").expect("write");

    let out = add(tmp.path(), &["undo", "--reversible"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("29990101000001_undo.down.sql"), "{err}");
    assert_eq!(
        names(&dir),
        ["29990101000000_base.sql", "29990101000001_undo.down.sql"],
        "the up file made before the clash is removed"
    );
    assert_eq!(
        std::fs::read_to_string(taken.join("keep")).expect("read"),
        "keep me"
    );
}

#[test]
fn a_down_file_without_its_up_file_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("migrations/tenant");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("29990101000000_base.sql"), "SELECT 1;").expect("write");
    std::fs::write(dir.join("29990101000001_undo.down.sql"), "keep me").expect("write");

    let out = add(tmp.path(), &["next"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("down migration") && err.contains("29990101000001_undo.down.sql"),
        "{err}"
    );
    assert!(err.contains("29990101000001_undo.up.sql"), "{err}");
    assert_eq!(
        names(&dir),
        ["29990101000000_base.sql", "29990101000001_undo.down.sql"]
    );
}
