//! `tenantry domain|user|member`: who reaches which tenant.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::Table;
use tenantry::Tenantry;
use tenantry::catalog::{Domain, Membership, User};
use tenantry::identity::NewUser;

use crate::cli::{DomainCommand, MemberCommand, UserCommand};
use crate::output::{self, add_row, table};

pub async fn domain(tenantry: &Tenantry, cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DomainCommand::Add {
            slug,
            host,
            primary,
            json,
        } => {
            let domain = tenantry.add_domain(&slug, &host, primary).await?;
            if json {
                output::json(&domain)?;
            } else {
                let primary = if domain.primary { " (primary)" } else { "" };
                outln!("{} routes to tenant {slug}{primary}", domain.host)?;
            }
        }
        DomainCommand::Remove { host } => {
            let removed = tenantry.remove_domain(&host).await?;
            outln!("{} no longer routes to a tenant", removed.host)?;
        }
        DomainCommand::List { tenant, json } => {
            let domains = tenantry.domains(tenant.as_deref()).await?;
            let slugs = slugs(tenantry).await?;
            if json {
                let rows: Vec<serde_json::Value> = domains
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "host": d.host,
                            "tenant": slugs.get(&d.tenant_id),
                            "tenant_id": d.tenant_id,
                            "primary": d.primary,
                            "created_at": d.created_at,
                        })
                    })
                    .collect();
                output::json(&rows)?;
            } else {
                outln!("{}", domains_table(&domains, &slugs))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn user(tenantry: &Tenantry, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            email,
            name,
            password_stdin,
            json,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("read the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let user = tenantry
                .add_user(NewUser {
                    display_name: name.unwrap_or_else(|| email.clone()),
                    email,
                    password,
                })
                .await?;
            if json {
                output::json(&user)?;
            } else {
                outln!("user {} added: {}", user.email, user.id)?;
            }
        }
        UserCommand::List { json } => {
            let users = tenantry.catalog().users().await?;
            if json {
                output::json(&users)?;
            } else {
                outln!("{}", users_table(&users))?;
            }
        }
        UserCommand::Show { user, json } => {
            let user = tenantry.user(&user).await?;
            let members = tenantry.members(None, Some(&user.id)).await?;
            if json {
                output::json(&serde_json::json!({ "user": user, "memberships": members }))?;
            } else {
                outln!("{}", users_table(std::slice::from_ref(&user)))?;
                outln!("{}", members_table(&members))?;
            }
        }
        UserCommand::Disable { user } => {
            let user = tenantry.set_user_active(&user, false).await?;
            outln!("user {} disabled", user.email)?;
        }
        UserCommand::Enable { user } => {
            let user = tenantry.set_user_active(&user, true).await?;
            outln!("user {} enabled", user.email)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn member(tenantry: &Tenantry, cmd: MemberCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MemberCommand::Add {
            user,
            slug,
            role,
            json,
        } => {
            let member = tenantry.add_member(&user, &slug, &role).await?;
            if json {
                output::json(&member)?;
            } else {
                outln!("{} is {} of {}", member.email, member.role, member.tenant)?;
            }
        }
        MemberCommand::Remove { user, slug } => {
            tenantry.remove_member(&user, &slug).await?;
            outln!("{user} is no longer a member of {slug}")?;
        }
        MemberCommand::Role { user, slug, role } => {
            let member = tenantry.set_member_role(&user, &slug, &role).await?;
            outln!("{} is {} of {}", member.email, member.role, member.tenant)?;
        }
        MemberCommand::List { tenant, user, json } => {
            let members = tenantry.members(tenant.as_deref(), user.as_deref()).await?;
            if json {
                output::json(&members)?;
            } else {
                outln!("{}", members_table(&members))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn slugs(tenantry: &Tenantry) -> anyhow::Result<std::collections::HashMap<String, String>> {
    Ok(tenantry
        .catalog()
        .tenants()
        .await?
        .into_iter()
        .map(|t| (t.id.to_string(), t.slug.to_string()))
        .collect())
}

fn domains_table(domains: &[Domain], slugs: &std::collections::HashMap<String, String>) -> Table {
    let mut t = table(&["HOST", "TENANT", "PRIMARY", "CREATED"]);
    for d in domains {
        let tenant = slugs.get(&d.tenant_id).unwrap_or(&d.tenant_id).clone();
        let primary = if d.primary { "yes" } else { "" };
        add_row(
            &mut t,
            vec![d.host.clone(), tenant, primary.into(), d.created_at.clone()],
        );
    }
    t
}

fn users_table(users: &[User]) -> Table {
    let mut t = table(&["ID", "E-MAIL", "NAME", "STATUS", "PASSWORD", "CREATED"]);
    for u in users {
        let password = if u.has_password { "set" } else { "" };
        add_row(
            &mut t,
            vec![
                u.id.clone(),
                u.email.clone(),
                u.display_name.clone(),
                u.status.as_str().to_owned(),
                password.into(),
                u.created_at.clone(),
            ],
        );
    }
    t
}

fn members_table(members: &[Membership]) -> Table {
    let mut t = table(&["TENANT", "E-MAIL", "ROLE", "USER ID", "SINCE"]);
    for m in members {
        add_row(
            &mut t,
            vec![
                m.tenant.clone(),
                m.email.clone(),
                m.role.clone(),
                m.user_id.clone(),
                m.created_at.clone(),
            ],
        );
    }
    t
}
