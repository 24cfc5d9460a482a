//! Serving requests: which tenant a request is for, who is asking, and whether they may
//! ([docs/0002](../../../docs/0002-serving-requests.md)).
//!
//! - `host`: the validated, normalised [`Host`];
//! - `jwt`: bearer tokens, verified with the configured algorithm only;
//! - `settings`: the `[routing]` table;
//! - `directory`: cached catalog reads, dropped when the catalog's change counter moves;
//! - `resolve`: the [`Resolver`] and the [`Identifier`] trait;
//! - `refusal`: [`Refusal`], each with a stable code and HTTP status.

mod directory;
pub mod host;
pub mod jwt;
mod refusal;
mod resolve;
mod settings;

pub use directory::Directory;
pub use host::{Host, HostError};
pub use refusal::{Refusal, RefusalBody, RefusalDetail};
pub use resolve::{Access, Ask, Caller, Identifier, RequestParts, Resolution, Resolver, TenantRef};
pub use settings::{IdentifierKind, RoutingConfig, RoutingSettings};
