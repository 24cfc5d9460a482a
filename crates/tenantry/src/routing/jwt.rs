//! Bearer tokens: `[routing.jwt]` settings, a verifier whose algorithm is fixed by
//! configuration, and an HS256 minting helper.
//!
//! The header's `alg` must equal the configured algorithm before anything else is looked at,
//! so `alg: none` and a token signed with HS256 using an RS256 public key as the secret
//! ("algorithm confusion") are refused. `exp` is required, `nbf` honoured, both with the
//! configured leeway; `iss` and `aud` are checked only when configured, and then required.

mod error;
mod keys;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use error::{JwtError, KeyOrigin, TokenError};

/// The environment variable that holds the HS256 secret. When set (and not empty) it is used
/// for HS256 whatever key source `[routing.jwt]` names, as the environment overrides files.
pub const SECRET_ENV: &str = "TENANTRY_JWT_SECRET";
/// The shortest HS256 secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// The largest leeway accepted: more would make `exp` meaningless.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Longer bearer tokens are refused before they are decoded.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The signing algorithms a deployment can choose; exactly one is accepted at a time.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret of at least 32 bytes.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256; verified with an RSA public key (PEM).
    RS256,
    /// ECDSA on P-256 with SHA-256; verified with an EC public key (PEM).
    ES256,
}

