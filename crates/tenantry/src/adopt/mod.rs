//! Adopting what exists: an existing database or schema registered as a tenant, its
//! ledger baselined from what its schema already holds ([`baseline`]); nothing of it is
//! dropped or rewritten. The tenant keeps the storage's own name
//! ([`crate::ident::StorageName::existing`]); its role is given the tables that were there
//! before, and the set's later migrations are applied as at any create.
//!
//! Everything that can refuse the storage is checked before anything is written: the
//! catalog row, then the baseline ledger (in one transaction), then the
//! provisioning every tenant goes through. A failure before provisioning removes the row
//! again; one during provisioning leaves the tenant `failed`, resumed by `repair`.

pub mod baseline;
pub mod split;

use serde::Serialize;

use crate::Tenantry;
use crate::catalog::{Status, Strategy, Tenant};
use crate::error::{Error, Result};
use crate::ident::{ServerName, Slug, StorageName, TenantId};
use crate::lifecycle::Provision;
use crate::migrate::drift::{self, Change};
use crate::migrate::{MigrationSet, ledger};
pub use baseline::BaselineSource;

/// What `adopt_tenant` needs.
#[derive(Debug, Clone)]
pub struct AdoptTenant {
    pub slug: String,
    /// Display name; the slug when empty.
    pub name: Option<String>,
    pub server: String,
    /// The existing database (database strategy; for SQLite the file `<name>.db` in the
    /// server's directory; for `local`, `<data dir>/tenants`) or schema (schema strategy).
    pub storage: String,
    pub strategy: Strategy,
    /// The version its schema holds, when it has no `_sqlx_migrations` to say so (or, with
    /// one, the version it must record).
    pub baseline: Option<i64>,
}

/// An adopted tenant.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Adopted {
    pub tenant: Tenant,
    /// The version its ledger was started at.
    pub baseline: i64,
    pub source: BaselineSource,
    /// Tables the migration set does not create (kept; they are the tenant's data too).
    pub extra_tables: Vec<String>,
}

