//! Database servers that tenants are placed on.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Catalog, now};
use crate::engine::{Engine, redact_url};
use crate::error::{Error, Result};
use crate::ident::ServerName;

/// The built-in `local` server: the `tenants/` folder of the data directory.
pub(crate) const LOCAL_URL: &str = "sqlite:tenants";

/// A server as the catalog records it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Server {
    pub name: ServerName,
    pub engine: Engine,
    /// The URL as given. Use [`Server::display_url`] to show it.
    #[serde(skip)]
    pub url: String,
    /// A transaction-mode pooler (PgBouncer) in front of the server that application
    /// connections go through; administrative work always goes to `url`.
    #[serde(skip)]
    pub pooler_url: Option<String>,
    /// The most tenants it holds (spares and unfinished creations count); `None`: no limit.
    pub capacity: Option<i64>,
    pub region: Option<String>,
    /// Labels (`ssd`, `tier=gold`), sorted.
    pub labels: Vec<String>,
    pub created_at: String,
}

impl Server {
    /// The URL with any password hidden.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The pooler URL with any password hidden.
    pub fn display_pooler_url(&self) -> Option<String> {
        self.pooler_url.as_deref().map(redact_url)
    }

    fn from_row(row: &AnyRow) -> Result<Server> {
        let read = Error::catalog("read a server row");
        let name: String = row
            .try_get("name")
            .map_err(Error::catalog("read a server row"))?;
        let engine: String = row
            .try_get("engine")
            .map_err(Error::catalog("read a server row"))?;
        Ok(Server {
            name: ServerName::new(&name).map_err(|_| Error::CorruptCatalog {
                field: "servers.name",
                value: name,
            })?,
            engine: engine.parse()?,
            url: row
                .try_get("url")
                .map_err(Error::catalog("read a server row"))?,
            pooler_url: row
                .try_get("pooler_url")
                .map_err(Error::catalog("read a server row"))?,
            capacity: row
                .try_get("capacity")
                .map_err(Error::catalog("read a server row"))?,
            region: row
                .try_get("region")
                .map_err(Error::catalog("read a server row"))?,
            labels: row
                .try_get::<Option<String>, _>("labels")
                .map_err(Error::catalog("read a server row"))?
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            created_at: row.try_get("created_at").map_err(read)?,
        })
    }
}

impl Catalog {
    /// Records a server. The caller checks it is reachable first.
    pub async fn insert_server(&self, name: &ServerName, url: &str) -> Result<Server> {
        let engine = Engine::from_url(url)?;
        let server = Server {
            name: name.clone(),
            engine,
            url: url.to_owned(),
            pooler_url: None,
            capacity: None,
            region: None,
            labels: Vec::new(),
            created_at: now(),
        };
        let result = sqlx::query(self.engine.sql(
            "INSERT INTO tenantry_servers (name, engine, url, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(server.name.as_str())
        .bind(server.engine.as_str())
        .bind(&server.url)
        .bind(&server.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(server),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::ServerExists {
                name: name.to_string(),
            }),
            Err(e) => Err(Error::Catalog {
                action: "insert a server",
                source: e,
            }),
        }
    }

    /// The server with this name, or [`Error::ServerNotFound`].
    pub async fn server(&self, name: &str) -> Result<Server> {
        let row = sqlx::query(self.engine.sql(
            "SELECT name, engine, url, pooler_url, capacity, region, labels, created_at \
             FROM tenantry_servers WHERE name = ?",
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("look up a server"))?;
        match row {
            Some(row) => Server::from_row(&row),
            None => Err(Error::ServerNotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// Every server, by name.
    pub async fn servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(
            "SELECT name, engine, url, pooler_url, capacity, region, labels, created_at \
             FROM tenantry_servers ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("list servers"))?;
        rows.iter().map(Server::from_row).collect()
    }

    /// Sets (or, with `None`, clears) the pooler application connections go through.
    pub async fn set_pooler_url(&self, name: &str, pooler_url: Option<&str>) -> Result<Server> {
        self.server(name).await?;
        sqlx::query(
            self.engine
                .sql("UPDATE tenantry_servers SET pooler_url = ? WHERE name = ?"),
        )
        .bind(pooler_url.map(str::to_owned))
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("set a server's pooler"))?;
        self.server(name).await
    }

    /// Marks a server `removing` if no live tenant is placed on it: from then on it takes no
    /// new tenant. A tenant being created at the same moment is caught by one side or the
    /// other: its creator checks the server after inserting its row
    /// ([`Catalog::server_accepts_tenants`]), and this counts tenants after marking.
    pub async fn begin_server_removal(&self, name: &str) -> Result<()> {
        self.server(name).await?;
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_servers SET status = 'removing' \
             WHERE name = ? AND (status = 'active' OR status = 'draining')",
        ))
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("mark a server removing"))?;
        let tenants = self.live_tenants_on(name).await?;
        if tenants > 0 {
            sqlx::query(
                self.engine
                    .sql("UPDATE tenantry_servers SET status = 'active' WHERE name = ?"),
            )
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(Error::catalog("mark a server active"))?;
            return Err(Error::ServerInUse {
                name: name.to_owned(),
                tenants,
            });
        }
        Ok(())
    }

    /// Marks a server `draining` (it takes no new tenants while its tenants are moved off),
    /// or `active` again. A server being removed is left so.
    pub async fn set_server_draining(&self, name: &str, draining: bool) -> Result<()> {
        self.server(name).await?;
        let (to, from) = match draining {
            true => ("draining", "active"),
            false => ("active", "draining"),
        };
        sqlx::query(
            self.engine
                .sql("UPDATE tenantry_servers SET status = ? WHERE name = ? AND status = ?"),
        )
        .bind(to)
        .bind(name)
        .bind(from)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("mark a server draining"))?;
        Ok(())
    }

    /// Whether a server takes new tenants (it is not being drained or removed).
    pub async fn server_accepts_tenants(&self, name: &str) -> Result<bool> {
        let status: Option<String> = sqlx::query_scalar(
            self.engine
                .sql("SELECT status FROM tenantry_servers WHERE name = ?"),
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::catalog("look up a server"))?;
        Ok(status.as_deref() == Some("active"))
    }

    /// How many tenants on the server are not deleted.
    pub async fn live_tenants_on(&self, name: &str) -> Result<i64> {
        let row = sqlx::query(self.engine.sql(
            "SELECT COUNT(*) AS n FROM tenantry_tenants WHERE server = ? AND status <> 'deleted'",
        ))
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(Error::catalog("count a server's tenants"))?;
        row.try_get("n")
            .map_err(Error::catalog("count a server's tenants"))
    }

    /// Removes a server marked by [`Catalog::begin_server_removal`], with its deleted
    /// tenants' records.
    pub async fn remove_server(&self, name: &str) -> Result<()> {
        // Deleted tenants' records go with the server.
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_tenants WHERE server = ? AND status = 'deleted'"),
        )
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("purge a server's deleted tenants"))?;
        sqlx::query(
            self.engine
                .sql("DELETE FROM tenantry_servers WHERE name = ? AND status = 'removing'"),
        )
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("remove a server"))?;
        Ok(())
    }
}
