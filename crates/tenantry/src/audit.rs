//! The audit log: who made each change ([`act_as`], [`current_actor`]) and the check that the
//! hash chain the catalog keeps is whole ([`Tenantry::verify_audit`]).
//! [docs/0004](../../../docs/0004-control-plane.md).

use std::future::Future;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::Tenantry;
use crate::catalog::{AuditFilter, Event, GENESIS};
use crate::error::{Error, Result};

tokio::task_local! {
    static ACTOR: Arc<str>;
}

static PROCESS_ACTOR: RwLock<Option<Arc<str>>> = RwLock::new(None);

/// The actor of changes made outside any [`act_as`] scope (the CLI: `cli:<os user>`).
pub fn set_process_actor(actor: &str) {
    if let Ok(mut slot) = PROCESS_ACTOR.write() {
        *slot = Some(actor.into());
    }
}

/// Runs `fut` with `actor` recorded as the author of every change it makes (a request:
/// `key:<name>`). Tasks it spawns fall back to the process's actor.
pub async fn act_as<F: Future>(actor: &str, fut: F) -> F::Output {
    ACTOR.scope(actor.into(), fut).await
}

/// Who is making changes here: the [`act_as`] scope's actor, else the process's, else
/// `system`.
pub fn current_actor() -> String {
    if let Ok(actor) = ACTOR.try_with(|a| a.to_string()) {
        return actor;
    }
    match PROCESS_ACTOR.read() {
        Ok(slot) => slot.as_deref().unwrap_or("system").to_owned(),
        Err(_) => "system".to_owned(),
    }
}

/// The CLI's actor: `cli:` and the operating-system user running it (`$USER`, else the
/// name `/etc/passwd` gives the process's uid, else `uid:<n>`).
pub fn os_user_actor() -> String {
    if let Some(user) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    {
        return format!("cli:{user}");
    }
    format!("cli:{}", uid_name().unwrap_or_else(|| "unknown".to_owned()))
}

#[cfg(unix)]
fn uid_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid:{uid}")))
}

#[cfg(not(unix))]
fn uid_name() -> Option<String> {
    None
}

/// A time given by a user (RFC 3339), as the catalog writes times: UTC, milliseconds, `Z`,
/// so they compare as text.
pub fn parse_time(value: &str) -> Result<String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .map_err(|e| Error::InvalidTime {
            value: value.to_owned(),
            reason: format!("{e}; write it as RFC 3339, e.g. 2026-11-23T10:00:00Z"),
        })
}

/// What is wrong with the chain at its first break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Break {
    /// The entry's content no longer gives its hash.
    Edited,
    /// One or more entries before this one are gone.
    Deleted,
    /// The entry is not where it was written: it follows another entry.
    Reordered,
    /// The entries after this one are gone (the head records a later position).
    TailDeleted,
    /// A row carries no position: no append wrote it.
    Unchained,
}

/// The first break in the chain.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainBreak {
    pub kind: Break,
    /// The position (1-based, in chain order) where the chain stops holding.
    pub position: i64,
    /// The entry found there, if any.
    pub entry_id: Option<String>,
    pub detail: String,
}

/// The outcome of [`Tenantry::verify_audit`].
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditReport {
    /// Entries checked up to the first break (all of them when the chain is whole).
    pub checked: i64,
    /// Of those, entries of purged tenants whose personal fields were erased.
    pub erased: i64,
    pub head_seq: i64,
    pub first_break: Option<ChainBreak>,
}

impl AuditReport {
    pub fn is_valid(&self) -> bool {
        self.first_break.is_none()
    }
}

const PAGE: i64 = 1000;

impl Tenantry {
    /// Appends a successful change to the audit log after it was made; a failure to append
    /// is logged, not returned, since the change itself stands.
    pub(crate) async fn audited(
        &self,
        tenant: Option<&crate::Tenant>,
        action: &'static str,
        target: Option<String>,
        detail: Option<String>,
    ) {
        let event = crate::catalog::NewEvent {
            tenant,
            action,
            outcome: "ok",
            target,
            detail,
            error: None,
        };
        if let Err(e) = self.catalog().record(event).await {
            tracing::warn!(action, error = %e, "could not append to the audit log");
        }
    }

