//! Shared pools: one per PostgreSQL server that hosts `shared` tenants. The pool's tables are
//! migrated once for all its tenants; its runtime role and context key are sealed here.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use ulid::Ulid;

use super::{Catalog, now};
use crate::error::{Error, Result};
use crate::ident::{RoleName, ServerName};

/// A shared pool as the catalog records it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedPool {
    #[serde(serialize_with = "as_display")]
    pub id: Ulid,
    pub server: ServerName,
    pub role: RoleName,
    #[serde(skip)]
    pub role_secret: String,
    /// The HMAC key of tenant contexts, sealed with the master key.
    #[serde(skip)]
    pub context_key: String,
    pub version: i64,
    pub last_error: Option<String>,
}

fn as_display<S: serde::Serializer>(value: &Ulid, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl SharedPool {
    fn from_row(row: &AnyRow) -> Result<SharedPool> {
        let read = |e| Error::Catalog {
            action: "read a shared pool row",
            source: e,
        };
        let id: String = row.try_get("id").map_err(read)?;
        let server: String = row.try_get("server").map_err(read)?;
        let role: String = row.try_get("role_name").map_err(read)?;
        Ok(SharedPool {
            id: Ulid::from_string(&id).map_err(|_| Error::CorruptCatalog {
                field: "pools.id",
                value: id.clone(),
            })?,
            server: ServerName::new(&server).map_err(|_| Error::CorruptCatalog {
                field: "pools.server",
                value: server.clone(),
            })?,
            role: RoleName::parse(&role)?,
            role_secret: row.try_get("role_secret").map_err(read)?,
            context_key: row.try_get("context_key").map_err(read)?,
            version: row.try_get("version").map_err(read)?,
            last_error: row.try_get("last_error").map_err(read)?,
        })
    }
}

impl Catalog {
    /// The shared pool of a server, if one was set up.
    pub async fn shared_pool(&self, server: &str) -> Result<Option<SharedPool>> {
        let row = sqlx::query(self.engine.sql(
            "SELECT id, server, role_name, role_secret, context_key, version, last_error \
             FROM tenantry_pools WHERE server = ?",
        ))
        .bind(server)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("look up a shared pool"))?;
        row.as_ref().map(SharedPool::from_row).transpose()
    }

    /// Records a new shared pool; if another process recorded one first, returns that one.
    pub async fn insert_shared_pool(&self, pool: &SharedPool) -> Result<SharedPool> {
        let at = now();
        let result = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_pools (id, server, role_name, role_secret, context_key, version, \
             last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(pool.id.to_string())
        .bind(pool.server.as_str())
        .bind(pool.role.as_str())
        .bind(&pool.role_secret)
        .bind(&pool.context_key)
        .bind(pool.version)
        .bind(pool.last_error.clone())
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(pool.clone()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => self
                .shared_pool(pool.server.as_str())
                .await?
                .ok_or_else(|| Error::CorruptCatalog {
                    field: "pools.server",
                    value: pool.server.to_string(),
                }),
            Err(e) => Err(Error::Catalog {
                action: "insert a shared pool",
                source: e,
            }),
        }
    }

    /// Forgets a shared pool (after its objects were dropped).
    pub async fn delete_shared_pool(&self, id: Ulid) -> Result<()> {
        sqlx::query(self.engine.sql("DELETE FROM tenantry_pools WHERE id = ?"))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(Error::catalog("delete a shared pool"))?;
        Ok(())
    }
}
