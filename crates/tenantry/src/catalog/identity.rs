//! Who reaches which tenant: domains (host → tenant), users, memberships, and the change
//! counter every process polls to drop what it cached about them.
//!
//! Invariant: every write here that can change a routing decision bumps the counter after it
//! committed ([`Catalog::bump_changes`]), so a process that sees the counter move and reads
//! again sees the write.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use ulid::Ulid;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// A host name that routes to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Domain {
    pub host: String,
    pub tenant_id: String,
    pub primary: bool,
    pub created_at: String,
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            other => Err(Error::CorruptCatalog {
                field: "users.status",
                value: other.to_owned(),
            }),
        }
    }
}

/// A user as the catalog records it. The password hash never leaves the catalog module
/// except through [`Catalog::user_password_hash`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub status: UserStatus,
    pub has_password: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    fn from_row(row: &AnyRow) -> Result<User> {
        let read = || Error::catalog("read a user row");
        let status: String = row.try_get("status").map_err(read())?;
        let hash: Option<String> = row.try_get("password_hash").map_err(read())?;
        Ok(User {
            id: row.try_get("id").map_err(read())?,
            email: row.try_get("email").map_err(read())?,
            display_name: row.try_get("display_name").map_err(read())?,
            status: UserStatus::parse(&status)?,
            has_password: hash.is_some(),
            created_at: row.try_get("created_at").map_err(read())?,
            updated_at: row.try_get("updated_at").map_err(read())?,
        })
    }
}

/// A user's role in a tenant, with both sides named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    pub user_id: String,
    pub email: String,
    pub tenant_id: String,
    pub tenant: String,
    pub role: String,
    pub created_at: String,
}

macro_rules! user_select {
    () => {
        "SELECT id, email, display_name, status, password_hash, created_at, updated_at \
         FROM tenantry_users"
    };
}

macro_rules! membership_select {
    () => {
        "SELECT m.user_id, u.email, m.tenant_id, t.slug, m.role, m.created_at \
         FROM tenantry_memberships m \
         JOIN tenantry_users u ON u.id = m.user_id \
         JOIN tenantry_tenants t ON t.id = m.tenant_id"
    };
}

macro_rules! domain_select {
    () => {
        "SELECT host, tenant_id, is_primary, created_at FROM tenantry_domains"
    };
}

fn membership_from_row(row: &AnyRow) -> Result<Membership> {
    let read = || Error::catalog("read a membership row");
    Ok(Membership {
        user_id: row.try_get("user_id").map_err(read())?,
        email: row.try_get("email").map_err(read())?,
        tenant_id: row.try_get("tenant_id").map_err(read())?,
        tenant: row.try_get("slug").map_err(read())?,
        role: row.try_get("role").map_err(read())?,
        created_at: row.try_get("created_at").map_err(read())?,
    })
}

fn domain_from_row(row: &AnyRow) -> Result<Domain> {
    let read = || Error::catalog("read a domain row");
    let primary: i64 = row
        .try_get::<i16, _>("is_primary")
        .map(i64::from)
        .or_else(|_| row.try_get::<i64, _>("is_primary"))
        .map_err(read())?;
    Ok(Domain {
        host: row.try_get("host").map_err(read())?,
        tenant_id: row.try_get("tenant_id").map_err(read())?,
        primary: primary != 0,
        created_at: row.try_get("created_at").map_err(read())?,
    })
}

impl Catalog {
    /// The catalog's change counter: it moves after every write that can change a routing
    /// decision (domains, users, memberships, tenant status).
    pub async fn changes(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT counter FROM tenantry_changes WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(Error::catalog("read the change counter"))
    }

