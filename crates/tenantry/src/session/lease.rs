//! A connection lent to one unit of work, and its way back: reset (a unit left open rolled
//! back first), then idle in its pool; or closed, its permit returned, when the reset fails
//! or its pool was forgotten meanwhile. A lease dropped without being released (a unit
//! dropped without commit or rollback) goes the same way in a task of its own.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::manager::Inner;
use super::open::{Conn, Session};
use super::spec::PoolSpec;
use super::watch::Ends;

pub(super) struct Lease {
    parts: Option<Parts>,
    fresh: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("pool", &self.parts.as_ref().map(|p| &p.spec.key))
            .field("fresh", &self.fresh)
            .finish()
    }
}

/// What a lease holds.
pub(super) struct Parts {
    pub session: Session,
    /// The server permit the open connection holds.
    pub permit: OwnedSemaphorePermit,
    /// The tenant's permit for this unit; returned once the connection is back.
    pub unit: OwnedSemaphorePermit,
    pub spec: Arc<PoolSpec>,
    /// Its server's: who to wake, and how to confirm a closed session ended.
    pub ends: Arc<Ends>,
    /// The pool's generation when it was lent.
    pub epoch: u64,
    pub manager: Arc<Inner>,
}

impl Lease {
    /// `fresh`: the connection was opened for this lease (not reused from the pool).
    pub(super) fn new(parts: Parts, fresh: bool) -> Lease {
        Lease {
            parts: Some(parts),
            fresh,
        }
    }

    /// Whether the connection was opened for this lease (not reused from the pool).
    pub(super) fn fresh(&self) -> bool {
        self.fresh
    }

    pub(super) fn conn(&mut self) -> Option<&mut Conn> {
        self.parts.as_mut().map(|p| &mut p.session.conn)
    }

    /// Resets the connection and puts it back in its pool (or closes it).
    pub(super) async fn release(mut self) {
        if let Some(parts) = self.parts.take() {
            parts.give_back().await;
        }
    }

    /// Closes the connection (it failed) and returns its permits.
    pub(super) async fn discard(mut self) {
        if let Some(parts) = self.parts.take() {
            let Parts {
                session,
                permit,
                unit,
                spec,
                ends,
                manager,
                ..
            } = parts;
            ends.end(session).await;
            manager.gone(&spec, permit);
            drop(unit);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(parts) = self.parts.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(parts.give_back());
            }
            // No runtime to reset it on: the connection is dropped, which closes it.
            Err(_) => {
                let Parts {
                    session,
                    permit,
                    spec,
                    manager,
                    ..
                } = parts;
                drop(session);
                manager.gone(&spec, permit);
            }
        }
    }
}

impl Parts {
    async fn give_back(self) {
        let Parts {
            mut session,
            permit,
            unit,
            spec,
            ends,
            epoch,
            manager,
        } = self;
        match tokio::time::timeout(spec.wait, session.conn.reset(&spec.login)).await {
            Ok(Ok(())) => {
                if let Some(idle) = manager.put_idle(&spec, epoch, session, permit) {
                    ends.end(idle.session).await;
                    drop(idle.permit);
                    ends.changed.notify_waiters();
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::debug!(pool = %spec.key, error = %why, "closing a connection whose reset failed");
                ends.end(session).await;
                manager.gone(&spec, permit);
            }
        }
        drop(unit);
    }
}