impl JwtAlgorithm {
    /// The name a JWT header uses.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::ES256 => "ES256",
        }
    }

    fn jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[routing.jwt]` in `tenantry.toml`. Key source: at most one of `secret`, `secret_env`,
/// `key_file`, `key_env`; for HS256 with none of them the secret comes from
/// [`SECRET_ENV`], which also overrides any of them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    /// HS256 only: the secret itself.
    pub secret: Option<String>,
    /// HS256 only: the name of an environment variable holding the secret.
    pub secret_env: Option<String>,
    /// A PEM public key (RS256, ES256) or a file holding the HS256 secret (one trailing
    /// line ending is not part of the secret).
    pub key_file: Option<PathBuf>,
    /// RS256/ES256 only: the name of an environment variable holding the PEM public key.
    pub key_env: Option<String>,
    /// When set, a token's `iss` must be present and equal it.
    pub issuer: Option<String>,
    /// When set, a token's `aud` must be present and contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim naming the tenant, by slug or id.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// The claim naming the user.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
}

fn default_leeway() -> u64 {
    5
}

fn default_tenant_claim() -> String {
    "tenant".to_owned()
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

impl JwtSettings {
    /// The HS256 secret these settings name (`TENANTRY_JWT_SECRET` first): what signs
    /// tokens for them, e.g. `tenantry token mint`. Refused for other algorithms, whose
    /// private keys Tenantry never holds.
    pub fn hs256_secret(&self) -> Result<Vec<u8>, JwtError> {
        if self.algorithm != JwtAlgorithm::HS256 {
            return Err(JwtError::KeySourceNotForAlgorithm {
                setting: "algorithm",
                algorithm: self.algorithm,
                hint: "only HS256 tokens can be minted here; sign RS256/ES256 tokens with your issuer's private key",
            });
        }
        keys::hs256_secret(self, &|var| std::env::var(var))
    }

    /// Settings for `algorithm` with no key source and every default.
    pub fn new(algorithm: JwtAlgorithm) -> JwtSettings {
        JwtSettings {
            algorithm,
            secret: None,
            secret_env: None,
            key_file: None,
            key_env: None,
            issuer: None,
            audience: None,
            leeway_secs: default_leeway(),
            tenant_claim: default_tenant_claim(),
            subject_claim: default_subject_claim(),
        }
    }
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("secret_env", &self.secret_env)
            .field("key_file", &self.key_file)
            .field("key_env", &self.key_env)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("tenant_claim", &self.tenant_claim)
            .field("subject_claim", &self.subject_claim)
            .finish()
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The subject claim (`subject_claim`, `sub` by default).
    pub subject: String,
    /// The tenant claim (`tenant_claim`), when the token has one.
    pub tenant: Option<String>,
    /// `exp`, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// Every claim of the token.
    pub all: Map<String, Value>,
}

/// Checks bearer tokens against one configured algorithm and key.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
    subject_claim: String,
    tenant_claim: String,
}

impl JwtVerifier {
    /// Loads the key the settings name (reading files and the environment) and checks it.
    pub fn from_settings(settings: &JwtSettings) -> Result<JwtVerifier, JwtError> {
        Self::from_settings_with(settings, &|name| std::env::var(name))
    }

    /// [`JwtVerifier::from_settings`] with the environment given as a lookup.
    pub(crate) fn from_settings_with(
        settings: &JwtSettings,
        env: keys::Env<'_>,
    ) -> Result<JwtVerifier, JwtError> {
        if settings.leeway_secs > MAX_LEEWAY_SECS {
            return Err(JwtError::LeewayTooLarge {
                value: settings.leeway_secs,
            });
        }
        for (field, value) in [
            ("tenant_claim", Some(&settings.tenant_claim)),
            ("subject_claim", Some(&settings.subject_claim)),
            ("issuer", settings.issuer.as_ref()),
            ("audience", settings.audience.as_ref()),
        ] {
            if value.is_some_and(|v| v.is_empty()) {
                return Err(JwtError::EmptySetting { field });
            }
        }
        let key = keys::decoding_key(settings, env)?;
        let mut validation = Validation::new(settings.algorithm.jsonwebtoken());
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience, `aud` is not looked at.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier {
            algorithm: settings.algorithm,
            key,
            validation,
            subject_claim: settings.subject_claim.clone(),
            tenant_claim: settings.tenant_claim.clone(),
        })
    }

    /// The one algorithm this verifier accepts.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Checks the token's algorithm, signature and time claims, then reads its subject and
    /// tenant.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenError> {
        self.check_header(token)?;
        let all = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| self.token_error(e.into_kind()))?
            .claims;
        let subject = match all.get(&self.subject_claim) {
            None | Some(Value::Null) => return Err(missing(&self.subject_claim)),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(invalid(&self.subject_claim, "a non-empty string")),
        };
        let tenant = match all.get(&self.tenant_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(invalid(&self.tenant_claim, "a non-empty string")),
        };
        let expires_at = all
            .get("exp")
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f.round() as i64)))
            .ok_or_else(|| invalid("exp", "a number"))?;
        Ok(VerifiedClaims {
            subject,
            tenant,
            expires_at,
            all,
        })
    }

    /// The header is read before the signature: its `alg` must be the configured one.
    fn check_header(&self, token: &str) -> Result<(), TokenError> {
        let malformed = |reason| TokenError::Malformed { reason };
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("it is longer than 8192 bytes"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("it is not three dot-separated parts"));
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| malformed("its header is not base64url"))?;
        let header: Map<String, Value> = serde_json::from_slice(&header)
            .map_err(|_| malformed("its header is not a JSON object"))?;
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err(malformed("its header has no \"alg\""));
        };
        if alg != self.algorithm.as_str() {
            return Err(TokenError::WrongAlgorithm {
                found: alg.chars().take(16).collect(),
                expected: self.algorithm,
            });
        }
        if header.contains_key("crit") {
            return Err(malformed("its header lists critical extensions (\"crit\")"));
        }
        Ok(())
    }

    fn token_error(&self, kind: ErrorKind) -> TokenError {
        match kind {
            ErrorKind::InvalidToken => TokenError::Malformed {
                reason: "it is not three dot-separated parts",
            },
            ErrorKind::Base64(_) => TokenError::Malformed {
                reason: "a part is not base64url",
            },
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenError::Malformed {
                reason: "a part is not valid JSON",
            },
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(name) => TokenError::MissingClaim { name },
            ErrorKind::InvalidClaimFormat(name) => TokenError::InvalidClaim {
                name,
                expected: "a number of seconds since the epoch",
            },
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm {
                found: "?".to_owned(),
                expected: self.algorithm,
            },
            other => TokenError::Refused {
                reason: format!("{other:?}"),
            },
        }
    }
}

fn missing(name: &str) -> TokenError {
    TokenError::MissingClaim {
        name: name.to_owned(),
    }
}

fn invalid(name: &str, expected: &'static str) -> TokenError {
    TokenError::InvalidClaim {
        name: name.to_owned(),
        expected,
    }
}

/// Signs `claims` (a JSON object) with HS256 and `secret` (at least 32 bytes): for
/// `tenantry token mint` and tests.
pub fn mint_hs256(secret: &[u8], claims: &Value) -> Result<String, JwtError> {
    if !claims.is_object() {
        return Err(JwtError::ClaimsNotObject);
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(JwtError::SecretTooShort {
            origin: KeyOrigin::Given,
            len: secret.len(),
        });
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| JwtError::Signing {
        reason: e.to_string(),
    })
}
