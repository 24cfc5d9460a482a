//! The database strategy: a tenant's own SQLite file, PostgreSQL database or MySQL database,
//! reached at run time through its own login role (PostgreSQL, MySQL).

use sqlx::AnyConnection;

use super::{Hook, LockSpec, MigrationTarget, Place, connect_as_admin};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::{self, Engine, mysql, postgres, sqlite};
use crate::error::{Error, Result};
use crate::ident::SqlName;

pub(super) async fn provision(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    match place {
        Place::SqliteDir(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::StorageFile {
                tenant: slug.to_owned(),
                action: "create the directory",
                path: dir.clone(),
                source,
            })?;
            // Opening with mode=rwc creates the file; the lock file beside it is made here
            // too, and only here.
            let path = sqlite::file_path(dir, &tenant.storage);
            let lock = sqlite::lock_path(dir, &tenant.storage);
            sqlite::create_lock_file(&lock).map_err(|source| Error::StorageFile {
                tenant: slug.to_owned(),
                action: "create the lock file",
                path: lock.clone(),
                source,
            })?;
            connect_as_admin(place, slug, &sqlite::url_creating(&path))
                .await
                .map(std::mem::drop)
        }
        Place::Server { engine, .. } => {
            let mut admin = place.admin_at(None).await?;
            let (role, password) = t.issue_credentials(tenant).await?;
            match engine {
                Engine::Postgres => {
                    postgres::create_database(&mut admin, &tenant.storage)
                        .await
                        .map_err(Error::storage(slug, "create its database"))?;
                    postgres::ensure_role(&mut admin, &role, &password, None)
                        .await
                        .map_err(Error::storage(slug, "create its role"))?;
                    postgres::grant_database(&mut admin, &tenant.storage, &role)
                        .await
                        .map_err(Error::storage(slug, "grant its role its database"))
                }
                Engine::Mysql => {
                    mysql::create_database(&mut admin, &tenant.storage)
                        .await
                        .map_err(Error::storage(slug, "create its database"))?;
                    mysql::ensure_user(&mut admin, &role, &password, &tenant.storage)
                        .await
                        .map_err(Error::storage(slug, "create its user"))
                }
                Engine::Sqlite => Ok(()),
            }
        }
    }
}

pub(super) async fn target(
    t: &Tenantry,
    place: &Place,
    tenant: &Tenant,
) -> Result<MigrationTarget> {
    let slug = tenant.slug.to_string();
    let (conn, lock, hook) = match place {
        Place::SqliteDir(dir) => {
            let url = sqlite::url_existing(&sqlite::file_path(dir, &tenant.storage));
            let lock = LockSpec::File(sqlite::lock_path(dir, &tenant.storage));
            (
                connect_as_admin(place, &slug, &url).await?,
                lock,
                Hook::None,
            )
        }
        Place::Server { engine, url, .. } => {
            let url = engine::url_with(url, Some(tenant.storage.as_str()), None)?;
            let conn = connect_as_admin(place, &slug, &url).await?;
            match engine {
                Engine::Postgres => {
                    let hook = match &tenant.role {
                        Some(role) => Hook::Grant {
                            schema: SqlName::new("schema", "public")?,
                            role: role.clone(),
                        },
                        None => Hook::None,
                    };
                    let key = t.lock_key(&format!("tenant:{}", tenant.id))?;
                    (conn, LockSpec::Advisory(key), hook)
                }
                _ => {
                    let name = t.lock_name(&format!("tenant:{}", tenant.id))?;
                    (conn, LockSpec::Named(name), Hook::None)
                }
            }
        }
    };
    Ok(MigrationTarget {
        owner: slug,
        engine: place.engine(),
        conn,
        lock,
        hook,
    })
}

pub(super) async fn drop(place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    match place {
        Place::SqliteDir(dir) => {
            for path in sqlite::all_files(dir, &tenant.storage) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::StorageFile {
                            tenant: slug.to_owned(),
                            action: "remove",
                            path,
                            source,
                        });
                    }
                }
            }
            Ok(())
        }
        Place::Server { engine, .. } => {
            let mut admin = place.admin_at(None).await?;
            let role = tenant.id.role_name();
            match engine {
                Engine::Postgres => {
                    postgres::drop_database(&mut admin, &tenant.storage)
                        .await
                        .map_err(Error::storage(slug, "drop its database"))?;
                    postgres::drop_role(&mut admin, &role)
                        .await
                        .map_err(Error::storage(slug, "drop its role"))
                }
                Engine::Mysql => {
                    mysql::drop_database(&mut admin, &tenant.storage)
                        .await
                        .map_err(Error::storage(slug, "drop its database"))?;
                    mysql::drop_user(&mut admin, &role)
                        .await
                        .map_err(Error::storage(slug, "drop its user"))
                }
                Engine::Sqlite => Ok(()),
            }
        }
    }
}

pub(super) async fn exists(place: &Place, tenant: &Tenant) -> Result<bool> {
    let slug = tenant.slug.as_str();
    match place {
        Place::SqliteDir(dir) => Ok(sqlite::file_path(dir, &tenant.storage).exists()),
        Place::Server { engine, .. } => {
            let mut admin: AnyConnection = place.admin_at(None).await?;
            let found = match engine {
                Engine::Postgres => postgres::database_exists(&mut admin, &tenant.storage).await,
                _ => mysql::database_exists(&mut admin, &tenant.storage).await,
            };
            found.map_err(Error::storage(slug, "look up its database"))
        }
    }
}

/// Lets the tenant's runtime connections in, or shuts them out (ending those open).
pub(super) async fn set_access(place: &Place, tenant: &Tenant, allow: bool) -> Result<()> {
    let slug = tenant.slug.as_str();
    match place {
        Place::SqliteDir(dir) => {
            let marker = sqlite::revoked_path(dir, &tenant.storage);
            let result = if allow {
                match std::fs::remove_file(&marker) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            } else {
                std::fs::write(&marker, b"")
            };
            result.map_err(|source| Error::StorageFile {
                tenant: slug.to_owned(),
                action: if allow { "admit" } else { "revoke" },
                path: marker,
                source,
            })
        }
        Place::Server { engine, .. } => {
            let role = tenant.id.role_name();
            let mut admin = place.admin_at(None).await?;
            let action = if allow {
                "let its role log in"
            } else {
                "stop its role logging in"
            };
            match engine {
                Engine::Postgres => {
                    postgres::set_login(&mut admin, &role, allow)
                        .await
                        .map_err(Error::storage(slug, action))?;
                    if !allow {
                        postgres::terminate_role(&mut admin, &role)
                            .await
                            .map_err(Error::storage(slug, "end its sessions"))?;
                    }
                }
                Engine::Mysql => {
                    mysql::set_login(&mut admin, &role, allow)
                        .await
                        .map_err(Error::storage(slug, action))?;
                    if !allow {
                        mysql::terminate_role(&mut admin, &role)
                            .await
                            .map_err(Error::storage(slug, "end its sessions"))?;
                    }
                }
                Engine::Sqlite => {}
            }
            Ok(())
        }
    }
}
