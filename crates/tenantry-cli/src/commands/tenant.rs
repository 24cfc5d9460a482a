use std::process::ExitCode;

use serde::Serialize;
use tenantry::{Event, ImportTenant, NewTenant, RenameTenant, Status, Strategy, Tenant, Tenantry};

use crate::cli::TenantCommand;
use crate::output;

pub async fn run(tenantry: &Tenantry, cmd: TenantCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            server,
            strategy,
            region,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            let server = match region {
                Some(region) => {
                    let wanted = strategy.unwrap_or(tenantry.config().default_strategy);
                    Some(tenantry.choose_server(wanted, Some(&region)).await?)
                }
                None => server,
            };
            let tenant = tenantry
                .create_tenant(NewTenant {
                    slug,
                    name,
                    server,
                    strategy,
                })
                .await?;
            if json {
                output::json(&tenant)?;
            } else {
                outln!("{}", output::tenant(&tenant))?;
                outln!(
                    "tenant {} is active at version {}, every migration verified",
                    tenant.slug,
                    tenant.version
                )?;
            }
        }
        TenantCommand::Backup { slug, native, json } => {
            super::backup::backup(tenantry, &slug, native, json).await?;
        }
        TenantCommand::Backups { slug, json } => {
            super::backup::list(tenantry, &slug, json).await?;
        }
        TenantCommand::Restore {
            slug,
            from,
            as_slug,
            json,
        } => {
            super::backup::restore(tenantry, &slug, &from, as_slug.as_deref(), json).await?;
        }
        TenantCommand::Move {
            slug,
            to_server,
            strategy,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            super::moves::move_tenant(tenantry, &slug, to_server, strategy, json).await?;
        }
        TenantCommand::Adopt {
            slug,
            server,
            database,
            schema,
            baseline,
            name,
            json,
        } => {
            let (storage, strategy) = match (database, schema) {
                (_, Some(schema)) => (schema, Strategy::Schema),
                (Some(database), None) => (database, Strategy::Database),
                (None, None) => anyhow::bail!("name the --database or --schema to adopt"),
            };
            let req = tenantry::AdoptTenant {
                slug,
                name,
                server,
                storage,
                strategy,
                baseline,
            };
            super::adopt::adopt(tenantry, req, json).await?;
        }
        TenantCommand::Split {
            from,
            column,
            slug_prefix,
            to_server,
            strategy,
            baseline,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            let Some((server, database)) = from.split_once('/') else {
                anyhow::bail!("--from takes <server>/<database>, not {from:?}");
            };
            let req = tenantry::SplitDatabase {
                server: server.to_owned(),
                database: database.to_owned(),
                column,
                slug_prefix,
                to_server,
                strategy,
                baseline,
            };
            super::adopt::split(tenantry, req, json).await?;
        }
        TenantCommand::Export { slug, to, json } => {
            super::archive::export(tenantry, &slug, &to, json).await?;
        }
        TenantCommand::Import {
            file,
            slug,
            name,
            server,
            strategy,
            json,
        } => {
            let strategy = strategy.map(|s| s.parse::<Strategy>()).transpose()?;
            let req = ImportTenant {
                slug,
                name,
                server,
                strategy,
            };
            super::archive::import(tenantry, &file, req, json).await?;
        }
        TenantCommand::List { json } => {
            let mut tenants = tenantry.catalog().tenants().await?;
            // Spares are not tenants yet: `tenantry spares list` counts them.
            tenants.retain(|t| t.status != Status::Spare);
            if json {
                output::json(&tenants)?;
            } else if tenants.is_empty() {
                outln!("no tenants yet; create one with `tenantry tenant create <slug>`")?;
            } else {
                outln!("{}", output::tenants(&tenants))?;
            }
        }
        TenantCommand::Show { slug, json } => {
            let tenant = tenantry.catalog().tenant(&slug).await?;
            let events = tenantry.catalog().events(Some(&tenant), 10).await?;
            if json {
                #[derive(Serialize)]
                struct Shown<'a> {
                    #[serde(flatten)]
                    tenant: &'a Tenant,
                    events: &'a [Event],
                }
                output::json(&Shown {
                    tenant: &tenant,
                    events: &events,
                })?;
            } else {
                outln!("{}", output::tenant(&tenant))?;
                if !events.is_empty() {
                    outln!("recent events:\n{}", output::events(&events))?;
                }
            }
        }
        TenantCommand::Rename {
            slug,
            new_slug,
            name,
            json,
        } => {
            if new_slug.is_none() && name.is_none() {
                anyhow::bail!("say what to change: --to <new-slug>, --name <text>, or both");
            }
            let t = tenantry
                .rename_tenant(
                    &slug,
                    RenameTenant {
                        slug: new_slug,
                        name,
                    },
                )
                .await?;
            if json {
                output::json(&t)?;
            } else {
                outln!(
                    "tenant {} is now {} ({})",
                    slug,
                    t.slug,
                    output::escaped(&t.name)
                )?;
            }
        }
        TenantCommand::Suspend { slug } => {
            let t = tenantry.suspend_tenant(&slug).await?;
            outln!("tenant {} is {}", t.slug, t.status)?;
        }
        TenantCommand::Resume { slug } => {
            let t = tenantry.resume_tenant(&slug).await?;
            outln!("tenant {} is {}", t.slug, t.status)?;
        }
        TenantCommand::Delete {
            slug,
            purge: true,
            with_backups: true,
        } => {
            tenantry.purge_tenant_with_backups(&slug).await?;
            outln!(
                "tenant {slug} is deleted, its record purged and its backups removed. Checked: \
                 nothing of it is left on its server, in the catalog or in this process"
            )?;
        }
        TenantCommand::Delete { slug, purge, .. } => {
            match tenantry.delete_tenant(&slug, purge).await? {
                Some(t) => outln!(
                    "tenant {} is deleted: storage {} dropped; the record stays (use --purge to remove it)",
                    t.slug,
                    t.storage
                )?,
                None => outln!(
                    "tenant {slug} is deleted and its record purged; the slug is free. Checked: \
                     nothing of it is left on its server, in the catalog or in this process"
                )?,
            }
        }
        TenantCommand::Repair { slug } => {
            let t = tenantry.repair_tenant(&slug).await?;
            outln!("tenant {} is {} at version {}", t.slug, t.status, t.version)?;
        }
        TenantCommand::Label { slug, labels } => {
            let now = tenantry.label_tenant(&slug, &labels).await?;
            outln!("{slug}: {}", output::escaped(&now.join(" ")))?;
        }
        TenantCommand::Unlabel { slug, labels } => {
            let now = tenantry.unlabel_tenant(&slug, &labels).await?;
            outln!("{slug}: {}", output::escaped(&now.join(" ")))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
