//! The pool manager: every application connection this process opens, whatever the tenant,
//! strategy or engine ([docs/0002](../../../../docs/0002-serving-requests.md), "Pool
//! manager").
//!
//! - Per server, a semaphore of `pool_max_per_server` permits: one is held by every *open*
//!   connection, idle or in use (and by one being opened or closed), so the server never
//!   sees more connections from this process than that, at 10 tenants or at 10,000.
//! - Per tenant, a semaphore of `pool_max_connections` permits: one per unit of work.
//! - Per pool (a tenant's own login, or a server's shared pool), a list of idle
//!   connections, most recently used last. Acquiring takes the most recently used idle
//!   connection of the pool; else a server permit and a new connection; else it closes the
//!   least recently used idle connection of another pool on the server and takes its
//!   permit; else it waits, up to `pool_acquire_timeout_ms`, for one of those to become
//!   possible, and fails with [`Error::Busy`].
//! - A reaper task closes connections idle longer than `pool_idle_timeout_secs` and forgets
//!   pools left empty; it holds the manager weakly and ends when the manager is dropped.
//!
//! A connection goes back to its pool only after its reset ([`super::lease`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::lease::{Lease, Parts};
use super::open::Session;
use super::spec::PoolSpec;
use super::state::{Closing, Idle, Pool, Server, ServerPoolStats, State, close_all};
use super::watch::Ends;
use crate::catalog::SharedPool;
use crate::config::Config;
use crate::error::{BusyLimit, Error, Result};
use crate::ident::TenantId;
use crate::storage::Place;

/// The manager; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct PoolManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) limits: Limits,
    pub(super) state: Mutex<State>,
    reaper: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub per_server: u32,
    pub per_tenant: u32,
    pub acquire_timeout: Duration,
    pub idle_timeout: Duration,
}

/// What one look at the server's state decided.
enum Step {
    Reuse(Idle, u64, Arc<Ends>),
    /// Open a connection with this permit, after closing the connection it came from.
    Open(OwnedSemaphorePermit, Option<Session>, u64, Arc<Ends>),
    Wait(tokio::sync::futures::OwnedNotified),
}

