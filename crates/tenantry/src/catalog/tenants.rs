//! Tenant rows.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::{RoleName, ServerName, Slug, StorageName, TenantId};

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Catalog row written; storage being created and migrated. Not serving.
    Provisioning,
    /// Storage fully migrated and verified. Serving.
    Active,
    /// Storage kept, not serving.
    Suspended,
    /// Provisioning failed; `last_error` says why. `repair` resumes.
    Failed,
    /// Storage being dropped.
    Deleting,
    /// Storage dropped; the row is kept as a record until purged.
    Deleted,
    /// Storage provisioned, migrated and verified ahead of time, closed to every login, kept
    /// current by rollouts; becomes a tenant when a create claims it. Its slug is
    /// `spare-<id>`.
    Spare,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Provisioning,
        Status::Active,
        Status::Suspended,
        Status::Failed,
        Status::Deleting,
        Status::Deleted,
        Status::Spare,
    ];

    /// The statuses whose storage is complete and kept current by fleet migrations.
    pub const LIVE: [Status; 3] = [Status::Active, Status::Suspended, Status::Spare];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Provisioning => "provisioning",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
            Status::Deleted => "deleted",
            Status::Spare => "spare",
        }
    }

    /// Whether the tenant's storage is complete and kept current by fleet migrations.
    pub fn is_live(self) -> bool {
        Status::LIVE.contains(&self)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::CorruptCatalog {
                field: "tenants.status",
                value: s.to_owned(),
            })
    }
}

/// How a tenant's data is kept apart from other tenants'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// A database (or SQLite file) of its own, reached through its own login role.
    Database,
    /// A schema of its own on a PostgreSQL server, reached through its own login role.
    Schema,
    /// Rows in tables shared with other tenants of the server's shared pool, kept apart by
    /// PostgreSQL row-level security and an unforgeable tenant context.
    Shared,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Database, Strategy::Schema, Strategy::Shared];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Database => "database",
            Strategy::Schema => "schema",
            Strategy::Shared => "shared",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| Error::UnknownStrategy {
                value: s.to_owned(),
            })
    }
}

/// A tenant as the catalog records it. Field names are the stable JSON contract.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    #[serde(serialize_with = "as_display")]
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub status: Status,
    pub strategy: Strategy,
    pub server: ServerName,
    /// The physical database or file name.
    pub storage: StorageName,
    /// The runtime login role (PostgreSQL, MySQL tenants of the database and schema
    /// strategies; `None` for SQLite files and shared tenants).
    pub role: Option<RoleName>,
    /// The role's password, sealed with the master key. Never serialized.
    #[serde(skip)]
    pub role_secret: Option<String>,
    /// The highest migration version the tenant's own ledger records (0: none).
    pub version: i64,
    pub last_error: Option<String>,
    /// The digest of the tenant's ledger as last read back with `version`
    /// (`ledger::digest`); `None` until a run recorded one, or while its ledger has a dirty
    /// row. A rollout skips a tenant whose version and digest equal its set's.
    #[serde(skip)]
    pub ledger_digest: Option<String>,
    /// The version its ledger holds dirty (started, not finished: MySQL, or a
    /// `-- no-transaction` file), as the last run read it back.
    pub dirty_version: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

