//! `tenantry completions <SHELL>`: a completion script generated from the clap definitions.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::output;

/// Prints the script for `shell`. It is generated into memory first: clap_complete panics
/// when its writer fails, and a reader that closed the pipe must end the command quietly.
pub fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    output::raw(&script)?;
    Ok(ExitCode::SUCCESS)
}
