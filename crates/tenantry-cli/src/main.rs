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
    let cli = cli::Cli::parse();
    init_tracing(matches!(cli.command, cli::Command::Serve { .. }));
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

/// Logs go to stderr, filtered by `TENANTRY_LOG`. `tenantry serve` writes JSON lines (one per
/// request, with its route, status, latency and `tenant_id`) and logs requests by default;
/// `TENANTRY_LOG_FORMAT=json|text` chooses for any command.
fn init_tracing(serving: bool) {
    let default = match serving {
        true => "warn,tenantry_server=info,sqlx::query=error",
        false => "warn,sqlx::query=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = match std::env::var("TENANTRY_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => serving,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

/// Standard error, for logs: a reader that went away (a closed pipe) loses the lines that
/// follow, and nothing else happens — a failed write would otherwise be reported on that
/// same stream, and that report would panic.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