fn as_display<S: serde::Serializer>(value: &TenantId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// The tenant columns, in one place, for `concat!` into constant queries.
macro_rules! columns {
    () => {
        "id, slug, name, status, strategy, server, storage, role_name, role_secret, version, \
         last_error, ledger_digest, dirty_version, created_at, updated_at, deleted_at"
    };
}

impl Tenant {
    /// A tenant about to be written as `provisioning`: no role, no version yet.
    pub(crate) fn provisioning(
        id: TenantId,
        slug: Slug,
        name: String,
        (server, strategy): (ServerName, Strategy),
        storage: StorageName,
    ) -> Tenant {
        let at = now();
        Tenant {
            id,
            slug,
            name,
            status: Status::Provisioning,
            strategy,
            server,
            storage,
            role: None,
            role_secret: None,
            version: 0,
            last_error: None,
            ledger_digest: None,
            dirty_version: None,
            created_at: at.clone(),
            updated_at: at,
            deleted_at: None,
        }
    }

    /// What its ledger held when a run last read it back.
    pub fn ledger_state(&self) -> super::LedgerState {
        super::LedgerState {
            version: self.version,
            digest: self.ledger_digest.clone(),
            dirty: self.dirty_version,
        }
    }

    fn from_row(row: &AnyRow) -> Result<Tenant> {
        let get = |col: &'static str| -> Result<String> {
            row.try_get::<String, _>(col)
                .map_err(Error::catalog("read a tenant row"))
        };
        let opt = |col: &'static str| -> Result<Option<String>> {
            row.try_get::<Option<String>, _>(col)
                .map_err(Error::catalog("read a tenant row"))
        };
        let corrupt = |field: &'static str, value: String| Error::CorruptCatalog { field, value };
        let slug = get("slug")?;
        let server = get("server")?;
        Ok(Tenant {
            id: TenantId::parse(&get("id")?)?,
            slug: Slug::new(&slug).map_err(|_| corrupt("tenants.slug", slug))?,
            name: get("name")?,
            status: get("status")?.parse()?,
            strategy: {
                let strategy = get("strategy")?;
                strategy
                    .parse()
                    .map_err(|_| corrupt("tenants.strategy", strategy))?
            },
            server: ServerName::new(&server).map_err(|_| corrupt("tenants.server", server))?,
            storage: StorageName::parse(&get("storage")?)?,
            role: opt("role_name")?.map(|r| RoleName::parse(&r)).transpose()?,
            role_secret: opt("role_secret")?,
            version: row
                .try_get::<i64, _>("version")
                .map_err(Error::catalog("read a tenant row"))?,
            last_error: opt("last_error")?,
            ledger_digest: opt("ledger_digest")?,
            dirty_version: row
                .try_get::<Option<i64>, _>("dirty_version")
                .map_err(Error::catalog("read a tenant row"))?,
            created_at: get("created_at")?,
            updated_at: get("updated_at")?,
            deleted_at: opt("deleted_at")?,
        })
    }
}

impl Catalog {
    /// Inserts a new tenant row. A taken slug is [`Error::TenantExists`].
    pub async fn insert_tenant(&self, t: &Tenant) -> Result<()> {
        self.insert_tenant_with(t, None).await
    }

