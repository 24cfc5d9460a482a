//! axum integration for Tenantry.
//!
//! [`TenantLayer`] resolves the tenant of every request with a [`Resolver`] (refusing with a
//! JSON error and a stable code when it cannot), runs the request in a `tracing` span that
//! carries `tenant_id` and `tenant`, and commits the request's unit of work when the handler
//! answers with a success status. Handlers ask for what they need:
//!
//! - [`CurrentTenant`]: the resolved tenant;
//! - [`CurrentCaller`]: the verified caller and their role (401 without a token);
//! - [`Unit`]: a transaction that reaches the tenant's data only, opened on first use.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tenantry_axum::{CurrentTenant, TenantLayer};
//!
//! # async fn app(tenantry: tenantry::Tenantry) -> tenantry::Result<Router> {
//! let resolver = tenantry::routing::Resolver::new(&tenantry)?;
//! Ok(Router::new()
//!     .route("/whoami", get(|CurrentTenant(t): CurrentTenant| async move { t.slug.to_string() }))
//!     .layer(TenantLayer::new(resolver)))
//! # }
//! ```

mod extract;
mod layer;
mod refusal;

pub use extract::{CurrentCaller, CurrentTenant, Unit};
pub use layer::{TenantLayer, TenantService};
pub use refusal::RefusalResponse;
pub use tenantry::routing::{Access, Refusal, Resolution, Resolver};
