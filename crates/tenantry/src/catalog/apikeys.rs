//! API keys: a name, scopes, an optional tenant, and SHA-256 of the secret — never the
//! secret. A key's creation and revocation append their audit entries in the same
//! transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::{self, NewEvent};
use super::{Catalog, now};
use crate::error::{Error, Result};

/// A key's row as the catalog keeps it.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub tenant_id: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

const COLUMNS: &str =
    "id, name, secret_hash, scopes, tenant_id, created_at, created_by, revoked_at";

impl ApiKeyRow {
    fn from_row(row: &AnyRow) -> std::result::Result<ApiKeyRow, sqlx::Error> {
        Ok(ApiKeyRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            secret_hash: row.try_get("secret_hash")?,
            scopes: row.try_get("scopes")?,
            tenant_id: row.try_get("tenant_id")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

impl Catalog {
    /// Records a new key (`row.revoked_at` is ignored) with its audit entry.
    pub(crate) async fn insert_api_key(&self, row: &ApiKeyRow, detail: String) -> Result<()> {
        let action = "record an API key";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        // Written first: on SQLite a transaction that reads before it writes cannot wait
        // for the write lock.
        let inserted = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_api_keys (id, name, secret_hash, scopes, tenant_id, created_at, \
             created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.secret_hash)
        .bind(&row.scopes)
        .bind(&row.tenant_id)
        .bind(&row.created_at)
        .bind(&row.created_by)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            // The name is taken (names stay unique after revocation).
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation())
            {
                return Err(Error::ApiKeyExists {
                    name: row.name.clone(),
                });
            }
            return Err(Error::catalog(action)(e));
        }
        let event = NewEvent {
            action: "apikey.create",
            outcome: "ok",
            target: Some(format!("apikey:{}", row.name)),
            detail: Some(detail),
            ..NewEvent::default()
        };
        events::insert(&mut tx, self.engine, event)
            .await
            .map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Every key, live and revoked, by name.
    pub(crate) async fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(self.engine.sql_built(format!(
            "SELECT {COLUMNS} FROM tenantry_api_keys ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("list API keys"))?;
        rows.iter()
            .map(ApiKeyRow::from_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::catalog("list API keys"))
    }

    /// The key with this id, live or revoked.
    pub(crate) async fn api_key_by_id(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(self.engine.sql_built(format!(
            "SELECT {COLUMNS} FROM tenantry_api_keys WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("read an API key"))?;
        row.as_ref()
            .map(ApiKeyRow::from_row)
            .transpose()
            .map_err(Error::catalog("read an API key"))
    }

    /// Revokes the live key named `name`, with its audit entry; a key revoked already is
    /// left as it is and returned.
    pub(crate) async fn revoke_api_key(&self, name: &str) -> Result<ApiKeyRow> {
        let action = "revoke an API key";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        let done = sqlx::query(self.engine.sql(
            "UPDATE tenantry_api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
        ))
        .bind(now())
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
        if done.rows_affected() > 0 {
            let event = NewEvent {
                action: "apikey.revoke",
                outcome: "ok",
                target: Some(format!("apikey:{name}")),
                ..NewEvent::default()
            };
            events::insert(&mut tx, self.engine, event)
                .await
                .map_err(Error::catalog(action))?;
        }
        let row = sqlx::query(self.engine.sql_built(format!(
            "SELECT {COLUMNS} FROM tenantry_api_keys WHERE name = ?"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::catalog(action))?;
        let Some(row) = row else {
            return Err(Error::ApiKeyNotFound {
                name: name.to_owned(),
            });
        };
        let key = ApiKeyRow::from_row(&row).map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))?;
        Ok(key)
    }
}
