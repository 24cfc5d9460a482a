//! What routing reads from the catalog (tenants by slug, id and host; users; memberships),
//! cached per process and dropped whenever the catalog's change counter moves.
//!
//! Invariants:
//! - a background task reads the counter every poll interval; when it moved, every entry is
//!   dropped, so a change written in any process is seen here within one interval (plus the
//!   read's own time);
//! - an entry loaded from the catalog is kept only if no drop happened while it was being
//!   loaded (the generation is unchanged), so a read that began before a change cannot
//!   re-insert what the change made stale;
//! - when the counter has not been confirmed for longer than `poll interval + 1 s` (the
//!   catalog is unreachable, or the task stalled), the cache is not trusted: lookups check the
//!   counter first, and fail if the catalog does not answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::catalog::{Catalog, Membership, Tenant, User};
use crate::error::Result;
use crate::ident::TenantId;

/// Entries kept before the cache starts over (a bound on memory under lookups of random
/// names).
const MAX_ENTRIES: usize = 200_000;

/// Cached catalog reads for routing.
#[derive(Debug)]
pub struct Directory {
    catalog: Catalog,
    poll: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped at every drop.
    generation: u64,
    /// The counter value the entries are consistent with.
    counter: Option<i64>,
    confirmed_at: Option<Instant>,
    entries: usize,
    by_slug: HashMap<String, Option<Arc<Tenant>>>,
    by_id: HashMap<TenantId, Option<Arc<Tenant>>>,
    by_host: HashMap<String, Option<TenantId>>,
    users: HashMap<String, Option<Arc<User>>>,
    memberships: HashMap<String, Arc<Vec<Membership>>>,
}

impl State {
    fn drop_all(&mut self, counter: Option<i64>) {
        let generation = self.generation + 1;
        *self = State {
            generation,
            counter,
            ..State::default()
        };
    }
}

impl Directory {
    /// A directory over `catalog`, with its polling task (which ends when the directory is
    /// dropped).
    pub fn new(catalog: Catalog, poll: Duration) -> Arc<Directory> {
        let directory = Arc::new(Directory {
            catalog,
            poll,
            state: Mutex::new(State::default()),
        });
        let weak = Arc::downgrade(&directory);
        tokio::spawn(poll_changes(weak, poll));
        directory
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the change counter and drops every entry if it moved.
    pub async fn refresh(&self) -> Result<()> {
        let counter = self.catalog.changes().await?;
        let mut state = self.state();
        if state.counter != Some(counter) {
            state.drop_all(Some(counter));
        }
        state.confirmed_at = Some(Instant::now());
        Ok(())
    }

    /// Checks the counter first when it was not confirmed recently.
    async fn ensure_fresh(&self) -> Result<u64> {
        let stale = {
            let state = self.state();
            match state.confirmed_at {
                Some(at) => at.elapsed() > self.poll + Duration::from_secs(1),
                None => true,
            }
        };
        if stale {
            self.refresh().await?;
        }
        Ok(self.state().generation)
    }

    /// Keeps an entry loaded under `generation` unless a drop happened meanwhile.
    fn keep(&self, generation: u64, put: impl FnOnce(&mut State)) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.entries >= MAX_ENTRIES {
            let counter = state.counter;
            state.drop_all(counter);
            return;
        }
        state.entries += 1;
        put(&mut state);
    }

    /// A tenant by slug.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Arc<Tenant>>> {
        let generation = self.ensure_fresh().await?;
        if let Some(hit) = self.state().by_slug.get(slug) {
            return Ok(hit.clone());
        }
        let found = self.catalog.find_tenant(slug).await?.map(Arc::new);
        self.keep(generation, |s| {
            s.by_slug.insert(slug.to_owned(), found.clone());
        });
        Ok(found)
    }

    /// A tenant by id.
    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Arc<Tenant>>> {
        let generation = self.ensure_fresh().await?;
        if let Some(hit) = self.state().by_id.get(&id) {
            return Ok(hit.clone());
        }
        let found = self.catalog.find_tenant_by_id(id).await?.map(Arc::new);
        self.keep(generation, |s| {
            s.by_id.insert(id, found.clone());
        });
        Ok(found)
    }

    /// A tenant by slug, or by id when the text is one.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Arc<Tenant>>> {
        if name.len() == 26
            && let Ok(id) = TenantId::parse(&name.to_ascii_uppercase())
            && let Some(found) = self.tenant_by_id(id).await?
        {
            return Ok(Some(found));
        }
        self.tenant_by_slug(name).await
    }

    /// The tenant a (normalised) host is a domain of.
    pub async fn tenant_by_host(&self, host: &str) -> Result<Option<Arc<Tenant>>> {
        let generation = self.ensure_fresh().await?;
        let cached = self.state().by_host.get(host).copied();
        let id = match cached {
            Some(id) => id,
            None => {
                let id = match self.catalog.domain(host).await? {
                    Some(domain) => TenantId::parse(&domain.tenant_id).ok(),
                    None => None,
                };
                self.keep(generation, |s| {
                    s.by_host.insert(host.to_owned(), id);
                });
                id
            }
        };
        match id {
            Some(id) => self.tenant_by_id(id).await,
            None => Ok(None),
        }
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<Arc<User>>> {
        let generation = self.ensure_fresh().await?;
        if let Some(hit) = self.state().users.get(id) {
            return Ok(hit.clone());
        }
        let found = self.catalog.user_by_id(id).await?.map(Arc::new);
        self.keep(generation, |s| {
            s.users.insert(id.to_owned(), found.clone());
        });
        Ok(found)
    }

    /// A user's memberships.
    pub async fn memberships(&self, user: &str) -> Result<Arc<Vec<Membership>>> {
        let generation = self.ensure_fresh().await?;
        if let Some(hit) = self.state().memberships.get(user) {
            return Ok(Arc::clone(hit));
        }
        let found = Arc::new(self.catalog.memberships(None, Some(user)).await?);
        self.keep(generation, |s| {
            s.memberships.insert(user.to_owned(), Arc::clone(&found));
        });
        Ok(found)
    }
}

async fn poll_changes(directory: Weak<Directory>, poll: Duration) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(directory) = directory.upgrade() else {
            return;
        };
        if let Err(e) = directory.refresh().await {
            tracing::warn!(error = %e, "could not read the catalog's change counter");
        }
    }
}
