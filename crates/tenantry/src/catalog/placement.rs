//! Servers' placement facts (catalog migration 9): capacity, region, labels; and how many
//! tenants each server holds.

use std::collections::HashMap;

use sqlx::Row;

use super::{Catalog, Server};
use crate::error::{Error, Result};

impl Catalog {
    /// Records a server's capacity, region and labels.
    pub(crate) async fn set_server_placement(
        &self,
        name: &str,
        capacity: Option<i64>,
        region: Option<&str>,
        labels: &[String],
    ) -> Result<Server> {
        sqlx::query(self.engine.sql(
            "UPDATE tenantry_servers SET capacity = ?, region = ?, labels = ? WHERE name = ?",
        ))
        .bind(capacity)
        .bind(region.map(str::to_owned))
        .bind(labels.join(" "))
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(Error::catalog("set a server's placement"))?;
        self.server(name).await
    }

    /// How many tenants (not deleted: spares and unfinished creations count) each server
    /// holds; a server with none is absent.
    pub(crate) async fn tenant_counts(&self) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT server, COUNT(*) AS n FROM tenantry_tenants WHERE status <> 'deleted' \
             GROUP BY server",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("count tenants per server"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("server")?, r.try_get("n")?)))
            .collect::<sqlx::Result<_>>()
            .map_err(Error::catalog("count tenants per server"))
    }
}
