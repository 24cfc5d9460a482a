//! How a pool's connections log in, built from catalog facts and kept by the manager: a
//! tenant's own role on its database or schema, the server's shared pool role, or the
//! tenant's SQLite file.

use std::sync::Arc;
use std::time::Duration;

use super::open::{self, Healer, Login, Session};
use super::watch::Ends;
use crate::Tenantry;
use crate::catalog::{SharedPool, Tenant};
use crate::crypto::Password;
use crate::engine::{self, Engine, sqlite};
use crate::error::{Error, Result};
use crate::storage::{Place, shared};

/// One pool: a tenant's own login, or a server's shared pool.
pub(crate) struct PoolSpec {
    /// The tenant's id, or `shared:<server>`.
    pub key: String,
    /// The server whose cap the pool's connections count against.
    pub server: String,
    pub place: Place,
    pub login: Login,
    /// Whether the login goes through a transaction-mode pooler ([`Place::behind_pooler`]).
    pub behind_pooler: bool,
    /// How long opening, beginning or resetting a connection may take (`connect_timeout`).
    pub wait: Duration,
    /// A shared pool's context key.
    pub context_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for PoolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSpec")
            .field("key", &self.key)
            .field("server", &self.server)
            .field("behind_pooler", &self.behind_pooler)
            .finish_non_exhaustive()
    }
}

/// Tenants of a shared pool share its connections: their pool is the server's.
pub(super) fn pool_key(tenant: &Tenant) -> String {
    if tenant.strategy.ops().pooled() {
        format!("shared:{}", tenant.server)
    } else {
        // A moved tenant's pool on its new server is another pool.
        format!("{}@{}", tenant.id, tenant.server)
    }
}

impl PoolSpec {
    /// Opens one connection for a unit of `slug`, within the connect timeout.
    pub(super) async fn open(&self, slug: &str, ends: &Ends) -> Result<Session> {
        match tokio::time::timeout(self.wait, self.login.open(ends)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(source)) if engine::is_auth_failure(&source) => Err(Error::TenantCredentials {
                tenant: slug.to_owned(),
                source,
            }),
            Ok(Err(source)) if self.login.engine() == Engine::Sqlite => {
                Err(Error::storage(slug, "open its database file")(source))
            }
            Ok(Err(source)) => Err(self.place.unreachable(source)),
            Err(_) => Err(self.place.timed_out(self.wait)),
        }
    }

    pub(super) fn healer(&self) -> Option<&Healer> {
        match &self.login {
            Login::Shared { healer, .. } => Some(healer),
            _ => None,
        }
    }
}

impl Tenantry {
    /// The tenant's pool: kept by the manager, built on first use from the tenant's record
    /// and its server's (the server's row, and its shared pool's, are read once).
    pub(super) async fn pool_spec(&self, tenant: &Tenant) -> Result<Arc<PoolSpec>> {
        let key = pool_key(tenant);
        if let Some(spec) = self.pools.spec(&key) {
            return Ok(spec);
        }
        let spec = self.build_spec(tenant, key).await?;
        Ok(self.pools.keep_spec(spec))
    }

    async fn server_place(&self, tenant: &Tenant) -> Result<Place> {
        let server = tenant.server.as_str();
        if let Some(place) = self.pools.place(server) {
            return Ok(place);
        }
        let place = self.place(tenant).await?;
        self.pools.keep_place(server, place.clone());
        Ok(place)
    }

    async fn server_shared_pool(&self, tenant: &Tenant) -> Result<SharedPool> {
        let server = tenant.server.as_str();
        if let Some(pool) = self.pools.shared_pool(server) {
            return Ok(pool);
        }
        let pool = self
            .catalog
            .shared_pool(server)
            .await?
            .ok_or_else(|| Error::VerifyFailed {
                tenant: tenant.slug.to_string(),
                detail: "its server has no shared pool; run `tenantry tenant repair`".into(),
            })?;
        self.pools.keep_shared_pool(server, pool.clone());
        Ok(pool)
    }

    async fn build_spec(&self, tenant: &Tenant, key: String) -> Result<PoolSpec> {
        let place = self.server_place(tenant).await?;
        let (login, context_key) = self.login(tenant, &place).await?;
        Ok(PoolSpec {
            key,
            server: tenant.server.to_string(),
            behind_pooler: place.behind_pooler(),
            wait: self.config.connect_timeout,
            context_key,
            login,
            place,
        })
    }

    /// How the tenant's connections log in (and, shared, the pool's context key).
    async fn login(&self, tenant: &Tenant, place: &Place) -> Result<(Login, Option<Vec<u8>>)> {
        let slug = tenant.slug.as_str();
        if place.engine() == Engine::Sqlite {
            let dir = place.dir()?;
            let file = sqlite::file_path(dir, &tenant.storage);
            let revoked = sqlite::revoked_path(dir, &tenant.storage);
            let login = Login::Sqlite {
                options: open::sqlite_options(&file),
                paths: Arc::new((file, revoked)),
            };
            return Ok((login, None));
        }
        let url = place.serve_url()?.to_owned();
        if tenant.strategy.ops().pooled() {
            let pool = self.server_shared_pool(tenant).await?;
            let password = shared::role_password(self, &pool)?;
            let database = shared::pool_database(&pool);
            let url = engine::url_with(
                &url,
                Some(database.as_str()),
                Some((pool.role.as_str(), password.as_str())),
            )?;
            let options =
                open::pg_options(&engine::driver_url(&url)).map_err(|e| place.unreachable(e))?;
            let context_key = shared::context_key(self, &pool)?;
            let login = Login::Shared {
                options: open::shared_options(options, place.behind_pooler()),
                healer: Arc::new(Healer {
                    place: place.clone(),
                    pool,
                    password,
                }),
            };
            return Ok((login, Some(context_key)));
        }
        let role = tenant.role.clone().ok_or_else(|| Error::VerifyFailed {
            tenant: slug.to_owned(),
            detail: "it has no login role; run `tenantry tenant repair`".into(),
        })?;
        let sealed = tenant.role_secret.clone().unwrap_or_default();
        let password = Password::parse(self.open_sealed(&sealed, &format!("tenant {slug:?}"))?)
            .ok_or_else(|| Error::CorruptCatalog {
                field: "role_secret",
                value: "(sealed)".into(),
            })?;
        // A tenant without a database of its own logs in to the server's (behind a pooler
        // too, whose URL may name another).
        let database = tenant
            .strategy
            .ops()
            .login_database(tenant)
            .or_else(|| place.url().ok().and_then(engine::url_database));
        let url = engine::url_with(
            &url,
            database.as_deref(),
            Some((role.as_str(), password.as_str())),
        )?;
        let url = engine::driver_url(&url).into_owned();
        let login = match place.engine() {
            Engine::Postgres => {
                Login::Postgres(open::pg_options(&url).map_err(|e| place.unreachable(e))?)
            }
            Engine::Mysql => {
                Login::Mysql(open::mysql_options(&url).map_err(|e| place.unreachable(e))?)
            }
            Engine::Sqlite => {
                return Err(Error::UnsupportedUrl {
                    url: place.name(),
                    reason: "an SQLite tenant has no login".into(),
                });
            }
        };
        Ok((login, None))
    }
}