    /// Moves the change counter; called after the write it announces committed.
    pub(crate) async fn bump_changes(&self) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::catalog("move the change counter"))?;
        bump_changes_in(&mut conn).await
    }

    /// Records `host` (already normalised) for a tenant. The first domain of a tenant, or
    /// one added with `primary`, becomes its primary domain. A host belongs to one tenant at
    /// most: [`Error::DomainTaken`] names the tenant that holds it.
    pub async fn insert_domain(&self, tenant: TenantId, host: &str, primary: bool) -> Result<()> {
        let action = "add a domain";
        // A host held by a tenant is refused by the table's key, in any process.
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        let count: i64 = sqlx::query_scalar(
            self.engine
                .sql("SELECT COUNT(*) FROM tenantry_domains WHERE tenant_id = ?"),
        )
        .bind(tenant.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
        let primary = primary || count == 0;
        if primary {
            sqlx::query(
                self.engine
                    .sql("UPDATE tenantry_domains SET is_primary = 0 WHERE tenant_id = ?"),
            )
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::catalog(action))?;
        }
        let inserted = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_domains (host, tenant_id, is_primary, created_at) \
             VALUES (?, ?, ?, ?)",
        ))
        .bind(host)
        .bind(tenant.to_string())
        .bind(i16::from(primary))
        .bind(now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Another process took the host between the check and the insert.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                return match self.domain(host).await? {
                    Some(existing) => Err(self.domain_taken(host, &existing).await),
                    None => Err(Error::catalog(action)(sqlx::Error::Database(e))),
                };
            }
            Err(e) => return Err(Error::catalog(action)(e)),
        }
        tx.commit().await.map_err(Error::catalog(action))?;
        self.bump_changes().await
    }

    async fn domain_taken(&self, host: &str, existing: &Domain) -> Error {
        let tenant = match TenantId::parse(&existing.tenant_id) {
            Ok(id) => match self.tenant_by_id(id).await {
                Ok(t) => t.slug.to_string(),
                Err(_) => existing.tenant_id.clone(),
            },
            Err(_) => existing.tenant_id.clone(),
        };
        Error::DomainTaken {
            host: host.to_owned(),
            tenant,
        }
    }

    /// The domain record of a host, if any tenant holds it.
    pub async fn domain(&self, host: &str) -> Result<Option<Domain>> {
        let row = sqlx::query(
            self.engine
                .sql(concat!(domain_select!(), " WHERE host = ?")),
        )
        .bind(host)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("look up a domain"))?;
        row.as_ref().map(domain_from_row).transpose()
    }

    /// Every domain, or one tenant's, by host.
    pub async fn domains(&self, tenant: Option<TenantId>) -> Result<Vec<Domain>> {
        let rows = match tenant {
            Some(id) => {
                sqlx::query(self.engine.sql(concat!(
                    domain_select!(),
                    " WHERE tenant_id = ? ORDER BY host"
                )))
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(self.engine.sql(concat!(domain_select!(), " ORDER BY host")))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(Error::catalog("list domains"))?;
        rows.iter().map(domain_from_row).collect()
    }

    /// Removes a host; when it was the tenant's primary domain, its oldest remaining domain
    /// becomes primary. Returns the removed record.
    pub async fn delete_domain(&self, host: &str) -> Result<Domain> {
        let action = "remove a domain";
        let domain = self
            .domain(host)
            .await?
            .ok_or_else(|| Error::DomainNotFound {
                host: host.to_owned(),
            })?;
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_domains WHERE host = ?"),
        )
        .bind(host)
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
        if domain.primary {
            let next: Option<String> = sqlx::query_scalar(self.engine.sql(
                "SELECT host FROM tenantry_domains WHERE tenant_id = ? \
                 ORDER BY created_at, host LIMIT 1",
            ))
            .bind(&domain.tenant_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::catalog(action))?;
            if let Some(next) = next {
                sqlx::query(
                    self.engine
                        .sql("UPDATE tenantry_domains SET is_primary = 1 WHERE host = ?"),
                )
                .bind(next)
                .execute(&mut *tx)
                .await
                .map_err(Error::catalog(action))?;
            }
        }
        tx.commit().await.map_err(Error::catalog(action))?;
        self.bump_changes().await?;
        Ok(domain)
    }

    /// Records a user. `email_key` is the e-mail's lowercase form, unique.
    pub(crate) async fn insert_user(
        &self,
        email: &str,
        email_key: &str,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<User> {
        let at = now();
        let id = Ulid::new().to_string();
        let inserted = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_users (id, email, email_key, display_name, status, \
             password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
        ))
        .bind(&id)
        .bind(email)
        .bind(email_key)
        .bind(display_name)
        .bind(password_hash.map(str::to_owned))
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self
                .user_by_id(&id)
                .await?
                .ok_or_else(|| Error::UserNotFound {
                    user: email.to_owned(),
                }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::UserExists {
                email: email.to_owned(),
            }),
            Err(e) => Err(Error::catalog("add a user")(e)),
        }
    }

    /// The user with this id, if any.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(self.engine.sql(concat!(user_select!(), " WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::catalog("look up a user"))?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// The user whose e-mail has this lowercase form, if any.
    pub async fn user_by_email_key(&self, email_key: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            self.engine
                .sql(concat!(user_select!(), " WHERE email_key = ?")),
        )
        .bind(email_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("look up a user"))?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// Every user, oldest first.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(user_select!(), " ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("list users"))?;
        rows.iter().map(User::from_row).collect()
    }

    /// A user's argon2id password hash, if one is set.
    pub(crate) async fn user_password_hash(&self, id: &str) -> Result<Option<String>> {
        let hash: Option<Option<String>> = sqlx::query_scalar(
            self.engine
                .sql("SELECT password_hash FROM tenantry_users WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("read a user's password hash"))?;
        Ok(hash.flatten())
    }

    /// Sets a user's status.
    pub(crate) async fn set_user_status(&self, id: &str, status: UserStatus) -> Result<()> {
        sqlx::query(
            self.engine
                .sql("UPDATE tenantry_users SET status = ?, updated_at = ? WHERE id = ?"),
        )
        .bind(status.as_str())
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("change a user's status"))?;
        self.bump_changes().await
    }

    /// Adds a membership, or changes the role of an existing one. Returns whether it was new.
    pub(crate) async fn upsert_membership(
        &self,
        user: &str,
        tenant: TenantId,
        role: &str,
    ) -> Result<bool> {
        let action = "add a membership";
        let at = now();
        let updated = sqlx::query(self.engine.sql(
            "UPDATE tenantry_memberships SET role = ?, updated_at = ? \
             WHERE user_id = ? AND tenant_id = ?",
        ))
        .bind(role)
        .bind(&at)
        .bind(user)
        .bind(tenant.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::catalog(action))?;
        let new = if updated.rows_affected() == 0 {
            let inserted = sqlx::query(self.engine.sql(
                "INSERT INTO tenantry_memberships (user_id, tenant_id, role, created_at, \
                 updated_at) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(user)
            .bind(tenant.to_string())
            .bind(role)
            .bind(&at)
            .bind(&at)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => true,
                // Added by another process meanwhile: ours is a role change.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Box::pin(self.upsert_membership(user, tenant, role)).await;
                }
                Err(e) => return Err(Error::catalog(action)(e)),
            }
        } else {
            false
        };
        self.bump_changes().await?;
        Ok(new)
    }

    /// Removes a membership; returns whether there was one.
    pub(crate) async fn delete_membership(&self, user: &str, tenant: TenantId) -> Result<bool> {
        let done = sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_memberships WHERE user_id = ? AND tenant_id = ?"),
        )
        .bind(user)
        .bind(tenant.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("remove a membership"))?;
        self.bump_changes().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Memberships of one tenant, or of one user, or all; by tenant, then e-mail.
    pub async fn memberships(
        &self,
        tenant: Option<TenantId>,
        user: Option<&str>,
    ) -> Result<Vec<Membership>> {
        let query = match (tenant, user) {
            (Some(id), Some(user)) => sqlx::query(self.engine.sql(concat!(
                membership_select!(),
                " WHERE m.tenant_id = ? AND m.user_id = ? ORDER BY t.slug, u.email_key"
            )))
            .bind(id.to_string())
            .bind(user.to_owned()),
            (Some(id), None) => sqlx::query(self.engine.sql(concat!(
                membership_select!(),
                " WHERE m.tenant_id = ? ORDER BY t.slug, u.email_key"
            )))
            .bind(id.to_string()),
            (None, Some(user)) => sqlx::query(self.engine.sql(concat!(
                membership_select!(),
                " WHERE m.user_id = ? ORDER BY t.slug, u.email_key"
            )))
            .bind(user.to_owned()),
            (None, None) => sqlx::query(self.engine.sql(concat!(
                membership_select!(),
                " ORDER BY t.slug, u.email_key"
            ))),
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("list memberships"))?;
        rows.iter().map(membership_from_row).collect()
    }

    /// Removes every domain, membership, label, secret, operation record and API key bound to a
    /// tenant (it is being deleted);
    /// returns the domains and memberships removed, for the event log.
    pub(crate) async fn forget_tenant_routes(
        &self,
        tenant: TenantId,
    ) -> Result<(Vec<Domain>, Vec<Membership>)> {
        let action = "remove a tenant's domains and memberships";
        let domains = self.domains(Some(tenant)).await?;
        let members = self.memberships(Some(tenant), None).await?;
        for sql in [
            "DELETE FROM tenantry_domains WHERE tenant_id = ?",
            "DELETE FROM tenantry_memberships WHERE tenant_id = ?",
            "DELETE FROM tenantry_labels WHERE tenant_id = ?",
            "DELETE FROM tenantry_secrets WHERE tenant_id = ?",
            "DELETE FROM tenantry_operations WHERE tenant_id = ?",
            "DELETE FROM tenantry_api_keys WHERE tenant_id = ?",
        ] {
            sqlx::query(self.engine.sql(sql))
                .bind(tenant.to_string())
                .execute(&self.pool)
                .await
                .map_err(Error::catalog(action))?;
        }
        self.bump_changes().await?;
        Ok((domains, members))
    }
}

/// Moves the change counter inside the transaction of the write it announces, so both
/// become visible at once.
pub(super) async fn bump_changes_in(conn: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query("UPDATE tenantry_changes SET counter = counter + 1 WHERE id = 1")
        .execute(conn)
        .await
        .map_err(Error::catalog("move the change counter"))?;
    Ok(())
}
