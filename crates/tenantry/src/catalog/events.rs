//! The event log, which is also the audit log: every lifecycle, migration and administrative
//! change, with its actor, in a hash chain ([docs/0004](../../../docs/0004-control-plane.md)).
//!
//! Every entry's personal fields (the tenant's slug, the target, the detail and the error)
//! enter the chain through a digest, its seal, salted with a random value kept beside them:
//! a purge erases a tenant's fields and salt ([`Catalog::erase_tenant_events`]) and the
//! chain still verifies, while the seal alone says nothing of what it sealed. Entries
//! written before seals existed hash their fields in and keep them.
//!
//! Invariants: events are never deleted, and never updated but by that erasure; every
//! append goes through [`insert`], which first moves the chain's head row, so concurrent
//! writers (in any process) queue on that row's lock and each entry links to the one
//! committed before it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use ulid::Ulid;

use super::{Catalog, Tenant, now};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ident::TenantId;

/// The link before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub tenant: Option<&'a Tenant>,
    /// What happened, e.g. `tenant.create`, `migrate.apply`.
    pub action: &'static str,
    /// `ok`, `failed` or `started`.
    pub outcome: &'static str,
    /// What the change was made to when it is not (only) a tenant, e.g. `apikey:deploy`;
    /// `tenant:<slug>` when left out and a tenant is given.
    pub target: Option<String>,
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// Which chained entries to read: at or after a time (RFC 3339, UTC), of one tenant.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<String>,
    pub tenant_id: Option<crate::ident::TenantId>,
}

/// A recorded event.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Position in the chain (1 for the first entry).
    pub seq: Option<i64>,
    pub id: String,
    pub at: String,
    /// Who made the change: `key:<name>`, `cli:<user>`, or `system`.
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub tenant_id: Option<String>,
    pub tenant: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub error: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    /// SHA-256 of the salt and the personal fields (slug, target, detail, error), which
    /// the hash covers instead of them; none on entries written before seals existed.
    pub seal: Option<String>,
    /// The seal's random salt; erased with the fields when the tenant is purged.
    pub salt: Option<String>,
}

pub(super) const COLUMNS: &str = "seq, id, at, actor, action, target, tenant_id, tenant_slug, \
                                  outcome, detail, error, prev_hash, hash, seal, seal_salt";

impl Event {
    pub(super) fn from_row(row: &AnyRow) -> std::result::Result<Event, sqlx::Error> {
        Ok(Event {
            seq: row.try_get("seq")?,
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            tenant_id: row.try_get("tenant_id")?,
            tenant: row.try_get("tenant_slug")?,
            outcome: row.try_get("outcome")?,
            detail: row.try_get("detail")?,
            error: row.try_get("error")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
            seal: row.try_get("seal")?,
            salt: row.try_get("seal_salt")?,
        })
    }

    /// The hash this entry must carry when it follows `prev`: SHA-256 over the previous hash
    /// and the canonical JSON of every field but its position, which the links already fix,
    /// with the personal fields given by their seal where the entry has one.
    pub fn chained_hash(&self, prev: &str) -> String {
        let fields = match &self.seal {
            Some(seal) => serde_json::json!([
                self.id,
                self.at,
                self.actor,
                self.action,
                self.tenant_id,
                self.outcome,
                seal,
            ]),
            None => serde_json::json!([
                self.id,
                self.at,
                self.actor,
                self.action,
                self.target,
                self.tenant_id,
                self.tenant,
                self.outcome,
                self.detail,
                self.error,
            ]),
        };
        digest(prev, &fields)
    }

    /// The seal of this entry's personal fields under `salt`.
    fn sealed_with(&self, salt: &str) -> String {
        let fields = serde_json::json!([self.target, self.tenant, self.detail, self.error]);
        digest(salt, &fields)
    }

    /// Whether the personal fields are those the seal was made of, or were erased with the
    /// salt (none left); always for an entry without a seal (its hash covers them).
    pub fn seal_holds(&self) -> bool {
        match (&self.seal, &self.salt) {
            (None, _) => true,
            (Some(seal), Some(salt)) => *seal == self.sealed_with(salt),
            (Some(_), None) => self.is_erased(),
        }
    }