    /// Writes a tenant's row and, in the same transaction, an operation record on it
    /// (`(kind, detail)`), so no process ever sees the one without the other.
    pub(crate) async fn insert_tenant_with(
        &self,
        t: &Tenant,
        operation: Option<(&str, Option<&str>)>,
    ) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::catalog("insert a tenant"))?;
        let result = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_tenants (id, slug, name, status, strategy, server, storage, \
             role_name, role_secret, version, last_error, created_at, updated_at, deleted_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(t.id.to_string())
        .bind(t.slug.as_str())
        .bind(&t.name)
        .bind(t.status.as_str())
        .bind(t.strategy.as_str())
        .bind(t.server.as_str())
        .bind(t.storage.as_str())
        .bind(t.role.as_ref().map(|r| r.as_str().to_owned()))
        .bind(t.role_secret.clone())
        .bind(t.version)
        .bind(t.last_error.clone())
        .bind(&t.created_at)
        .bind(&t.updated_at)
        .bind(t.deleted_at.clone())
        .execute(&mut *tx)
        .await;
        let result = match (result, operation) {
            (Ok(_), Some((kind, detail))) => {
                super::operations::insert_operation(&mut tx, self.engine, t.id, kind, detail).await
            }
            (result, _) => result.map(drop),
        };
        let result = match result {
            Ok(()) => tx.commit().await,
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let status = self
                    .find_tenant(t.slug.as_str())
                    .await?
                    .map_or(Status::Provisioning, |t| t.status);
                Err(Error::TenantExists {
                    slug: t.slug.to_string(),
                    status,
                })
            }
            Err(e) => Err(Error::Catalog {
                action: "insert a tenant",
                source: e,
            }),
        }
    }

    /// The tenant with this slug, if any (deleted ones included).
    pub async fn find_tenant(&self, slug: &str) -> Result<Option<Tenant>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM tenantry_tenants WHERE slug = ?"
        );
        let row = sqlx::query(self.engine.sql(sql))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::catalog("look up a tenant"))?;
        row.as_ref().map(Tenant::from_row).transpose()
    }

    /// The tenant with this slug, or [`Error::TenantNotFound`].
    pub async fn tenant(&self, slug: &str) -> Result<Tenant> {
        self.find_tenant(slug)
            .await?
            .ok_or_else(|| Error::TenantNotFound {
                slug: slug.to_owned(),
            })
    }

    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut tenants = Vec::new();
        self.each_tenant(|t| tenants.push(t)).await?;
        Ok(tenants)
    }

    /// Every tenant in id (creation) order, decoded a page at a time and handed to `each`:
    /// never more than one page of rows is held. Each page is its own query, run to the end,
    /// so no read stays open between pages (on SQLite an open read would keep the write-ahead
    /// log from being checkpointed for as long as the caller takes).
    pub async fn each_tenant(&self, mut each: impl FnMut(Tenant)) -> Result<()> {
        const PAGE: usize = 500;
        let first = concat!(
            "SELECT ",
            columns!(),
            " FROM tenantry_tenants ORDER BY id LIMIT 500"
        );
        let next = concat!(
            "SELECT ",
            columns!(),
            " FROM tenantry_tenants WHERE id > ? ORDER BY id LIMIT 500"
        );
        let mut after: Option<String> = None;
        loop {
            let query = match &after {
                None => sqlx::query(self.engine.sql(first)),
                Some(id) => sqlx::query(self.engine.sql(next)).bind(id.clone()),
            };
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(Error::catalog("list tenants"))?;
            let full = rows.len() == PAGE;
            for row in &rows {
                let tenant = Tenant::from_row(row)?;
                after = Some(tenant.id.to_string());
                each(tenant);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Moves a tenant from one of `from` to `to`, recording `last_error`. Returns the updated
    /// row, or `None` if the tenant was not in one of `from` (someone else moved it first).
    pub async fn transition(
        &self,
        id: TenantId,
        from: &[Status],
        to: Status,
        last_error: Option<&str>,
    ) -> Result<Option<Tenant>> {
        self.transition_recorded(id, from, to, last_error, None)
            .await
    }

    /// [`Catalog::transition`], with `event` appended in the same transaction when the
    /// tenant moved (and only then).
    pub(crate) async fn transition_recorded(
        &self,
        id: TenantId,
        from: &[Status],
        to: Status,
        last_error: Option<&str>,
        event: Option<super::NewEvent<'_>>,
    ) -> Result<Option<Tenant>> {
        let action = "change a tenant's status";
        let at = now();
        let deleted_at = (to == Status::Deleted).then(|| at.clone());
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        let mut moved = false;
        // One statement per allowed source status keeps the placeholders portable.
        for status in from {
            let done = sqlx::query(self.engine.sql(
                "UPDATE tenantry_tenants SET status = ?, last_error = ?, updated_at = ?, \
                 deleted_at = ? WHERE id = ? AND status = ?",
            ))
            .bind(to.as_str())
            .bind(last_error.map(str::to_owned))
            .bind(&at)
            .bind(deleted_at.clone())
            .bind(id.to_string())
            .bind(status.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::tenant_catalog(id, action))?;
            if done.rows_affected() == 1 {
                moved = true;
                break;
            }
        }
        if !moved {
            return Ok(None);
        }
        // The change counter moves with the status, in the same commit.
        super::identity::bump_changes_in(&mut tx).await?;
        if let Some(event) = event {
            super::events::insert(&mut tx, self.engine, event)
                .await
                .map_err(Error::catalog("append an event"))?;
        }
        tx.commit()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        self.tenant_by_id(id).await.map(Some)
    }

    /// Gives tenant `id` (while it is `status`) a new slug and display name, with the change
    /// counter (routing caches slugs) and the event, in one transaction. A slug taken by
    /// another tenant is [`Error::TenantExists`]; a tenant whose status moved meanwhile,
    /// `None`.
    pub async fn rename_tenant(
        &self,
        current: &Tenant,
        slug: &Slug,
        name: &str,
        event: super::NewEvent<'_>,
    ) -> Result<Option<Tenant>> {
        let id = current.id;
        let action = "rename a tenant";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        let done = sqlx::query(self.engine.sql(
            "UPDATE tenantry_tenants SET slug = ?, name = ?, updated_at = ? \
             WHERE id = ? AND status = ?",
        ))
        .bind(slug.as_str())
        .bind(name)
        .bind(now())
        .bind(id.to_string())
        .bind(current.status.as_str())
        .execute(&mut *tx)
        .await;
        let done = match done {
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                let taken = self.find_tenant(slug.as_str()).await?;
                return Err(Error::TenantExists {
                    slug: slug.to_string(),
                    status: taken.map_or(current.status, |t| t.status),
                });
            }
            other => other.map_err(Error::tenant_catalog(id, action))?,
        };
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        super::identity::bump_changes_in(&mut tx).await?;
        super::events::insert(&mut tx, self.engine, event)
            .await
            .map_err(Error::catalog("append an event"))?;
        tx.commit()
            .await
            .map_err(Error::tenant_catalog(id, action))?;
        self.tenant_by_id(id).await.map(Some)
    }

    /// Stores a tenant's runtime role and its sealed password unless it has one already.
    /// Written before the role is created, so the catalog always knows the credential in
    /// force; when two runners race, the first one's password wins and the other re-reads it.
    pub async fn set_credentials(&self, id: TenantId, role: &RoleName, sealed: &str) -> Result<()> {
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_tenants SET role_name = ?, role_secret = ?, updated_at = ? \
             WHERE id = ? AND role_secret IS NULL",
        ))
        .bind(role.as_str())
        .bind(sealed)
        .bind(now())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, "record a tenant's credentials"))?;
        Ok(())
    }

    /// Removes a deleted tenant's row for good, freeing its slug.
    pub async fn purge_tenant(&self, id: TenantId) -> Result<bool> {
        let done = sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_tenants WHERE id = ? AND status = 'deleted'"),
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, "purge a tenant"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The tenant with this id, if any (purged tenants are gone).
    pub async fn find_tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>> {
        let sql = concat!("SELECT ", columns!(), " FROM tenantry_tenants WHERE id = ?");
        let row = sqlx::query(self.engine.sql(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::tenant_catalog(id, "read a tenant"))?;
        row.as_ref().map(Tenant::from_row).transpose()
    }

    /// A tenant's row as `conn` (a transaction, say) sees it.
    pub(crate) async fn tenant_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: TenantId,
    ) -> Result<Tenant> {
        let sql = concat!("SELECT ", columns!(), " FROM tenantry_tenants WHERE id = ?");
        let row = sqlx::query(self.engine.sql(sql))
            .bind(id.to_string())
            .fetch_one(conn)
            .await
            .map_err(Error::tenant_catalog(id, "read a tenant"))?;
        Tenant::from_row(&row)
    }

    pub(crate) async fn tenant_by_id(&self, id: TenantId) -> Result<Tenant> {
        let sql = concat!("SELECT ", columns!(), " FROM tenantry_tenants WHERE id = ?");
        let row = sqlx::query(self.engine.sql(sql))
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(Error::tenant_catalog(id, "read a tenant"))?;
        Tenant::from_row(&row)
    }

    /// The tenants with these ids that still have a row, in one query.
    pub(crate) async fn tenants_by_ids(&self, ids: &[TenantId]) -> Result<Vec<Tenant>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "SELECT {} FROM tenantry_tenants WHERE id IN ({marks})",
            columns!()
        );
        let mut query = sqlx::query(self.engine.sql_built(sql));
        for id in ids {
            query = query.bind(id.to_string());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("read tenants"))?;
        rows.iter().map(Tenant::from_row).collect()
    }
}
