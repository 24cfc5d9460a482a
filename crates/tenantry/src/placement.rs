//! Where a new tenant goes. Servers carry a capacity (the most tenants they hold, spares and
//! unfinished creations included), a region and labels. A tenant created without a server
//! goes to the configured default server, or, when placement is `fewest_tenants` or the
//! request names a region, to the server with the fewest tenants among those that take new
//! tenants, offer its strategy, have room and are in that region (ties by name). A server at
//! its capacity refuses a new tenant, named or placed.

use serde::{Deserialize, Serialize};

use crate::Tenantry;
use crate::catalog::{Server, Strategy};
use crate::config::Placement;
use crate::error::{Error, Result};
use crate::labels::check_label;
use crate::storage::Place;

/// A change to a server's placement facts; `None` leaves one as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlacementChange {
    /// `Some(None)`: no limit.
    pub capacity: Option<Option<i64>>,
    /// `Some(None)`: no region.
    pub region: Option<Option<String>>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
}

/// Refuses a region that is not a label-like name (`eu-west-1`).
fn check_region(region: &str) -> Result<()> {
    check_label(region).map_err(|_| Error::InvalidName {
        kind: "region",
        value: region.to_owned(),
        reason: "1–63 characters of a-z 0-9 _ . : = -, starting with a letter or digit",
    })
}

impl Tenantry {
    /// Sets a server's capacity, region and labels.
    pub async fn set_server_placement(
        &self,
        name: &str,
        change: PlacementChange,
    ) -> Result<Server> {
        let server = self.catalog.server(name).await?;
        if let Some(Some(capacity)) = change.capacity
            && capacity < 0
        {
            return Err(Error::InvalidName {
                kind: "capacity",
                value: capacity.to_string(),
                reason: "a capacity is 0 or more tenants",
            });
        }
        if let Some(Some(region)) = &change.region {
            check_region(region)?;
        }
        change.add_labels.iter().try_for_each(|l| check_label(l))?;
        let mut labels = server.labels.clone();
        labels.retain(|l| !change.remove_labels.contains(l));
        for label in &change.add_labels {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        labels.sort();
        let capacity = change.capacity.unwrap_or(server.capacity);
        let region = change.region.clone().unwrap_or(server.region.clone());
        let updated = self
            .catalog
            .set_server_placement(name, capacity, region.as_deref(), &labels)
            .await?;
        let detail = serde_json::to_string(&change).ok();
        self.audited(
            None,
            "server.placement",
            Some(format!("server:{name}")),
            detail,
        )
        .await;
        Ok(updated)
    }

    /// The server a new tenant of `strategy` goes to when the request names none.
    pub async fn choose_server(&self, strategy: Strategy, region: Option<&str>) -> Result<String> {
        if region.is_none() && self.config.placement == Placement::DefaultServer {
            return Ok(self.config.default_server.clone());
        }
        self.least_loaded(strategy, region).await
    }

    /// The server with the fewest tenants among those that take new tenants, offer
    /// `strategy`, have room and (with `region`) are in that region.
    pub(crate) async fn least_loaded(
        &self,
        strategy: Strategy,
        region: Option<&str>,
    ) -> Result<String> {
        if let Some(region) = region {
            check_region(region)?;
        }
        let counts = self.catalog.tenant_counts().await?;
        let mut best: Option<(i64, String)> = None;
        let mut seen = Vec::new();
        for server in self.catalog.servers().await? {
            let name = server.name.to_string();
            let held = counts.get(&name).copied().unwrap_or(0);
            let why_not = if !self.catalog.server_accepts_tenants(&name).await? {
                Some("draining or being removed")
            } else if region.is_some() && server.region.as_deref() != region {
                Some("another region")
            } else if Place::of(&server, &self.config)
                .check_strategy(strategy, &name)
                .is_err()
            {
                Some("not offering the strategy")
            } else if server.capacity.is_some_and(|cap| held >= cap) {
                Some("full")
            } else {
                None
            };
            match why_not {
                Some(why) => seen.push(format!("{name}: {why}")),
                None => {
                    if best.as_ref().is_none_or(|(n, _)| held < *n) {
                        best = Some((held, name));
                    }
                }
            }
        }
        best.map(|(_, name)| name)
            .ok_or_else(|| Error::NoServerFits {
                strategy: strategy.to_string(),
                region: region.map(str::to_owned),
                servers: seen,
            })
    }

    /// Refuses a new tenant on a server at its capacity.
    pub(crate) async fn check_room(&self, server: &Server) -> Result<()> {
        let Some(capacity) = server.capacity else {
            return Ok(());
        };
        let held = self.catalog.live_tenants_on(server.name.as_str()).await?;
        if held >= capacity {
            return Err(Error::ServerFull {
                name: server.name.to_string(),
                capacity,
            });
        }
        Ok(())
    }
}
