//! Placeholder (replaced by the full implementation).

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct JwtSettings {
    pub algorithm: String,
    pub tenant_claim: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JwtError(String);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub subject: String,
    pub tenant: Option<String>,
    pub expires_at: i64,
    pub all: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct JwtVerifier;

impl JwtVerifier {
    pub fn from_settings(_s: &JwtSettings) -> Result<JwtVerifier, JwtError> {
        Err(JwtError("not built".into()))
    }
    pub fn verify(&self, _token: &str) -> Result<VerifiedClaims, TokenError> {
        Err(TokenError("not built".into()))
    }
}
