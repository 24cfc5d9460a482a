//! Extractors: the resolved tenant, the caller, and the request's unit of work.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use tenantry::routing::{Caller, Refusal, Resolution, Resolver};
use tenantry::{Tenant, TenantTx};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::refusal::RefusalResponse;

/// The request's unit of work, shared between the [`Unit`] extractor and the layer that
/// settles it once the handler answered.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitSlot(Arc<Mutex<Option<TenantTx>>>);

impl UnitSlot {
    pub(crate) async fn take(&self) -> Option<TenantTx> {
        self.0.lock().await.take()
    }
}

fn layer_missing() -> RefusalResponse {
    RefusalResponse(Refusal::Unavailable {
        reason: "this route is not under a TenantLayer".into(),
    })
}

fn resolution(parts: &Parts) -> Result<Arc<Resolution>, RefusalResponse> {
    parts
        .extensions
        .get::<Arc<Resolution>>()
        .cloned()
        .ok_or_else(layer_missing)
}

/// The tenant the request resolved to.
#[derive(Debug, Clone)]
pub struct CurrentTenant(pub Arc<Tenant>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = RefusalResponse;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CurrentTenant(Arc::clone(&resolution(parts)?.tenant)))
    }
}

/// The verified caller, with their role in the tenant; a request without a token is refused
/// with `invalid_token` (401).
#[derive(Debug, Clone)]
pub struct CurrentCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CurrentCaller {
    type Rejection = RefusalResponse;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match &resolution(parts)?.caller {
            Some(caller) => Ok(CurrentCaller(caller.clone())),
            None => Err(RefusalResponse(Refusal::InvalidToken {
                reason: "this route needs a bearer token".into(),
            })),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentCaller {
    type Rejection = RefusalResponse;

    /// `None` for an anonymous request (a public route without a token).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(resolution(parts)?.caller.clone().map(CurrentCaller))
    }
}

/// A transaction on the tenant's data, begun when the handler asks for it; the layer commits
/// it when the handler answers with a success status and rolls it back otherwise. A server
/// whose connections are all in use answers `busy` (503, `Retry-After`).
#[derive(Debug)]
pub struct Unit(OwnedMutexGuard<Option<TenantTx>>);

impl<S: Send + Sync> FromRequestParts<S> for Unit {
    type Rejection = RefusalResponse;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let resolution = resolution(parts)?;
        let slot = parts
            .extensions
            .get::<UnitSlot>()
            .cloned()
            .ok_or_else(layer_missing)?;
        let resolver = parts
            .extensions
            .get::<Resolver>()
            .cloned()
            .ok_or_else(layer_missing)?;
        // One unit per request: a second `Unit` in the same handler would wait for the first
        // forever; it is refused instead.
        let mut guard = Arc::clone(&slot.0).try_lock_owned().map_err(|_| {
            RefusalResponse(Refusal::Unavailable {
                reason: "a handler may take the request's Unit once".into(),
            })
        })?;
        if guard.is_none() {
            let pool = resolver
                .tenantry()
                .tenant_pool_for(&resolution.tenant)
                .await
                .map_err(|e| RefusalResponse(Refusal::from_error(&e)))?;
            let tx = pool
                .begin()
                .await
                .map_err(|e| RefusalResponse(Refusal::from_error(&e)))?;
            *guard = Some(tx);
        }
        Ok(Unit(guard))
    }
}

impl Deref for Unit {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        // Set by the extractor before a `Unit` exists, and taken only by the layer after the
        // handler (and so this guard) is gone.
        self.0
            .as_ref()
            .expect("a Unit always holds its transaction")
    }
}

impl DerefMut for Unit {
    fn deref_mut(&mut self) -> &mut TenantTx {
        self.0
            .as_mut()
            .expect("a Unit always holds its transaction")
    }
}