    /// Recomputes the audit chain from its first entry and reports the first entry that was
    /// edited, deleted or moved, a deleted tail, or a row that no append wrote.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        let catalog = self.catalog();
        let (head_seq, head_hash) = catalog.audit_head().await?;
        let purged = catalog.purged_tenant_ids().await?;
        let mut prev = GENESIS.to_owned();
        let mut position = 0_i64;
        let mut erased = 0_i64;
        loop {
            let page = catalog
                .audit_page(&AuditFilter::default(), position, PAGE)
                .await?;
            let Some(last) = page.last().and_then(|e| e.seq) else {
                break;
            };
            for entry in &page {
                let expected = position + 1;
                if let Some(kind) = self.judge(entry, expected, &prev, &purged).await? {
                    return Ok(broken(
                        expected - 1,
                        head_seq,
                        kind,
                        expected,
                        entry,
                        erased,
                    ));
                }
                erased += i64::from(entry.is_erased());
                prev = entry.hash.clone().unwrap_or_default();
                position = expected;
            }
            debug_assert_eq!(last, position);
        }
        if position < head_seq || (position == head_seq && prev != head_hash) {
            return Ok(AuditReport {
                checked: position,
                erased,
                head_seq,
                first_break: Some(ChainBreak {
                    kind: Break::TailDeleted,
                    position: position + 1,
                    entry_id: None,
                    detail: format!(
                        "the chain ends at position {position}, but its head records {head_seq}"
                    ),
                }),
            });
        }
        if let Some(row) = catalog.unchained_events().await?.first() {
            let detail = format!("event {} has no position in the chain", row.id);
            return Ok(AuditReport {
                checked: position,
                erased,
                head_seq,
                first_break: Some(ChainBreak {
                    kind: Break::Unchained,
                    position: position + 1,
                    entry_id: Some(row.id.clone()),
                    detail,
                }),
            });
        }
        Ok(AuditReport {
            checked: position,
            erased,
            head_seq,
            first_break: None,
        })
    }

    /// Why `entry`, found at `expected`, does not follow `prev`, if it does not. Its
    /// personal fields may be gone only if its tenant was `purged`.
    async fn judge(
        &self,
        entry: &Event,
        expected: i64,
        prev: &str,
        purged: &std::collections::HashSet<String>,
    ) -> Result<Option<Break>> {
        let own = entry.prev_hash.as_deref().unwrap_or_default();
        let erased_unpurged = entry.is_erased()
            && !entry
                .tenant_id
                .as_ref()
                .is_some_and(|id| purged.contains(id));
        if entry.hash.as_deref() != Some(entry.chained_hash(own).as_str())
            || !entry.seal_holds()
            || erased_unpurged
        {
            return Ok(Some(Break::Edited));
        }
        if own == prev && entry.seq == Some(expected) {
            return Ok(None);
        }
        if own == prev {
            // Linked right but numbered wrong: renumbered entries.
            return Ok(Some(Break::Reordered));
        }
        // It follows some other entry: still in the log (moved), or gone (deleted).
        let elsewhere = own != GENESIS && !self.catalog().audit_positions_of(own).await?.is_empty();
        Ok(Some(if elsewhere || own == GENESIS {
            Break::Reordered
        } else {
            Break::Deleted
        }))
    }
}

fn broken(
    checked: i64,
    head_seq: i64,
    kind: Break,
    position: i64,
    entry: &Event,
    erased: i64,
) -> AuditReport {
    let what = match kind {
        Break::Edited => "was edited: its content no longer gives its hash",
        Break::Deleted => "follows an entry that is no longer in the log",
        Break::Reordered => "was moved: it does not follow the entry before it",
        Break::TailDeleted | Break::Unchained => "breaks the chain",
    };
    AuditReport {
        checked,
        erased,
        head_seq,
        first_break: Some(ChainBreak {
            kind,
            position,
            entry_id: Some(entry.id.clone()),
            detail: format!(
                "entry {} ({} at {}) {what}",
                entry.id, entry.action, entry.at
            ),
        }),
    }
}
