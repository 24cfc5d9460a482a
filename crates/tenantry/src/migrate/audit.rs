//! `migrate verify`: the thorough check a rollout skips. Each selected unit (a tenant, or a
//! server's shared pool once for all its tenants) has its ledger checked against the set
//! (every row by [`super::apply::check_ledger`], every version present) and its schema read
//! ([`crate::engine::Dialect::introspect`]) and compared with a reference's: by default the
//! first active tenant of the same engine and strategy at the set's latest version, or one
//! named for its whole engine. The ledger table itself is not compared.
//!
//! Reads only: no lock is taken, nothing is recorded. Units are opened with the configured
//! concurrency, each on a connection of its own that is closed when it is read.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use sqlx::Connection;

use super::MigrationSet;
use super::drift::{self, Change, Drift, Object};
use super::fleet::units;
use super::history::{MigrationState, read_ledger, refusal};
use super::ledger::{self, LedgerRow};
use super::rollout::Selection;
use super::verify::expected_tables;
use crate::Tenantry;
use crate::catalog::{Status, Strategy, Tenant};
use crate::engine::Engine;
use crate::engine::shape::Shape;
use crate::error::{Error, Result};

/// What `migrate verify` is asked.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Every tenant that is not deleted, or these slugs (an unknown one is an error before
    /// anything is opened).
    pub tenants: Selection,
    /// The tenant every unit of its engine is compared with (default: per engine and
    /// strategy, the first active tenant at the set's latest version).
    pub reference: Option<String>,
}

/// The verdict on every selected unit, in catalog order.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The set's highest version.
    pub latest: i64,
    pub units: Vec<UnitReport>,
}

/// One unit's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct UnitReport {
    /// The tenant's slug, or `shared pool on <server>`.
    pub unit: String,
    /// The selected tenants it stands for (several for a shared pool).
    pub tenants: Vec<String>,
    pub engine: Engine,
    pub strategy: Strategy,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    /// The ledger holds the set exactly; the schema is the reference's (`reference: None`:
    /// none was found, and the tables the set creates are all there).
    Clean { reference: Option<String> },
    /// The ledger or the schema differ.
    Drifted {
        reference: Option<String>,
        ledger: Vec<LedgerProblem>,
        schema: Vec<Drift>,
    },
    /// The unit could not be read.
    Failed { error: String },
    /// Not live (provisioning, failed, deleting): `tenant repair` first.
    Skipped { reason: String },
}

/// A version the ledger does not hold as the set has it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerProblem {
    pub version: i64,
    /// `pending` (not in the ledger), `dirty`, `missing_file`, `changed_file`.
    pub state: MigrationState,
    pub detail: String,
}

impl VerifyReport {
    fn count(&self, pred: impl Fn(&Verdict) -> bool) -> usize {
        self.units.iter().filter(|u| pred(&u.verdict)).count()
    }

    pub fn clean(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Clean { .. }))
    }

    pub fn drifted(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Drifted { .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Failed { .. }))
    }

    pub fn skipped(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Skipped { .. }))
    }

    /// No unit drifted or failed.
    pub fn is_clean(&self) -> bool {
        self.drifted() == 0 && self.failed() == 0
    }
}

/// A unit to verify: its lead tenant (whose migration target is the unit's) and engine.
struct Unit {
    lead: Tenant,
    tenants: Vec<String>,
    engine: Engine,
}

/// Something with its place in the report.
type Placed<T> = (usize, T);

/// The selected tenants: units to open, and tenants reported skipped.
struct Grouped {
    units: Vec<Placed<Unit>>,
    skipped: Vec<Placed<UnitReport>>,
}

/// A reference's slug and schema.
struct Reference {
    slug: String,
    shape: Shape,
}

impl Tenantry {
    /// Verifies the selected tenants' ledgers and schemas against `set` and a reference.
    /// An unknown tenant or reference is an error before anything is opened; a unit that
    /// cannot be read is its verdict (`Failed`), and the others go on.
    pub async fn verify_migrations(
        &self,
        set: &MigrationSet,
        request: &VerifyRequest,
    ) -> Result<VerifyReport> {
        let all: Vec<Tenant> = self
            .catalog
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != Status::Deleted)
            .collect();
        let engines: HashMap<String, Engine> = self
            .catalog
            .servers()
            .await?
            .into_iter()
            .map(|s| (s.name.to_string(), s.engine))
            .collect();
        let engine_of = |t: &Tenant| {
            engines
                .get(t.server.as_str())
                .copied()
                .ok_or_else(|| Error::ServerNotFound {
                    name: t.server.to_string(),
                })
        };
        let selected = match &request.tenants {
            Selection::All => all.clone(),
            Selection::Slugs(slugs) => {
                let mut picked: Vec<Tenant> = Vec::with_capacity(slugs.len());
                for slug in slugs {
                    let t = self.catalog.tenant(slug).await?;
                    if !picked.iter().any(|p| p.id == t.id) {
                        picked.push(t);
                    }
                }
                picked
            }
        };
        let Grouped { units, skipped } = group(selected, &engine_of)?;

