//! Errors of JWT configuration (`JwtError`) and of token checks (`TokenError`). Neither ever
//! contains a secret or a token.

use std::fmt;
use std::path::PathBuf;

use super::JwtAlgorithm;

/// Where a key or secret came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `secret` written in `[routing.jwt]`.
    Inline,
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
    /// An argument of a function (`mint_hs256`).
    Given,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Inline => f.write_str("[routing.jwt] secret"),
            KeyOrigin::Env(var) => write!(f, "environment variable {var}"),
            KeyOrigin::File(path) => write!(f, "key file {}", path.display()),
            KeyOrigin::Given => f.write_str("the given secret"),
        }
    }
}

/// A `[routing.jwt]` configuration that cannot be used, or a token that cannot be minted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    #[error("[routing.jwt] sets {}: set exactly one key source", .settings.join(" and "))]
    ConflictingKeySources { settings: Vec<&'static str> },

    #[error("[routing.jwt] {setting} cannot be used with {algorithm}: {hint}")]
    KeySourceNotForAlgorithm {
        setting: &'static str,
        algorithm: JwtAlgorithm,
        hint: &'static str,
    },

    #[error("[routing.jwt] has no key for {algorithm}: {hint}")]
    MissingKey {
        algorithm: JwtAlgorithm,
        hint: &'static str,
    },

    #[error("[routing.jwt] {field} is empty")]
    EmptySetting { field: &'static str },

    #[error(
        "[routing.jwt] leeway_secs is {value}; at most {} is accepted",
        super::MAX_LEEWAY_SECS
    )]
    LeewayTooLarge { value: u64 },

    #[error("environment variable {var} is not set or is empty")]
    EnvMissing { var: String },

    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: String },

    #[error("key file {} cannot be read: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{origin} is not {expected}: {reason}")]
    WrongKey {
        origin: KeyOrigin,
        expected: &'static str,
        reason: &'static str,
    },

    #[error(
        "{origin} holds a {len}-byte secret; HS256 needs at least {} bytes (e.g. `openssl rand -hex 32`)",
        super::MIN_SECRET_LEN
    )]
    SecretTooShort { origin: KeyOrigin, len: usize },

    #[error("claims to sign must be a JSON object")]
    ClaimsNotObject,

    #[error("signing failed: {reason}")]
    Signing { reason: String },
}

/// Why a bearer token was refused. Messages never repeat the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("token is malformed: {reason}")]
    Malformed { reason: &'static str },

    #[error("token is signed with {found:?}; only {expected} is accepted")]
    WrongAlgorithm {
        /// The header's `alg`, cut to 16 characters.
        found: String,
        expected: JwtAlgorithm,
    },

    #[error("token signature does not verify")]
    BadSignature,

    #[error("token has expired")]
    Expired,

    #[error("token is not valid yet (nbf)")]
    NotYetValid,

    #[error("token issuer (iss) is not the configured issuer")]
    WrongIssuer,

    #[error("token audience (aud) does not include the configured audience")]
    WrongAudience,

    #[error("token has no {name:?} claim")]
    MissingClaim { name: String },

    #[error("token claim {name:?} must be {expected}")]
    InvalidClaim {
        name: String,
        expected: &'static str,
    },

    #[error("token refused: {reason}")]
    Refused { reason: String },
}
