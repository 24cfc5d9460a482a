//! Closing a server's connections, and confirming that they are gone before their permits
//! go back. A PostgreSQL backend or MySQL thread whose client closed is still listed by its
//! server for the moment it takes to exit; a connection opened under the same permit in that
//! moment would make the server count one more than the cap. So each connection's session id
//! is read when it opens, and once it is closed, the server's own list is read (through one
//! administrative connection per server, closed when unused for the idle timeout) until the
//! session is gone — within [`CLOSE_WAIT`], never longer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection};
use tokio::sync::Notify;

use super::open::Session;
use crate::engine::Engine;
use crate::storage::Place;

/// How long closing a connection, and confirming its session ended, may take.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How often the server's list is read while a closed session is still on it.
const RECHECK: Duration = Duration::from_millis(2);

/// A server's side of its connections' ends: the waiters to wake when a permit or an idle
/// connection becomes available, and the confirmation that a closed session is gone.
#[derive(Debug)]
pub(super) struct Ends {
    pub changed: Arc<Notify>,
    place: Place,
    watcher: tokio::sync::Mutex<Option<AnyConnection>>,
    used: Mutex<Instant>,
}

impl Ends {
    pub(super) fn new(place: Place) -> Ends {
        Ends {
            changed: Arc::new(Notify::new()),
            place,
            watcher: tokio::sync::Mutex::new(None),
            used: Mutex::new(Instant::now()),
        }
    }

    /// Whether closed sessions are confirmed gone on the server. Not behind a
    /// transaction-mode pooler: a session there is the pooler's server connection, which
    /// outlives the client's, and the cap counts the connections to the pooler (which caps
    /// its server connections itself).
    pub(super) fn tracks_sessions(&self) -> bool {
        !self.place.behind_pooler()
    }

    /// Closes a connection and, if its server lists sessions, waits until its session is
    /// no longer listed (within [`CLOSE_WAIT`]: a server that cannot say is not waited on
    /// longer).
    pub(super) async fn end(&self, session: Session) {
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        let _ = tokio::time::timeout_at(deadline, session.conn.close()).await;
        if let Some(id) = session.id
            && tokio::time::timeout_at(deadline, self.gone(id))
                .await
                .is_err()
        {
            tracing::warn!(server = %self.place.name(), session = id, "a closed session was still listed by its server");
        }
    }

    /// Waits until the server no longer lists session `id`.
    async fn gone(&self, id: i64) {
        let mut watcher = self.watcher.lock().await;
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        loop {
            if watcher.is_none() {
                match self.place.admin_at(None).await {
                    Ok(conn) => *watcher = Some(conn),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot confirm that closed sessions ended");
                        return;
                    }
                }
            }
            let Some(conn) = watcher.as_mut() else {
                return;
            };
            match listed(conn, self.place.engine(), id).await {
                Ok(false) => return,
                Ok(true) => tokio::time::sleep(RECHECK).await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot confirm that closed sessions ended");
                    *watcher = None;
                    return;
                }
            }
        }
    }

    /// Closes the administrative connection if it was not used for `idle`.
    pub(super) async fn rest(&self, idle: Duration) {
        let used = *self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.elapsed() < idle {
            return;
        }
        let Ok(mut watcher) = self.watcher.try_lock() else {
            return;
        };
        if let Some(conn) = watcher.take() {
            let _ = tokio::time::timeout(CLOSE_WAIT, conn.close()).await;
        }
    }
}

/// Whether the server still lists session `id`.
async fn listed(conn: &mut AnyConnection, engine: Engine, id: i64) -> sqlx::Result<bool> {
    let sql = match engine {
        Engine::Postgres => "SELECT COUNT(*) FROM pg_catalog.pg_stat_activity WHERE pid = ?",
        Engine::Mysql => "SELECT COUNT(*) FROM information_schema.processlist WHERE id = ?",
        Engine::Sqlite => return Ok(false),
    };
    let n: i64 = sqlx::query_scalar(engine.sql(sql))
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}
