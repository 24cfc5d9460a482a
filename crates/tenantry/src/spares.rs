//! Spares: tenant storage built ahead of time, so that creating a tenant claims one and only
//! verifies it.
//!
//! A spare is a tenant row in status `spare` (slug `spare-<id>`) whose storage was
//! provisioned, migrated and verified like a tenant's, then closed to every login (its role
//! may not log in; an SQLite spare's file is marked revoked). Spares are live: rollouts
//! migrate them with the fleet. A create claims a spare only when the catalog shows it at the
//! set's latest version with the set's ledger digest — never a stale one — and then verifies
//! it under its lock as any new tenant (ledger, checksums, tables) before opening it to its
//! role. Nothing ever logged in to a spare, so its identity sequences are as a fresh
//! tenant's. Without a current spare, a create builds the tenant's storage as before.

use serde::Serialize;

use crate::Tenantry;
use crate::catalog::{Status, Strategy, Tenant};
use crate::error::{Error, Result};
use crate::ident::{Slug, TenantId};
use crate::lifecycle::Provision;
use crate::migrate::MigrationSet;

/// Every spare's slug begins with this; a tenant's may not.
pub const SLUG_PREFIX: &str = "spare-";

/// Refuses a tenant slug in the spares' namespace.
pub(crate) fn refuse_spare_slug(slug: &Slug) -> Result<()> {
    if slug.as_str().starts_with(SLUG_PREFIX) {
        return Err(Error::InvalidName {
            kind: "slug",
            value: slug.to_string(),
            reason: "slugs beginning with `spare-` name spares",
        });
    }
    Ok(())
}

/// How many spares a server keeps for a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpareCount {
    pub server: String,
    pub strategy: Strategy,
    /// Spares a create may claim: at the set's latest version with its ledger digest.
    pub current: usize,
    /// Spares a rollout has yet to bring to the latest version.
    pub behind: usize,
    /// Spares whose build failed (`tenantry tenant repair` or `spares remove`).
    pub failed: usize,
}

impl Tenantry {
    /// Builds `count` spares on `server` (the default server when `None`) for `strategy`
    /// (the default strategy when `None`), one after another; each is provisioned, migrated
    /// and verified like a tenant, then closed to every login. Returns them. A shared
    /// tenant's create writes no storage, so the shared strategy has no spares.
    pub async fn add_spares(
        &self,
        server: Option<&str>,
        strategy: Option<Strategy>,
        count: usize,
    ) -> Result<Vec<Tenant>> {
        let server = server.unwrap_or(&self.config.default_server);
        let strategy = strategy.unwrap_or(self.config.default_strategy);
        if strategy.ops().pooled() {
            return Err(Error::NoSpares {
                strategy: strategy.to_string(),
            });
        }
        let set = self.migrations()?;
        let mut built = Vec::with_capacity(count);
        for _ in 0..count {
            let slug = Slug::new(&format!(
                "{SLUG_PREFIX}{}",
                TenantId::generate().to_string().to_lowercase()
            ))?;
            let name = slug.to_string();
            let (row, _) = self
                .insert_provisioning(slug, name, (server, strategy), &set, None, None)
                .await?;
            built.push(self.provision(row, &set, Provision::Spare).await?);
        }
        Ok(built)
    }

    /// The spares per server and strategy, against the current migration set.
    pub async fn spare_counts(&self) -> Result<Vec<SpareCount>> {
        let set = self.migrations()?;
        let digest = set.digest();
        let mut counts: Vec<SpareCount> = Vec::new();
        for t in self.spare_rows().await? {
            let i = match counts
                .iter()
                .position(|c| c.server == t.server.as_str() && c.strategy == t.strategy)
            {
                Some(i) => i,
                None => {
                    counts.push(SpareCount {
                        server: t.server.to_string(),
                        strategy: t.strategy,
                        current: 0,
                        behind: 0,
                        failed: 0,
                    });
                    counts.len() - 1
                }
            };
            let count = &mut counts[i];
            if t.status != Status::Spare {
                count.failed += 1;
            } else if crate::migrate::fleet::is_current(&t, &set, &digest) {
                count.current += 1;
            } else {
                count.behind += 1;
            }
        }
        counts.sort_by(|a, b| {
            (&a.server, a.strategy.as_str()).cmp(&(&b.server, b.strategy.as_str()))
        });
        Ok(counts)
    }

