//! Who is calling: the API key of every `/v1` request, its scopes and tenant, and the
//! throttle on failed attempts. A request runs with its key's name as the audit log's actor.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tenantry::{ApiKey, Error, Scope, Tenant};

use crate::AppState;
use crate::problem::Problem;

/// The caller of a `/v1` request: its live API key.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey);

impl Caller {
    /// Refuses a key without `scope` (`403`).
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(scope))
        }
    }

    /// For a resource of the whole fleet: a key bound to a tenant is told it does not
    /// exist (`404`), so it learns nothing.
    pub fn fleet(&self, scope: Scope, what: &str) -> Result<(), Problem> {
        if self.0.tenant_id.is_some() {
            return Err(Problem::not_found(what));
        }
        self.require(scope)
    }

    /// Whether this key may see the tenant with id `id`.
    pub fn sees(&self, id: &str) -> bool {
        self.0.tenant_id.as_deref().is_none_or(|own| own == id)
    }

    /// The tenant `slug`, if the key may see it; any tenant it may not see is answered
    /// exactly as one that does not exist.
    pub async fn tenant(
        &self,
        state: &AppState,
        slug: &str,
        scope: Scope,
    ) -> Result<Tenant, Problem> {
        self.require(scope)?;
        let missing = || {
            Problem::from(Error::TenantNotFound {
                slug: slug.to_owned(),
            })
        };
        match state.tenantry.catalog().find_tenant(slug).await? {
            Some(t) if self.sees(&t.id.to_string()) => {
                tracing::Span::current().record("tenant_id", tracing::field::display(t.id));
                Ok(t)
            }
            _ => Err(missing()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(Problem::unauthorized)
    }
}

/// Authenticates every request it wraps; runs it as its key's actor.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Some(wait) = state.throttle.waiting(client) {
        return Problem::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            "too many failed authentications from this address; wait and retry",
        )
        .retry_after(wait)
        .into_response();
    }
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let token = match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned()),
        _ => None,
    };
    let key = match token {
        Some(token) => match state.tenantry.authenticate_api_key(&token).await {
            Ok(key) => key,
            Err(e) => return Problem::from(e).into_response(),
        },
        None => None,
    };
    let Some(key) = key else {
        state.throttle.failed(client);
        return Problem::unauthorized().into_response();
    };
    let actor = key.actor();
    req.extensions_mut().insert(Caller(key));
    tenantry::audit::act_as(&actor, next.run(req)).await
}

/// Failed authentications per client address within a window.
#[derive(Debug)]
pub struct Throttle {
    budget: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// Addresses remembered at most; past it, windows that ended are forgotten.
const REMEMBERED: usize = 10_000;

impl Throttle {
    pub fn new(budget: u32, window: Duration) -> Throttle {
        Throttle {
            budget,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds `client` must still wait, if it spent its budget in the current window.
    fn waiting(&self, client: IpAddr) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&client)?;
        let left = self.window.checked_sub(since.elapsed())?;
        (*count >= self.budget).then(|| left.as_secs().max(1))
    }

    fn failed(&self, client: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= REMEMBERED {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures.entry(client).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}
