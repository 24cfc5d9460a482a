//! `server drain`: every tenant moved off a server, with a rollout's controls. The server is
//! marked `draining` first (it takes no new tenants); its active and suspended tenants are
//! moved, `concurrency` at a time, each to the server named or else to the least loaded
//! server of the drained server's region that offers its strategy. Past the failure budget
//! no further move starts. Running the drain again resumes it: moved tenants are no longer
//! on the server, and a move a dead process left is finished first.

use futures::StreamExt;
use serde::Serialize;

use super::MoveTenant;
use crate::Tenantry;
use crate::catalog::{Status, Strategy};
use crate::error::Result;

/// What [`Tenantry::drain_server`] does.
#[derive(Debug, Clone)]
pub struct Drain {
    pub server: String,
    /// Where every tenant goes; `None`: the least loaded server of its region per tenant.
    pub to: Option<String>,
    /// The strategy in the new place; each tenant's own when `None`.
    pub strategy: Option<Strategy>,
    /// Moves at a time (at least 1).
    pub concurrency: usize,
    /// Failed moves tolerated before no further move starts.
    pub max_failures: usize,
}

/// One tenant's move in a drain.
#[derive(Debug, Clone, Serialize)]
pub struct DrainStep {
    pub slug: String,
    /// The server it went to, or was to go to.
    pub to: Option<String>,
    pub rows: u64,
    pub pause_ms: u64,
    /// Why it did not move.
    pub error: Option<String>,
}

/// A drain's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Drained {
    pub server: String,
    pub steps: Vec<DrainStep>,
    pub moved: usize,
    pub failed: usize,
    /// Tenants still on the server (not live, failed, or not started past the budget).
    pub left: i64,
    /// Whether the failure budget stopped it.
    pub stopped: bool,
}

impl Tenantry {
    /// Moves every active and suspended tenant off `drain.server` (see the module), calling
    /// `each` after every move.
    pub async fn drain_server(
        &self,
        drain: Drain,
        each: impl Fn(&DrainStep) + Sync,
    ) -> Result<Drained> {
        let server = self.catalog.server(&drain.server).await?;
        self.catalog
            .set_server_draining(&drain.server, true)
            .await?;
        self.audited(
            None,
            "server.drain",
            Some(format!("server:{}", drain.server)),
            None,
        )
        .await;
        let mut tenants = Vec::new();
        self.catalog
            .each_tenant(|t| {
                if t.server == server.name && matches!(t.status, Status::Active | Status::Suspended)
                {
                    tenants.push(t);
                }
            })
            .await?;
        let region = server.region.clone();
        let failed = std::sync::atomic::AtomicUsize::new(0);
        let budget = drain.max_failures;
        let moves = futures::stream::iter(tenants)
            .map(|tenant| {
                let drain = &drain;
                let region = region.as_deref();
                let failed = &failed;
                let each = &each;
                async move {
                    if failed.load(std::sync::atomic::Ordering::SeqCst) > budget {
                        return None;
                    }
                    let strategy = drain.strategy.unwrap_or(tenant.strategy);
                    let to = match &drain.to {
                        Some(to) => Ok(to.clone()),
                        None => self.least_loaded(strategy, region).await,
                    };
                    let result = match &to {
                        Ok(to) => {
                            let req = MoveTenant {
                                to_server: to.clone(),
                                strategy: Some(strategy),
                            };
                            self.move_tenant(tenant.slug.as_str(), req).await
                        }
                        Err(_) => Err(crate::Error::MoveRefused {
                            slug: tenant.slug.to_string(),
                            detail: "no server to move it to".into(),
                        }),
                    };
                    let step = match (result, to) {
                        (Ok(moved), _) => DrainStep {
                            slug: tenant.slug.to_string(),
                            to: Some(moved.tenant.server.to_string()),
                            rows: moved.rows,
                            pause_ms: moved.pause_ms,
                            error: None,
                        },
                        (Err(e), to) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            DrainStep {
                                slug: tenant.slug.to_string(),
                                to: to.as_ref().ok().cloned(),
                                rows: 0,
                                pause_ms: 0,
                                error: Some(match to {
                                    Err(why) => why.to_string(),
                                    Ok(_) => e.to_string(),
                                }),
                            }
                        }
                    };
                    each(&step);
                    Some(step)
                }
            })
            .buffer_unordered(drain.concurrency.max(1));
        let steps: Vec<DrainStep> = moves.filter_map(|s| async { s }).collect().await;
        let failed = steps.iter().filter(|s| s.error.is_some()).count();
        Ok(Drained {
            server: drain.server.clone(),
            moved: steps.len() - failed,
            failed,
            left: self.catalog.live_tenants_on(&drain.server).await?,
            stopped: failed > budget,
            steps,
        })
    }

    /// Lets a drained server take new tenants again.
    pub async fn undrain_server(&self, name: &str) -> Result<()> {
        self.catalog.set_server_draining(name, false).await?;
        self.audited(None, "server.undrain", Some(format!("server:{name}")), None)
            .await;
        Ok(())
    }
}