    /// Deletes the spares of `server` and `strategy` (every server or strategy when `None`),
    /// failed builds included, at most `limit` of them; returns how many.
    pub async fn remove_spares(
        &self,
        server: Option<&str>,
        strategy: Option<Strategy>,
        limit: Option<usize>,
    ) -> Result<usize> {
        let mut removed = 0;
        for t in self.spare_rows().await? {
            if limit.is_some_and(|limit| removed >= limit) {
                break;
            }
            if server.is_some_and(|s| s != t.server.as_str())
                || strategy.is_some_and(|s| s != t.strategy)
                || t.status == Status::Provisioning
            {
                continue;
            }
            self.delete_tenant(t.slug.as_str(), true).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Every spare row, and every row a spare's build left `failed` or `provisioning`.
    async fn spare_rows(&self) -> Result<Vec<Tenant>> {
        let mut rows = self.catalog.tenants().await?;
        rows.retain(|t| {
            t.status == Status::Spare
                || (t.slug.as_str().starts_with(SLUG_PREFIX)
                    && matches!(t.status, Status::Failed | Status::Provisioning))
        });
        Ok(rows)
    }

    /// Makes tenant `slug` of a current spare of `server` and `strategy`, if there is one:
    /// the spare is verified under its lock (ledger, checksums, tables), opened to its role,
    /// then renamed and made `active` in one catalog write that only a spare still `spare`
    /// passes. A spare that fails verification is marked `failed` (its error recorded) and
    /// the next one is tried. `None`: no spare could be claimed; build the tenant anew.
    pub(crate) async fn create_from_spare(
        &self,
        slug: &Slug,
        name: &str,
        server: &str,
        strategy: Strategy,
        set: &MigrationSet,
    ) -> Result<Option<Tenant>> {
        if strategy.ops().pooled() {
            return Ok(None);
        }
        let digest = set.digest();
        // A few candidates, in case another create claims the first one meanwhile.
        let candidates = self
            .catalog
            .current_spares(server, strategy, set.latest(), &digest, 4)
            .await?;
        if candidates.is_empty() || !self.catalog.server_accepts_tenants(server).await? {
            return Ok(None);
        }
        for id in candidates {
            let Some(spare) = self.catalog.find_tenant_by_id(id).await? else {
                continue;
            };
            if spare.status != Status::Spare {
                continue;
            }
            let opened = async {
                let version = self.verify_spare(&spare, set).await?;
                self.open_spare(&spare).await?;
                Ok::<_, Error>(version)
            }
            .await;
            let version = match opened {
                Ok(version) => version,
                // Claimed or removed by someone else meanwhile.
                Err(Error::InvalidTransition { .. } | Error::Locked { .. }) => continue,
                // Its storage is not what its record says: never to be claimed.
                Err(
                    e @ (Error::VerifyFailed { .. }
                    | Error::ChecksumMismatch { .. }
                    | Error::MigrationMissing { .. }
                    | Error::MigrationFailed { .. }
                    | Error::MigrationRefused { .. }
                    | Error::Dirty { .. }),
                ) => {
                    self.spare_failed(&spare, &e).await;
                    continue;
                }
                // The server or the catalog did not answer: the spare is not to blame, and
                // building the tenant anew meets the same trouble and reports it.
                Err(e) => {
                    tracing::warn!(spare = %spare.slug, error = %e, "could not claim a spare");
                    return Ok(None);
                }
            };
            // If another create won the spare, it is that tenant's now: its access stays.
            match self.catalog.claim_spare(id, slug, name, version).await {
                Ok(Some(tenant)) => return Ok(Some(tenant)),
                Ok(None) => {}
                // Still a spare (the slug was taken meanwhile, say): closed again.
                Err(e) => {
                    if let Err(closing) = self.set_access(&spare, false).await {
                        tracing::warn!(spare = %spare.slug, error = %closing, "could not close a spare");
                    }
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Verifies a spare as a new tenant is verified (pending migrations applied, ledger,
    /// checksums, tables), under its lock, on a kept administrative connection where its
    /// strategy has one. Returns its version.
    async fn verify_spare(&self, spare: &Tenant, set: &MigrationSet) -> Result<i64> {
        let kept = Some(self.kept.as_ref());
        let target = self.migration_target_in(spare, kept).await?;
        let run = self
            .run_migrations_in(target, set, true, spare, &[Status::Spare], kept)
            .await?;
        match run.error {
            Some(e) => Err(e),
            None => Ok(run.version),
        }
    }

    /// Lets a spare's role log in: on a kept connection where its strategy has one (given
    /// back after), otherwise as any tenant's access is granted.
    async fn open_spare(&self, spare: &Tenant) -> Result<()> {
        let ops = spare.strategy.ops();
        if let Some(key) = ops.session_key(spare)
            && let Some(mut conn) = self.kept.take(&key)
        {
            let allowed = match ops.allow_on(&mut conn, spare) {
                Some(allowing) => allowing.await.is_ok(),
                None => false,
            };
            if allowed {
                let place = self.place(spare).await?;
                let engine = place.engine();
                let reuse = crate::storage::Reuse {
                    key,
                    timeouts: place
                        .with_statement_timeout(self.config.migration_statement_timeout)
                        .timeouts(),
                };
                self.kept.give(&reuse, engine, conn).await;
                return Ok(());
            }
            // Gone while idle, or refused: a fresh connection decides.
            let _ = sqlx::Connection::close(conn).await;
        }
        self.set_access(spare, true).await
    }

    /// Records that a spare failed its verification: `failed`, with the error, closed again.
    async fn spare_failed(&self, spare: &Tenant, error: &Error) {
        let error = error.to_string();
        tracing::warn!(spare = %spare.slug, error = %error, "a spare failed verification");
        let event = crate::catalog::NewEvent {
            tenant: Some(spare),
            action: "spare.claim",
            outcome: "failed",
            target: None,
            detail: None,
            error: Some(error.clone()),
        };
        let moved = self
            .catalog
            .transition_recorded(
                spare.id,
                &[Status::Spare],
                Status::Failed,
                Some(&error),
                Some(event),
            )
            .await;
        if let Err(e) = moved {
            tracing::error!(spare = %spare.slug, error = %e, "could not record the failure");
        }
        if let Err(e) = self.set_access(spare, false).await {
            tracing::warn!(spare = %spare.slug, error = %e, "could not close a failed spare");
        }
    }
}
