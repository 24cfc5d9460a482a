//! The pool manager's state: per server, its permits and its pools' idle lists (least
//! recently used first), and what happens to a connection coming back, going idle too long,
//! or being closed. Every change is made under one lock, never held across an `await`;
//! connections are closed outside it, each permit returned once its server no longer lists
//! its session ([`super::watch`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::manager::Inner;
use super::open::Session;
use super::spec::PoolSpec;
use super::watch::Ends;
use crate::catalog::SharedPool;
use crate::ident::TenantId;
use crate::storage::Place;

/// The application connections of one server, as [`crate::Tenantry::pool_stats`] reports
/// them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerPoolStats {
    /// The server's name (for SQLite, the server whose directory holds the files).
    pub server: String,
    /// `pool_max_per_server`.
    pub cap: u32,
    /// Connections open (idle, in use, being opened or closed): never above `cap`.
    pub open: u32,
    pub idle: usize,
    /// Connections lent to units of work (or being opened for one).
    pub in_use: usize,
    /// Pools (a tenant's own, or the server's shared pool) with connections or units.
    pub pools: usize,
    /// Units of work waiting for one of the server's permits.
    pub waiting: usize,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) servers: HashMap<String, Server>,
    /// Units in flight per tenant.
    pub(super) tenants: HashMap<TenantId, Arc<Semaphore>>,
    /// How each pool logs in, by pool key, built from catalog facts ([`super::spec`]).
    pub(super) specs: HashMap<String, Arc<PoolSpec>>,
    /// Catalog facts about servers, read once per server: where it is, its shared pool.
    pub(super) places: HashMap<String, Place>,
    pub(super) shared_pools: HashMap<String, SharedPool>,
    /// A pool's generation: a connection lent before its pool was forgotten is closed when
    /// it comes back.
    pub(super) next_epoch: u64,
}

#[derive(Debug)]
pub(super) struct Server {
    pub(super) permits: Arc<Semaphore>,
    /// Its waiters (woken whenever a permit is freed or a connection goes idle), and the
    /// confirmation that a closed connection's session ended.
    pub(super) ends: Arc<Ends>,
    pub(super) pools: HashMap<String, Pool>,
    pub(super) waiting: usize,
}

#[derive(Debug)]
pub(super) struct Pool {
    /// Least recently used first.
    pub(super) idle: VecDeque<Idle>,
    pub(super) in_use: usize,
    pub(super) epoch: u64,
}

#[derive(Debug)]
pub(super) struct Idle {
    pub session: Session,
    pub permit: OwnedSemaphorePermit,
    pub since: Instant,
}

/// Connections taken out of the manager's state, to close outside its lock; each one's
/// permit is returned, and the server's waiters woken, once it is closed.
pub(super) type Closing = Vec<(Idle, Arc<Ends>)>;

impl State {
    pub(super) fn stats(&self, cap: u32) -> Vec<ServerPoolStats> {
        let mut stats: Vec<ServerPoolStats> = self
            .servers
            .iter()
            .map(|(name, server)| ServerPoolStats {
                server: name.clone(),
                cap,
                open: cap.saturating_sub(
                    u32::try_from(server.permits.available_permits()).unwrap_or(cap),
                ),
                idle: server.pools.values().map(|p| p.idle.len()).sum(),
                in_use: server.pools.values().map(|p| p.in_use).sum(),
                pools: server.pools.len(),
                waiting: server.waiting,
            })
            .collect();
        stats.sort_by(|a, b| a.server.cmp(&b.server));
        stats
    }
}

impl Server {
    pub(super) fn new(per_server: usize, place: Place) -> Server {
        Server {
            permits: Arc::new(Semaphore::new(per_server)),
            ends: Arc::new(Ends::new(place)),
            pools: HashMap::new(),
            waiting: 0,
        }
    }

    /// Counts a connection lent to a unit of the pool; returns the pool's generation.
    pub(super) fn lend(&mut self, key: &str) -> u64 {
        match self.pools.get_mut(key) {
            Some(pool) => {
                pool.in_use += 1;
                pool.epoch
            }
            None => 0,
        }
    }

    /// Takes the least recently used idle connection of any pool on the server.
    pub(super) fn least_recently_used(&mut self) -> Option<Idle> {
        let key = self
            .pools
            .iter()
            .filter_map(|(key, pool)| pool.idle.front().map(|idle| (idle.since, key)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, key)| key.clone())?;
        self.pools.get_mut(&key)?.idle.pop_front()
    }
}

impl Inner {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a reset connection back into its pool; hands it back to be closed if the pool
    /// was forgotten since it was lent.
    pub(super) fn put_idle(
        &self,
        spec: &PoolSpec,
        epoch: u64,
        session: Session,
        permit: OwnedSemaphorePermit,
    ) -> Option<Idle> {
        let idle = Idle {
            session,
            permit,
            since: Instant::now(),
        };
        let mut state = self.state();
        let Some(server) = state.servers.get_mut(&spec.server) else {
            return Some(idle);
        };
        let ends = Arc::clone(&server.ends);
        let Some(pool) = server.pools.get_mut(&spec.key) else {
            return Some(idle);
        };
        pool.in_use = pool.in_use.saturating_sub(1);
        if pool.epoch != epoch {
            return Some(idle);
        }
        pool.idle.push_back(idle);
        drop(state);
        ends.changed.notify_waiters();
        None
    }

    /// A lent connection is gone (closed): its permit is returned.
    pub(super) fn gone(&self, spec: &PoolSpec, permit: OwnedSemaphorePermit) {
        drop(permit);
        self.unlend(spec);
    }

    /// The pool no longer counts a connection as lent; the server's waiters look again.
    pub(super) fn unlend(&self, spec: &PoolSpec) {
        let ends = {
            let mut state = self.state();
            let Some(server) = state.servers.get_mut(&spec.server) else {
                return;
            };
            if let Some(pool) = server.pools.get_mut(&spec.key) {
                pool.in_use = pool.in_use.saturating_sub(1);
            }
            Arc::clone(&server.ends)
        };
        ends.changed.notify_waiters();
    }

    /// Takes out the connections idle longer than the idle timeout, and forgets the pools,
    /// logins and tenant semaphores no longer in use; with every server's ends.
    pub(super) fn expired(&self) -> (Closing, Vec<Arc<Ends>>) {
        let timeout = self.limits.idle_timeout;
        let mut state = self.state();
        let mut closing = Closing::new();
        let mut forgotten = Vec::new();
        for server in state.servers.values_mut() {
            for (key, pool) in &mut server.pools {
                while pool
                    .idle
                    .front()
                    .is_some_and(|idle| idle.since.elapsed() >= timeout)
                {
                    if let Some(idle) = pool.idle.pop_front() {
                        closing.push((idle, Arc::clone(&server.ends)));
                    }
                }
                if pool.idle.is_empty() && pool.in_use == 0 {
                    forgotten.push(key.clone());
                }
            }
            server
                .pools
                .retain(|_, pool| !pool.idle.is_empty() || pool.in_use > 0);
        }
        for key in forgotten {
            state.specs.remove(&key);
        }
        state
            .tenants
            .retain(|_, permits| Arc::strong_count(permits) > 1);
        let ends = state
            .servers
            .values()
            .map(|s| Arc::clone(&s.ends))
            .collect();
        (closing, ends)
    }
}

/// Closes connections; each one's permit is returned once its session ended.
pub(super) async fn close_all(closing: Closing) {
    for (idle, ends) in closing {
        ends.end(idle.session).await;
        drop(idle.permit);
        ends.changed.notify_waiters();
    }
}
