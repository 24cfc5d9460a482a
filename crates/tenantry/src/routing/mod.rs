//! Serving requests: which tenant a request is for, who is asking, and whether they may
//! ([docs/0002](../../../docs/0002-serving-requests.md)).

pub mod host;
mod settings;

pub use host::{Host, HostError};
pub use settings::{IdentifierKind, RoutingConfig, RoutingSettings};
