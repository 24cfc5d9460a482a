//! The `tenantry` command-line tool: a thin layer over the `tenantry` library that parses
//! arguments, renders output and turns errors into messages and exit codes.

#[macro_use]
mod output;
mod bench;
mod cli;
mod commands;
mod demo;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    tenantry::audit::set_process_actor(&tenantry::audit::os_user_actor());
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<output::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {}", output::error_text(&e));
            ExitCode::FAILURE
        }
    }
}
