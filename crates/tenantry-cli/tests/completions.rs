//! `tenantry completions <SHELL>`: a script for each shell, with no catalog or configuration,
//! and a reader that goes away ends it quietly, as for every command.

mod common;

use std::process::Stdio;

use common::{bare, stderr, stdout};

#[test]
fn every_shell_gets_a_script_naming_tenantry_without_catalog_or_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = bare(tmp.path())
            // A named configuration file that does not exist would fail any other command.
            .env("TENANTRY_CONFIG", tmp.path().join("missing.toml"))
            .args(["completions", shell])
            .output()
            .expect("run tenantry");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains("tenantry"), "{shell}: {script}");
        assert!(
            script.contains("migrate"),
            "{shell}: subcommands are completed"
        );
    }
    let bash = bare(tmp.path())
        .args(["completions", "bash"])
        .output()
        .expect("run tenantry");
    assert!(
        stdout(&bash).contains("complete -F _tenantry"),
        "{}",
        stdout(&bash)
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("read dir").count(),
        0,
        "nothing is created"
    );
}

#[test]
fn an_unknown_shell_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = bare(tmp.path())
        .args(["completions", "cmd.exe"])
        .output()
        .expect("run tenantry");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
}

/// A reader gone before the command writes (`tenantry completions bash | head -0`): the read
/// end is closed before the process starts, so every write meets a closed pipe.
#[test]
fn a_closed_pipe_ends_the_command_quietly_and_successfully() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["migrate", "add", "quiet"],
        &["migrate", "add", "quiet json", "--json"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = bare(tmp.path())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run tenantry");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "tenantry {args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "tenantry {args:?}: {err}");
        assert_eq!(err, "", "tenantry {args:?} says nothing about the pipe");
    }
    // The migrations were made before their paths met the closed pipe.
    let dir = tmp.path().join("migrations/tenant");
    assert_eq!(tenantry::MigrationSet::load(&dir).expect("load").len(), 2);
}