    /// Whether the personal fields were erased (the tenant was purged).
    pub fn is_erased(&self) -> bool {
        self.seal.is_some()
            && self.salt.is_none()
            && self.target.is_none()
            && self.tenant.is_none()
            && self.detail.is_none()
            && self.error.is_none()
    }
}

/// SHA-256 over `key`, a newline and the JSON of `fields`, in hex.
fn digest(key: &str, fields: &serde_json::Value) -> String {
    let mut hash = Sha256::new();
    hash.update(key.as_bytes());
    hash.update(b"\n");
    hash.update(fields.to_string().as_bytes());
    hex::encode(hash.finalize())
}

/// A new seal's salt: 16 random bytes in hex.
fn new_salt() -> String {
    use aes_gcm::aead::OsRng;
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Events from their rows.
fn read_all(rows: &[AnyRow], action: &'static str) -> Result<Vec<Event>> {
    rows.iter()
        .map(Event::from_row)
        .collect::<std::result::Result<_, _>>()
        .map_err(Error::catalog(action))
}

/// Appends `event` on `conn` (a transaction's, to commit it with what it records): moves the
/// head row first, so the row lock orders this entry after every one committed before it.
pub(super) async fn insert(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    event: NewEvent<'_>,
) -> sqlx::Result<()> {
    let target = event
        .target
        .or_else(|| event.tenant.map(|t| format!("tenant:{}", t.slug)));
    let entry = Event {
        seq: None,
        id: Ulid::new().to_string(),
        at: now(),
        actor: Some(crate::audit::current_actor()),
        action: event.action.to_owned(),
        target,
        tenant_id: event.tenant.map(|t| t.id.to_string()),
        tenant: event.tenant.map(|t| t.slug.to_string()),
        outcome: event.outcome.to_owned(),
        detail: event.detail,
        error: event.error,
        prev_hash: None,
        hash: None,
        seal: None,
        salt: None,
    };
    append(conn, engine, sealed(entry)).await
}

/// `entry` with a fresh salt and the seal of its personal fields.
fn sealed(mut entry: Event) -> Event {
    let salt = new_salt();
    entry.seal = Some(entry.sealed_with(&salt));
    entry.salt = Some(salt);
    entry
}

async fn append(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    mut entry: Event,
) -> sqlx::Result<()> {
    sqlx::query(engine.sql("UPDATE tenantry_audit_head SET seq = seq + 1 WHERE id = 1"))
        .execute(&mut *conn)
        .await?;
    let head = sqlx::query(engine.sql("SELECT seq, hash FROM tenantry_audit_head WHERE id = 1"))
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("hash")?;
    let hash = entry.chained_hash(&prev);
    match entry.seq {
        // An entry written before the chain existed: link it where it stands.
        Some(_) => {
            sqlx::query(engine.sql(
                "UPDATE tenantry_events SET seq = ?, actor = ?, prev_hash = ?, hash = ? WHERE id = ?",
            ))
            .bind(seq)
            .bind(entry.actor.take())
            .bind(&prev)
            .bind(&hash)
            .bind(&entry.id)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query(engine.sql(
                "INSERT INTO tenantry_events (seq, id, at, actor, action, target, tenant_id, \
                 tenant_slug, outcome, detail, error, prev_hash, hash, seal, seal_salt) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(seq)
            .bind(entry.id)
            .bind(entry.at)
            .bind(entry.actor)
            .bind(entry.action)
            .bind(entry.target)
            .bind(entry.tenant_id)
            .bind(entry.tenant)
            .bind(entry.outcome)
            .bind(entry.detail)
            .bind(entry.error)
            .bind(&prev)
            .bind(&hash)
            .bind(entry.seal)
            .bind(entry.salt)
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query(engine.sql("UPDATE tenantry_audit_head SET hash = ? WHERE id = 1"))
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Links the entries written before the chain existed, oldest first (catalog migration 6).
pub(super) async fn chain_existing(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
) -> sqlx::Result<()> {
    loop {
        // Seals came later (catalog migration 10): these entries have none.
        let rows = sqlx::query(engine.sql(
            "SELECT seq, id, at, actor, action, target, tenant_id, tenant_slug, outcome, \
             detail, error, prev_hash, hash, NULL AS seal, NULL AS seal_salt \
             FROM tenantry_events WHERE seq IS NULL ORDER BY id LIMIT 500",
        ))
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let mut entry = Event::from_row(row)?;
            entry.seq = Some(0);
            entry.actor = Some("system".to_owned());
            append(conn, engine, entry).await?;
        }
    }
}

impl Catalog {
    /// Appends an event, with its actor, to the chain. Events are never updated or deleted.
    pub async fn record(&self, event: NewEvent<'_>) -> Result<()> {
        let action = "append an event";
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        insert(&mut tx, self.engine, event)
            .await
            .map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Appends the entry that closes a purge: of the tenant's id alone, written after its
    /// other entries were erased.
    pub(crate) async fn record_purged(
        &self,
        id: TenantId,
        outcome: &'static str,
        detail: Option<String>,
        error: Option<String>,
    ) -> Result<()> {
        let action = "append an event";
        let entry = Event {
            seq: None,
            id: Ulid::new().to_string(),
            at: now(),
            actor: Some(crate::audit::current_actor()),
            action: "tenant.purge".to_owned(),
            target: None,
            tenant_id: Some(id.to_string()),
            tenant: None,
            outcome: outcome.to_owned(),
            detail,
            error,
            prev_hash: None,
            hash: None,
            seal: None,
            salt: None,
        };
        let mut tx = self.pool.begin().await.map_err(Error::catalog(action))?;
        append(&mut tx, self.engine, sealed(entry))
            .await
            .map_err(Error::catalog(action))?;
        tx.commit().await.map_err(Error::catalog(action))
    }

    /// Erases the personal fields of every sealed entry of a purged tenant, with their
    /// salts: the entries keep the tenant's id, their action, actor, time and outcome, and
    /// the chain still verifies. Returns the entries erased, and those written before seals
    /// existed, which keep their fields (their hash covers them).
    pub(crate) async fn erase_tenant_events(&self, id: TenantId) -> Result<(u64, u64)> {
        let action = "erase a purged tenant's events";
        let erased = sqlx::query(self.engine.sql(
            "UPDATE tenantry_events SET tenant_slug = NULL, target = NULL, detail = NULL, \
             error = NULL, seal_salt = NULL WHERE tenant_id = ? AND seal IS NOT NULL",
        ))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        let unsealed: i64 = sqlx::query_scalar(
            self.engine
                .sql("SELECT COUNT(*) FROM tenantry_events WHERE tenant_id = ? AND seal IS NULL"),
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(Error::tenant_catalog(id, action))?;
        Ok((erased.rows_affected(), u64::try_from(unsealed).unwrap_or(0)))
    }

    /// The newest `limit` events, newest first; for one tenant when `tenant` is given.
    pub async fn events(&self, tenant: Option<&Tenant>, limit: i64) -> Result<Vec<Event>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(self.engine.sql_built(format!(
                    "SELECT {COLUMNS} FROM tenantry_events WHERE tenant_id = ? \
                     ORDER BY id DESC LIMIT ?"
                )))
                .bind(t.id.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(self.engine.sql_built(format!(
                    "SELECT {COLUMNS} FROM tenantry_events ORDER BY id DESC LIMIT ?"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(Error::catalog("read events"))?;
        read_all(&rows, "read events")
    }

    /// Up to `limit` chained entries after position `after`, in chain order, that pass
    /// `filter`.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let mut sql = format!("SELECT {COLUMNS} FROM tenantry_events WHERE seq > ?");
        if filter.since.is_some() {
            sql.push_str(" AND at >= ?");
        }
        if filter.tenant_id.is_some() {
            sql.push_str(" AND tenant_id = ?");
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        let mut query = sqlx::query(self.engine.sql_built(sql)).bind(after);
        if let Some(since) = &filter.since {
            query = query.bind(since.clone());
        }
        if let Some(id) = &filter.tenant_id {
            query = query.bind(id.to_string());
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("read the audit log"))?;
        read_all(&rows, "read the audit log")
    }

    /// The chain's head: the last position and hash, as the last append left them.
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let action = "read the audit log's head";
        let row = sqlx::query(
            self.engine
                .sql("SELECT seq, hash FROM tenantry_audit_head WHERE id = 1"),
        )
        .fetch_one(&self.pool)
        .await
        .map_err(Error::catalog(action))?;
        let seq = row.try_get("seq").map_err(Error::catalog(action))?;
        let hash = row.try_get("hash").map_err(Error::catalog(action))?;
        Ok((seq, hash))
    }

    /// Entries no append wrote: rows without a position (inserted behind Tenantry's back).
    pub async fn unchained_events(&self) -> Result<Vec<Event>> {
        let rows = sqlx::query(self.engine.sql_built(format!(
            "SELECT {COLUMNS} FROM tenantry_events WHERE seq IS NULL ORDER BY id LIMIT 100"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read the audit log"))?;
        read_all(&rows, "read the audit log")
    }

    /// The ids of the tenants a chained `tenant.purge` entry names: the only tenants whose
    /// entries may be erased.
    pub async fn purged_tenant_ids(&self) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar(self.engine.sql(
            "SELECT DISTINCT tenant_id FROM tenantry_events \
             WHERE action = 'tenant.purge' AND seq IS NOT NULL AND tenant_id IS NOT NULL",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read the audit log"))?;
        Ok(ids.into_iter().collect())
    }

    /// The positions of entries whose hash is `hash` (how `audit verify` tells a moved entry
    /// from a deleted one).
    pub async fn audit_positions_of(&self, hash: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            self.engine
                .sql("SELECT seq FROM tenantry_events WHERE hash = ? AND seq IS NOT NULL"),
        )
        .bind(hash)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::catalog("read the audit log"))?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("seq"))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::catalog("read the audit log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Event {
        Event {
            seq: Some(1),
            id: "01JBZ0000000000000000000AA".into(),
            at: "2026-11-01T10:00:00.000Z".into(),
            actor: Some("cli:ops".into()),
            action: "tenant.create".into(),
            target: Some("tenant:acme".into()),
            tenant_id: Some("01JBZ0000000000000000000BB".into()),
            tenant: Some("acme".into()),
            outcome: "ok".into(),
            detail: Some("on local".into()),
            error: None,
            prev_hash: Some(GENESIS.into()),
            hash: None,
            seal: None,
            salt: None,
        }
    }

    #[test]
    fn an_entry_from_before_seals_hashes_as_it_always_did() {
        // SHA-256 of the genesis hash, a newline and the JSON of all ten fields.
        assert_eq!(
            entry().chained_hash(GENESIS),
            "0205788e6f4004d3a665e758d8bd7762a86180498121777a1e93a580cbcf3a9f"
        );
        assert!(entry().seal_holds());
    }

    #[test]
    fn a_sealed_entry_erased_keeps_its_hash_and_a_slug_written_back_breaks_its_seal() {
        let one = sealed(entry());
        let hash = one.chained_hash(GENESIS);
        assert!(one.seal_holds());
        let mut erased = one.clone();
        (erased.target, erased.tenant, erased.detail, erased.salt) = (None, None, None, None);
        assert!(erased.is_erased() && erased.seal_holds());
        assert_eq!(erased.chained_hash(GENESIS), hash);
        let mut named = erased.clone();
        named.tenant = Some("acme".into());
        assert!(!named.seal_holds());
        let mut edited = one.clone();
        edited.detail = Some("on elsewhere".into());
        assert!(!edited.seal_holds());
        // Two seals of the same fields differ: the salt is random.
        assert_ne!(sealed(entry()).seal, one.seal);
    }
}