impl PoolManager {
    pub(crate) fn new(config: &Config) -> PoolManager {
        PoolManager {
            inner: Arc::new(Inner {
                limits: Limits {
                    per_server: config.pool_max_per_server,
                    per_tenant: config.pool_max_connections,
                    acquire_timeout: config.pool_acquire_timeout,
                    idle_timeout: config.pool_idle_timeout,
                },
                state: Mutex::new(State::default()),
                reaper: AtomicBool::new(false),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// `pool_max_per_server`.
    pub(super) fn per_server(&self) -> usize {
        self.inner.limits.per_server as usize
    }

    /// The semaphore bounding a tenant's units in flight, shared by every handle.
    pub(super) fn tenant_permits(&self, tenant: TenantId) -> Arc<Semaphore> {
        let per_tenant = self.inner.limits.per_tenant as usize;
        let mut state = self.state();
        Arc::clone(
            state
                .tenants
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(per_tenant))),
        )
    }

    pub(super) fn spec(&self, key: &str) -> Option<Arc<PoolSpec>> {
        self.state().specs.get(key).cloned()
    }

    /// Keeps a spec, unless another caller kept one for the key first (that one is returned).
    pub(super) fn keep_spec(&self, spec: PoolSpec) -> Arc<PoolSpec> {
        let mut state = self.state();
        Arc::clone(
            state
                .specs
                .entry(spec.key.clone())
                .or_insert_with(|| Arc::new(spec)),
        )
    }

    pub(super) fn place(&self, server: &str) -> Option<Place> {
        self.state().places.get(server).cloned()
    }

    pub(super) fn keep_place(&self, server: &str, place: Place) {
        self.state().places.insert(server.to_owned(), place);
    }

    pub(super) fn shared_pool(&self, server: &str) -> Option<SharedPool> {
        self.state().shared_pools.get(server).cloned()
    }

    pub(super) fn keep_shared_pool(&self, server: &str, pool: SharedPool) {
        self.state().shared_pools.insert(server.to_owned(), pool);
    }

    /// A connection of the pool for a unit of the tenant `slug`, whose units `tenant` bounds.
    pub(super) async fn acquire(
        &self,
        spec: &Arc<PoolSpec>,
        slug: &str,
        tenant: &Arc<Semaphore>,
    ) -> Result<Lease> {
        self.start_reaper();
        let limits = self.inner.limits;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + limits.acquire_timeout;
        let busy = |limit| Error::Busy {
            server: spec.server.clone(),
            tenant: slug.to_owned(),
            waited: started.elapsed(),
            limit,
        };
        let unit = match tokio::time::timeout_at(deadline, Arc::clone(tenant).acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(busy(BusyLimit::Tenant {
                    max: limits.per_tenant,
                }));
            }
        };
        loop {
            match self.step(spec) {
                Step::Reuse(idle, epoch, ends) => {
                    let parts = Parts {
                        session: idle.session,
                        permit: idle.permit,
                        unit,
                        spec: Arc::clone(spec),
                        ends,
                        epoch,
                        manager: Arc::clone(&self.inner),
                    };
                    return Ok(Lease::new(parts, false));
                }
                Step::Open(permit, victim, epoch, ends) => {
                    // Counted as lent from here: unless it is handed out, the pool stops
                    // counting it however the acquisition ends (an error, a cancellation),
                    // after the permit, declared later, is dropped.
                    let mut opening = Opening {
                        inner: &self.inner,
                        spec,
                        armed: true,
                    };
                    let permit = permit;
                    if let Some(victim) = victim {
                        ends.end(victim).await;
                    }
                    let session = spec.open(slug, &ends).await?;
                    opening.armed = false;
                    let parts = Parts {
                        session,
                        permit,
                        unit,
                        spec: Arc::clone(spec),
                        ends,
                        epoch,
                        manager: Arc::clone(&self.inner),
                    };
                    return Ok(Lease::new(parts, true));
                }
                Step::Wait(changed) => {
                    let waiting = Waiting {
                        inner: &self.inner,
                        server: &spec.server,
                    };
                    let waited = tokio::time::timeout_at(deadline, changed).await;
                    drop(waiting);
                    if waited.is_err() {
                        return Err(busy(BusyLimit::Server {
                            cap: limits.per_server,
                        }));
                    }
                }
            }
        }
    }

    /// One look at the server, under the lock: reuse, open (maybe in place of another pool's
    /// idle connection), or wait.
    fn step(&self, spec: &PoolSpec) -> Step {
        let per_server = self.inner.limits.per_server as usize;
        let mut guard = self.state();
        let state = &mut *guard;
        let server = state
            .servers
            .entry(spec.server.clone())
            .or_insert_with(|| Server::new(per_server, spec.place.clone()));
        // Registered before anything is checked, so no change after the checks is missed.
        let changed = Arc::clone(&server.ends.changed).notified_owned();
        let ends = Arc::clone(&server.ends);
        if !server.pools.contains_key(&spec.key) {
            state.next_epoch += 1;
            let pool = Pool {
                idle: VecDeque::new(),
                in_use: 0,
                epoch: state.next_epoch,
            };
            server.pools.insert(spec.key.clone(), pool);
        }
        let reuse = server
            .pools
            .get_mut(&spec.key)
            .and_then(|pool| pool.idle.pop_back().map(|idle| (idle, pool.epoch)));
        if let Some((idle, epoch)) = reuse {
            server.lend(&spec.key);
            return Step::Reuse(idle, epoch, ends);
        }
        let opening = match Arc::clone(&server.permits).try_acquire_owned() {
            Ok(permit) => Some((permit, None)),
            Err(_) => server
                .least_recently_used()
                .map(|victim| (victim.permit, Some(victim.session))),
        };
        match opening {
            Some((permit, victim)) => Step::Open(permit, victim, server.lend(&spec.key), ends),
            None => {
                server.waiting += 1;
                Step::Wait(changed)
            }
        }
    }

    /// Whether this process keeps anything of pool `key`: its login, or open connections.
    pub(crate) fn holds(&self, key: &str) -> bool {
        let state = self.state();
        state.specs.contains_key(key)
            || state.servers.values().any(|server| {
                server
                    .pools
                    .get(key)
                    .is_some_and(|pool| !pool.idle.is_empty() || pool.in_use > 0)
            })
    }

    /// Closes the idle connections of a pool and makes those in use close when they come
    /// back (its login changed, or its tenant may no longer log in).
    pub(crate) async fn forget_pool(&self, key: &str) {
        let closing = {
            let mut state = self.state();
            state.specs.remove(key);
            let State {
                servers,
                next_epoch,
                ..
            } = &mut *state;
            let mut closing = Closing::new();
            for server in servers.values_mut() {
                if let Some(pool) = server.pools.get_mut(key) {
                    *next_epoch += 1;
                    pool.epoch = *next_epoch;
                    for idle in pool.idle.drain(..) {
                        closing.push((idle, Arc::clone(&server.ends)));
                    }
                }
            }
            closing
        };
        close_all(closing).await;
    }

    /// Forgets everything about a server's pools: their logins, idle connections (closed)
    /// and connections in use (closed when they come back); and the server itself, with
    /// its administrative connection, if none of its connections is in use.
    pub(crate) async fn forget_server(&self, server: &str) {
        let keys: Vec<String> = {
            let mut state = self.state();
            state.places.remove(server);
            state.shared_pools.remove(server);
            let mut keys: Vec<String> = state
                .servers
                .get(server)
                .map(|s| s.pools.keys().cloned().collect())
                .unwrap_or_default();
            keys.extend(
                state
                    .specs
                    .values()
                    .filter(|spec| spec.server == server)
                    .map(|spec| spec.key.clone()),
            );
            keys
        };
        for key in keys {
            self.forget_pool(&key).await;
        }
        let ends = {
            let mut state = self.state();
            let unused = state.servers.get(server).is_some_and(|s| {
                s.pools
                    .values()
                    .all(|pool| pool.in_use == 0 && pool.idle.is_empty())
            });
            if unused {
                state.servers.remove(server).map(|s| s.ends)
            } else {
                None
            }
        };
        if let Some(ends) = ends {
            ends.rest(Duration::ZERO).await;
        }
    }

    pub(crate) fn stats(&self) -> Vec<ServerPoolStats> {
        self.state().stats(self.inner.limits.per_server)
    }

    /// Starts the reaper with the first acquisition (a runtime is at hand then).
    fn start_reaper(&self) {
        if self.inner.reaper.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let every = (self.inner.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else {
                    break;
                };
                let idle_timeout = inner.limits.idle_timeout;
                let (closing, ends) = inner.expired();
                drop(inner);
                close_all(closing).await;
                for ends in ends {
                    ends.rest(idle_timeout).await;
                }
            }
        });
    }
}

/// A connection being opened for a unit, counted in its pool until it is handed out or the
/// acquisition ends otherwise.
struct Opening<'a> {
    inner: &'a Inner,
    spec: &'a PoolSpec,
    armed: bool,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.unlend(self.spec);
        }
    }
}

/// An acquisition counted as waiting on its server, until it stops waiting.
struct Waiting<'a> {
    inner: &'a Inner,
    server: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(server) = self.inner.state().servers.get_mut(self.server) {
            server.waiting = server.waiting.saturating_sub(1);
        }
    }
}