impl Tenantry {
    /// Registers an existing database or schema as tenant `slug`: refused with
    /// [`Error::AdoptRefused`], before anything is written, unless its schema holds the
    /// set's migrations up to a baseline (see [`baseline`]) and no tenant has it already.
    pub async fn adopt_tenant(&self, req: AdoptTenant) -> Result<Adopted> {
        let slug = Slug::new(&req.slug)?;
        crate::spares::refuse_spare_slug(&slug)?;
        let storage = StorageName::existing(&req.storage)?;
        let set = self.migrations()?;
        let refuse = |detail: String| Error::AdoptRefused {
            storage: storage.to_string(),
            server: req.server.clone(),
            detail,
        };
        if let Some(existing) = self.catalog.find_tenant(slug.as_str()).await? {
            return Err(Error::TenantExists {
                slug: slug.to_string(),
                status: existing.status,
            });
        }
        if req.strategy.ops().pooled() {
            return Err(refuse(
                "a shared tenant's rows are not a storage of their own; `tenantry tenant split` turns a shared database into tenants".into(),
            ));
        }
        let server = self.catalog.server(&req.server).await?;
        let place = crate::storage::Place::of(&server, &self.config);
        place.check_strategy(req.strategy, server.name.as_str())?;
        let tenants = self.catalog.tenants().await?;
        if let Some(other) = tenants
            .iter()
            .find(|t| t.server == server.name && t.storage == storage)
        {
            return Err(refuse(format!(
                "it is tenant {:?}'s storage",
                other.slug.as_str()
            )));
        }
        let probe = self.probe(&slug, &server.name, &storage, req.strategy);
        if !self.storage_exists(&probe).await? {
            let what = match req.strategy {
                Strategy::Schema => "schema",
                _ => "database",
            };
            return Err(refuse(format!("the server has no {what} of that name")));
        }
        let found = self.read_baseline(&probe, &set, req.baseline).await?;
        let found = found.map_err(&refuse)?;
        // A peer: an active tenant of the same engine and strategy at the baseline.
        let engines: std::collections::HashMap<ServerName, crate::Engine> = self
            .catalog
            .servers()
            .await?
            .into_iter()
            .map(|s| (s.name, s.engine))
            .collect();
        let peer = tenants.into_iter().find(|t| {
            t.status == Status::Active
                && t.strategy == req.strategy
                && t.version == found.version
                && engines.get(&t.server) == Some(&server.engine)
        });
        self.compare_with_peer(&probe, peer, &set, found.version)
            .await?
            .map_err(&refuse)?;

        let name = req
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| slug.to_string());
        let (tenant, _) = self
            .insert_provisioning(
                slug,
                name,
                (server.name.as_str(), req.strategy),
                &set,
                None,
                Some(storage.clone()),
            )
            .await?;
        let detail = format!(
            "{storage} at version {} ({})",
            found.version,
            match found.source {
                BaselineSource::Sqlx => "from _sqlx_migrations",
                BaselineSource::Given => "given",
            }
        );
        if let Err(e) = self.write_baseline(&tenant, &set, found.version).await {
            self.catalog.discard_tenant(tenant.id).await?;
            return Err(e);
        }
        self.event(&tenant, "tenant.adopt", "started", Some(detail), None)
            .await;
        let tenant = self.provision(tenant, &set, Provision::Tenant).await?;
        Ok(Adopted {
            tenant,
            baseline: found.version,
            source: found.source,
            extra_tables: found.extra_tables,
        })
    }

    /// A tenant of the storage that is not in the catalog: for reading it before then.
    fn probe(
        &self,
        slug: &Slug,
        server: &ServerName,
        storage: &StorageName,
        strategy: Strategy,
    ) -> Tenant {
        Tenant::provisioning(
            TenantId::generate(),
            slug.clone(),
            slug.to_string(),
            (server.clone(), strategy),
            storage.clone(),
        )
    }

    async fn read_baseline(
        &self,
        probe: &Tenant,
        set: &MigrationSet,
        given: Option<i64>,
    ) -> Result<std::result::Result<baseline::Baseline, String>> {
        let target = self.migration_target(probe).await?;
        let (engine, mut conn) = (target.engine, target.conn);
        let read = baseline::read(&mut conn, engine, set, given).await;
        let _ = sqlx::Connection::close(conn).await;
        read.map_err(Error::storage(probe.storage.as_str(), "read its schema"))
    }

    /// With `peer`, an active tenant of the same engine and strategy at `version`: the set's
    /// tables defined as in that tenant (columns, indexes, constraints).
    async fn compare_with_peer(
        &self,
        probe: &Tenant,
        peer: Option<Tenant>,
        set: &MigrationSet,
        version: i64,
    ) -> Result<std::result::Result<(), String>> {
        let Some(peer) = peer else {
            return Ok(Ok(()));
        };
        let expected = crate::migrate::verify::expected_tables(&set.up_to(version));
        let reference = self.read_shape(&peer).await?;
        let found = self.read_shape(probe).await?;
        let drifts: Vec<String> = drift::compare(&reference, &found)
            .into_iter()
            .filter(|d| d.change != Change::Extra && expected.contains(&d.table))
            .map(|d| d.to_string())
            .collect();
        if drifts.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "its tables differ from tenant {:?}'s at version {version}: {}",
            peer.slug.as_str(),
            drifts.join("; ")
        )))
    }

    /// The ledger started at `version`: a row for each of the set's migrations up to it,
    /// with the set's checksums, in one transaction that first finds it empty. (No migration
    /// lock is held: a storage's lock exists only once it is provisioned. Two adoptions of
    /// one storage at once cannot both write it: the ledger's key is the version.)
    async fn write_baseline(
        &self,
        tenant: &Tenant,
        set: &MigrationSet,
        version: i64,
    ) -> Result<()> {
        let target = self.migration_target(tenant).await?;
        let (owner, engine, mut conn) = (target.owner, target.engine, target.conn);
        let result = async {
            ledger::ensure(&mut conn)
                .await
                .map_err(Error::storage(&owner, "create the migration ledger"))?;
            let mut tx = sqlx::Connection::begin(&mut conn)
                .await
                .map_err(Error::storage(&owner, "begin"))?;
            let rows = ledger::read(&mut tx)
                .await
                .map_err(Error::storage(&owner, "read the migration ledger"))?;
            if !rows.is_empty() {
                return Err(Error::AdoptRefused {
                    storage: tenant.storage.to_string(),
                    server: tenant.server.to_string(),
                    detail: "another command started its Tenantry ledger meanwhile".into(),
                });
            }
            for migration in set.up_to(version).iter() {
                ledger::insert(&mut tx, engine, migration, ledger::APPLIED, 0)
                    .await
                    .map_err(Error::storage(&owner, "write the baseline ledger"))?;
            }
            tx.commit()
                .await
                .map_err(Error::storage(&owner, "write the baseline ledger"))
        }
        .await;
        let _ = sqlx::Connection::close(conn).await;
        result
    }
}
