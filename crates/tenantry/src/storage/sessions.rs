//! Administrative connections a rollout hands from one unit to the next: a strategy whose
//! tenants live in their server's own database (schema) migrates each on a connection the
//! previous one used, instead of opening one per tenant. A connection is kept only after a
//! run without error, once its session is reset ([`engine::reuse`]); a rollout closes what
//! is left when it ends.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::{AnyConnection, Connection};

use super::Place;
use crate::engine::{self, Engine, Timeouts};

/// How a migration target's connection may be handed on: the key of the connections it is
/// interchangeable with, and how a fresh one is set up.
#[derive(Debug, Clone)]
pub struct Reuse {
    pub key: String,
    pub timeouts: Timeouts,
}

/// Idle administrative connections by key (a server's name), and the places of the
/// servers a rollout reached (read from the catalog once per rollout).
#[derive(Default)]
pub struct Sessions {
    idle: Mutex<HashMap<String, Vec<AnyConnection>>>,
    places: Mutex<HashMap<String, Place>>,
    /// Kept for a process's lifetime: places are read from the catalog each time, so a
    /// server's record changed meanwhile is seen.
    lasting: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Sessions")
            .field("idle", &idle.values().map(Vec::len).sum::<usize>())
            .field("lasting", &self.lasting)
            .finish()
    }
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Connections kept as long as a `Tenantry` lives (a spare's claim takes one and gives
    /// it back); no place is remembered.
    pub fn lasting() -> Sessions {
        Sessions {
            lasting: true,
            ..Sessions::default()
        }
    }

    /// The place of `server`, if this rollout looked it up already.
    pub fn place(&self, server: &str) -> Option<Place> {
        let places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        places.get(server).cloned()
    }

    /// Remembers the place of `server` for the rest of the rollout.
    pub fn keep_place(&self, server: &str, place: &Place) {
        if self.lasting {
            return;
        }
        let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        places.insert(server.to_owned(), place.clone());
    }

    /// An idle connection for `key`, if one is kept.
    pub fn take(&self, key: &str) -> Option<AnyConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.get_mut(key).and_then(Vec::pop)
    }

    /// Keeps `conn` for the next unit with the same key, once reset; closes it if the reset
    /// fails.
    pub async fn give(&self, reuse: &Reuse, engine: Engine, mut conn: AnyConnection) {
        if !engine::reuse(&mut conn, engine, &reuse.timeouts).await {
            let _ = conn.close().await;
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.entry(reuse.key.clone()).or_default().push(conn);
    }

    /// Closes every idle connection.
    pub async fn close(self) {
        let idle = self.idle.into_inner().unwrap_or_else(|p| p.into_inner());
        for conn in idle.into_values().flatten() {
            let _ = conn.close().await;
        }
    }
}