        let references = self
            .references(set, request, &all, &units, &engine_of)
            .await?;
        let references = &references;
        let verdicts: Vec<Placed<UnitReport>> = futures::stream::iter(units)
            .map(|(at, unit)| async move {
                let reference = references
                    .get(&(unit.engine, unit.lead.strategy))
                    .and_then(Option::as_deref);
                let verdict = self.verify_unit(&unit.lead, set, reference).await;
                let name = match unit.lead.strategy.ops().pooled() {
                    true => format!("shared pool on {}", unit.lead.server),
                    false => unit.lead.slug.to_string(),
                };
                let report = UnitReport {
                    unit: name,
                    tenants: unit.tenants,
                    engine: unit.engine,
                    strategy: unit.lead.strategy,
                    verdict,
                };
                (at, report)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut reports: Vec<Placed<UnitReport>> = skipped;
        reports.extend(verdicts);
        reports.sort_by_key(|(at, _)| *at);
        Ok(VerifyReport {
            latest: set.latest(),
            units: reports.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// One reference per engine and strategy of `units`, each read once: the named one for
    /// its whole engine, the default for the others.
    async fn references(
        &self,
        set: &MigrationSet,
        request: &VerifyRequest,
        all: &[Tenant],
        units: &[Placed<Unit>],
        engine_of: &impl Fn(&Tenant) -> Result<Engine>,
    ) -> Result<HashMap<(Engine, Strategy), Option<Arc<Reference>>>> {
        let explicit = match &request.reference {
            Some(slug) => Some(self.explicit_reference(slug, engine_of).await?),
            None => None,
        };
        let mut references = HashMap::new();
        for (_, unit) in units {
            let group = (unit.engine, unit.lead.strategy);
            if references.contains_key(&group) {
                continue;
            }
            let chosen = match &explicit {
                Some((engine, reference)) if *engine == unit.engine => Some(reference.clone()),
                _ => self
                    .default_reference(set, all, group, engine_of)
                    .await
                    .map(Arc::new),
            };
            references.insert(group, chosen);
        }
        Ok(references)
    }

    /// The named reference, read: it must be live; it serves its whole engine.
    async fn explicit_reference(
        &self,
        slug: &str,
        engine_of: &impl Fn(&Tenant) -> Result<Engine>,
    ) -> Result<(Engine, Arc<Reference>)> {
        let tenant = self.catalog.tenant(slug).await?;
        if !tenant.status.is_live() {
            return Err(Error::InvalidTransition {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                action: "serve as the reference",
                hint: "; name an active or suspended tenant",
            });
        }
        let engine = engine_of(&tenant)?;
        let shape = self.read_shape(&tenant).await?;
        let slug = tenant.slug.to_string();
        Ok((engine, Arc::new(Reference { slug, shape })))
    }

    /// The first active tenant of `group` at the set's latest version, read; `None` if
    /// there is none or it cannot be read (its units are then checked for the set's tables).
    async fn default_reference(
        &self,
        set: &MigrationSet,
        all: &[Tenant],
        (engine, strategy): (Engine, Strategy),
        engine_of: &impl Fn(&Tenant) -> Result<Engine>,
    ) -> Option<Reference> {
        let tenant = all.iter().find(|t| {
            t.status == Status::Active
                && t.strategy == strategy
                && t.version == set.latest()
                && engine_of(t).ok() == Some(engine)
        })?;
        match self.read_shape(tenant).await {
            Ok(shape) => Some(Reference {
                slug: tenant.slug.to_string(),
                shape,
            }),
            Err(error) => {
                tracing::warn!(tenant = %tenant.slug, %error, "the reference could not be read");
                None
            }
        }
    }

    /// A unit's schema, without the ledger table.
    pub(crate) async fn read_shape(&self, tenant: &Tenant) -> Result<Shape> {
        let target = self.migration_target(tenant).await?;
        let (owner, engine, mut conn) = (target.owner, target.engine, target.conn);
        let shape = engine.dialect().introspect(&mut conn).await;
        let _ = conn.close().await;
        let mut shape = shape.map_err(Error::storage(&owner, "read its schema"))?;
        shape.tables.retain(|name, _| !ledger::is_ledger(name));
        Ok(shape)
    }

    /// Reads and judges one unit. Never an error: a failure is the unit's verdict.
    async fn verify_unit(
        &self,
        lead: &Tenant,
        set: &MigrationSet,
        reference: Option<&Reference>,
    ) -> Verdict {
        let read = async {
            let target = self.migration_target(lead).await?;
            let (owner, engine, mut conn) = (target.owner, target.engine, target.conn);
            let read = async {
                let rows = read_ledger(&mut conn, engine, &owner).await?;
                let shape = engine
                    .dialect()
                    .introspect(&mut conn)
                    .await
                    .map_err(Error::storage(&owner, "read its schema"))?;
                Ok::<_, Error>((rows.unwrap_or_default(), shape))
            }
            .await;
            let _ = conn.close().await;
            read.map(|(rows, shape)| (owner, rows, shape))
        };
        let (owner, rows, mut shape) = match read.await {
            Ok(read) => read,
            Err(e) => {
                return Verdict::Failed {
                    error: e.to_string(),
                };
            }
        };
        shape.tables.retain(|name, _| !ledger::is_ledger(name));
        let ledger = ledger_problems(&owner, &rows, set);
        let schema = match reference {
            Some(reference) => drift::compare(&reference.shape, &shape),
            None => missing_tables(set, &shape),
        };
        let reference = reference.map(|r| r.slug.clone());
        if ledger.is_empty() && schema.is_empty() {
            Verdict::Clean { reference }
        } else {
            Verdict::Drifted {
                reference,
                ledger,
                schema,
            }
        }
    }
}

/// The selected tenants as units ([`units`]: live shared tenants of one server form one, their
/// pool), each placed in the report where its first tenant was selected; a tenant that is
/// not live is reported skipped in its own place.
fn group(selected: Vec<Tenant>, engine_of: &impl Fn(&Tenant) -> Result<Engine>) -> Result<Grouped> {
    let place: HashMap<String, usize> = selected
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.to_string(), i))
        .collect();
    let place_of = |t: &Tenant| place.get(&t.id.to_string()).copied().unwrap_or(usize::MAX);
    let (live, rest): (Vec<Tenant>, Vec<Tenant>) =
        selected.into_iter().partition(|t| t.status.is_live());
    let mut skipped: Vec<Placed<UnitReport>> = Vec::new();
    for tenant in rest {
        let reason = match tenant.status {
            Status::Deleted => "tenant is deleted; its storage was dropped".to_owned(),
            status => format!(
                "tenant is {status}; run `tenantry tenant repair {}`",
                tenant.slug
            ),
        };
        let report = UnitReport {
            unit: tenant.slug.to_string(),
            tenants: vec![tenant.slug.to_string()],
            engine: engine_of(&tenant)?,
            strategy: tenant.strategy,
            verdict: Verdict::Skipped { reason },
        };
        skipped.push((place_of(&tenant), report));
    }
    let mut grouped: Vec<Placed<Unit>> = Vec::new();
    for unit in units(live) {
        let tenants = unit.iter().map(|t| t.slug.to_string()).collect();
        let Some(lead) = unit.into_iter().next() else {
            continue;
        };
        let unit = Unit {
            engine: engine_of(&lead)?,
            tenants,
            lead,
        };
        grouped.push((place_of(&unit.lead), unit));
    }
    Ok(Grouped {
        units: grouped,
        skipped,
    })
}

/// Every ledger row the ledger check refuses, then every version of the set the ledger
/// lacks.
fn ledger_problems(owner: &str, rows: &[LedgerRow], set: &MigrationSet) -> Vec<LedgerProblem> {
    let mut problems: Vec<LedgerProblem> = rows
        .iter()
        .filter_map(|row| {
            refusal(owner, row, set).map(|(state, detail)| LedgerProblem {
                version: row.version,
                state,
                detail,
            })
        })
        .collect();
    for migration in set.iter() {
        if !rows.iter().any(|r| r.version == migration.version) {
            problems.push(LedgerProblem {
                version: migration.version,
                state: MigrationState::Pending,
                detail: format!(
                    "migration {} ({}) is not in the ledger",
                    migration.version, migration.description
                ),
            });
        }
    }
    problems.sort_by_key(|p| p.version);
    problems
}

/// Without a reference: the tables the set creates that `shape` lacks.
fn missing_tables(set: &MigrationSet, shape: &Shape) -> Vec<Drift> {
    expected_tables(set)
        .into_iter()
        .filter(|t| !shape.tables.keys().any(|k| k.eq_ignore_ascii_case(t)))
        .map(|t| Drift {
            table: t.clone(),
            object: Object::Table,
            name: t,
            change: Change::Missing,
            expected: None,
            found: None,
        })
        .collect()
}
