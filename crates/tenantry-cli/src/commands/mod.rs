//! One function per command; each returns the process exit code.

mod adopt;
mod apikey;
mod archive;
mod audit;
mod backup;
mod completions;
mod identity;
mod key;
mod migrate;
mod migrate_add;
mod migrate_status;
mod moves;
mod resolve;
mod rollout;
mod serve;
mod server;
mod spares;
mod sql;
mod tenant;
mod token;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tenantry::config::CONFIG_FILE;
use tenantry::{Config, KeySetup, Settings, Tenantry};

use crate::cli::{BenchCommand, Cli, Command, Global, MigrateArgs, MigrateCommand};
use crate::{bench, demo, output};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo { server } => return demo::run(server).await,
        Command::Bench(args) => {
            let concurrency = cli.global.concurrency.unwrap_or(4);
            match args.command {
                Some(BenchCommand::Route(route)) => return bench::route::run(route).await,
                Some(BenchCommand::Rollout(rollout)) => {
                    return bench::rollout::run(rollout, concurrency).await;
                }
                Some(BenchCommand::Create(create)) => return bench::create::run(create).await,
                Some(BenchCommand::Archive(archive)) => {
                    return bench::archive::run(archive).await;
                }
                Some(BenchCommand::Move(moving)) => return bench::moving::run(moving).await,
                None => {}
            }
            let strategy: tenantry::Strategy = args.strategy.parse()?;
            return bench::run(args.tenants, args.server, strategy, concurrency, args.json).await;
        }
        Command::Completions { shell } => return completions::run(shell),
        Command::Migrate(MigrateArgs {
            command: Some(MigrateCommand::Add(args)),
            ..
        }) => return migrate_add::run(&config(&cli.global)?, args),
        _ => {}
    }
    let config = config(&cli.global)?;
    // Only `init` creates a catalog: elsewhere a missing one is a mistyped path.
    let opened = match cli.command {
        Command::Init => Tenantry::open_or_create(config).await,
        _ => Tenantry::open(config).await,
    };
    let tenantry = opened.context("open the catalog")?;
    let code = match cli.command {
        Command::Init => init(&tenantry).await?,
        Command::Tenant(cmd) => tenant::run(&tenantry, cmd).await?,
        Command::Server(cmd) => server::run(&tenantry, cmd).await?,
        Command::Spares(cmd) => spares::run(&tenantry, cmd).await?,
        Command::Domain(cmd) => identity::domain(&tenantry, cmd).await?,
        Command::User(cmd) => identity::user(&tenantry, cmd).await?,
        Command::Member(cmd) => identity::member(&tenantry, cmd).await?,
        Command::Resolve(args) => resolve::run(&tenantry, args).await?,
        Command::Token(cmd) => token::run(&tenantry, cmd).await?,
        Command::Migrate(args) => migrate::run(&tenantry, args).await?,
        Command::Run(args) => rollout::sql(&tenantry, args).await?,
        Command::Serve { listen } => serve::run(&tenantry, &listen).await?,
        Command::Apikey(cmd) => apikey::run(&tenantry, cmd).await?,
        Command::Audit(cmd) => audit::run(&tenantry, cmd).await?,
        Command::Secret(cmd) => key::secret(&tenantry, cmd).await?,
        Command::Key(cmd) => key::key(&tenantry, cmd).await?,
        Command::Events(args) => {
            let tenant = match &args.tenant {
                Some(slug) => Some(tenantry.catalog().tenant(slug).await?),
                None => None,
            };
            let events = tenantry
                .catalog()
                .events(tenant.as_ref(), args.limit)
                .await?;
            if args.json {
                output::json(&events)?;
            } else {
                outln!("{}", output::events(&events))?;
            }
            ExitCode::SUCCESS
        }
        Command::Sql {
            slug,
            sql,
            json,
            admin: false,
        } => sql::run(&tenantry, &slug, &sql, json).await?,
        Command::Sql {
            slug,
            sql,
            json,
            admin: true,
        } => sql::run_admin(&tenantry, &slug, &sql, json).await?,
        Command::Demo { .. } | Command::Bench(_) | Command::Completions { .. } => {
            unreachable!("handled above")
        }
    };
    tenantry.catalog().close().await;
    Ok(code)
}

/// Command line and environment over `tenantry.toml` over defaults.
fn config(global: &Global) -> anyhow::Result<Config> {
    let cli = Settings {
        data_dir: global.data_dir.clone(),
        catalog: global.catalog.clone(),
        migrations: global.migrations.clone(),
        backup_dir: global.backup_dir.clone(),
        concurrency: global.concurrency,
        lock_wait_secs: global.lock_wait,
        connect_timeout_secs: global.connect_timeout,
        statement_timeout_secs: global.statement_timeout,
        ..Settings::default()
    };
    let file = match &global.config {
        Some(path) => Settings::from_file(path)
            .context("read the configuration file named by --config / TENANTRY_CONFIG")?,
        None => Settings::from_file_if_present(Path::new(CONFIG_FILE))?.unwrap_or_default(),
    };
    Ok(cli.over(file).try_resolve()?)
}

async fn init(tenantry: &Tenantry) -> anyhow::Result<ExitCode> {
    let config = tenantry.config();
    match tenantry.init_master_key().await? {
        KeySetup::Generated(path) => outln!(
            "master key: generated {} (mode 0600); it encrypts tenant credentials: back it up, \
             or set {} instead",
            path.display(),
            tenantry::crypto::MASTER_KEY_ENV
        )?,
        KeySetup::Loaded(source) => outln!("master key: {source} (loaded)")?,
    }
    outln!(
        "catalog ready: {} ({})",
        tenantry::engine::redact_url(&config.catalog_url()),
        tenantry.catalog().engine()
    )?;
    outln!(
        "data directory: {} (the `local` server keeps tenant files in its tenants/ folder)",
        config.data_dir.display()
    )?;
    if config.migrations_dir.is_dir() {
        let set = tenantry.migrations()?;
        outln!(
            "tenant migrations: {} ({} file(s), latest version {})",
            config.migrations_dir.display(),
            set.len(),
            set.latest()
        )?;
    } else {
        std::fs::create_dir_all(&config.migrations_dir).with_context(|| {
            format!(
                "create the migrations directory {}",
                config.migrations_dir.display()
            )
        })?;
        outln!(
            "tenant migrations: created empty {}; add one with `tenantry migrate add <description>`",
            config.migrations_dir.display()
        )?;
    }
    outln!("next: tenantry tenant create <slug>")?;
    Ok(ExitCode::SUCCESS)
}
