//! The tower layer: resolve, refuse or serve inside the tenant's span, then settle the unit of
//! work by the response's status.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use tenantry::routing::{Access, Host, Refusal, RequestParts, Resolver};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::extract::UnitSlot;
use crate::refusal::RefusalResponse;

/// Resolves the tenant of every request (see the crate documentation).
#[derive(Debug, Clone)]
pub struct TenantLayer {
    resolver: Resolver,
    access: Access,
}

impl TenantLayer {
    pub fn new(resolver: Resolver) -> TenantLayer {
        TenantLayer {
            resolver,
            access: Access::Configured,
        }
    }

    /// Routes under this layer are public: a caller need not be a member of the tenant (a
    /// token given is still verified).
    pub fn public(mut self) -> TenantLayer {
        self.access = Access::Public;
        self
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> TenantService<S> {
        TenantService {
            inner,
            resolver: self.resolver.clone(),
            access: self.access,
        }
    }
}

/// The service [`TenantLayer`] wraps around a router or handler.
#[derive(Debug, Clone)]
pub struct TenantService<S> {
    inner: S,
    resolver: Resolver,
    access: Access,
}

/// The parts of a request the resolver reads.
///
/// Hosts: every Host header, and the request target's authority (absolute form, HTTP/2's
/// `:authority`) unless it is the one Host header's host, so that a target and a Host header
/// naming different hosts reach the resolver as two hosts, which it refuses.
fn parts_of(request: &Request<Body>) -> RequestParts {
    let mut hosts: Vec<String> = request
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if let Some(authority) = request.uri().authority() {
        let target = authority.as_str();
        let same = match hosts.as_slice() {
            [one] => matches!((Host::parse(one), Host::parse(target)), (Ok(a), Ok(b)) if a == b),
            _ => false,
        };
        if !same {
            hosts.push(target.to_owned());
        }
    }
    let headers = request
        .headers()
        .iter()
        .filter(|(name, _)| *name != header::HOST)
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    RequestParts {
        hosts,
        headers,
        path: request.uri().path().to_owned(),
    }
}

impl<S> Service<Request<Body>> for TenantService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let resolver = self.resolver.clone();
        let access = self.access;
        Box::pin(async move {
            let parts = parts_of(&request);
            let resolution = match resolver.resolve(&parts, access).await {
                Ok(resolution) => Arc::new(resolution),
                Err(refusal) => return Ok(RefusalResponse(refusal).into_response()),
            };
            let span = tracing::info_span!(
                "request",
                tenant_id = %resolution.tenant.id,
                tenant = %resolution.tenant.slug,
                via = %resolution.via,
            );
            let slot = UnitSlot::default();
            request.extensions_mut().insert(Arc::clone(&resolution));
            request.extensions_mut().insert(resolver.clone());
            request.extensions_mut().insert(slot.clone());
            async move {
                let response = inner.call(request).await?;
                Ok(settle(slot, response).await)
            }
            .instrument(span)
            .await
        })
    }
}

/// Commits the request's unit of work if the handler succeeded (a 1xx–3xx status), rolls it
/// back otherwise. A commit that fails turns the response into a 503.
async fn settle(slot: UnitSlot, response: Response) -> Response {
    let Some(tx) = slot.take().await else {
        return response;
    };
    let success = !(response.status().is_client_error() || response.status().is_server_error());
    if success {
        if let Err(e) = tx.commit().await {
            tracing::warn!(error = %e, "commit failed");
            return RefusalResponse(Refusal::Unavailable {
                reason: format!("the request's changes could not be committed: {e}"),
            })
            .into_response();
        }
    } else if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "rollback failed");
    }
    response
}
