//! The verification key `[routing.jwt]` names: an HS256 secret or a PEM public key, read from
//! the settings, a file or the environment, and checked before any token is seen.

use std::env::VarError;
use std::path::Path;

use jsonwebtoken::DecodingKey;

use super::{JwtAlgorithm, JwtError, JwtSettings, KeyOrigin, MIN_SECRET_LEN, SECRET_ENV};

/// An environment lookup, `std::env::var` outside tests.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// The one configured key source.
enum Source<'a> {
    Secret(&'a str),
    SecretEnv(&'a str),
    KeyFile(&'a Path),
    KeyEnv(&'a str),
}

fn source(settings: &JwtSettings) -> Result<Option<Source<'_>>, JwtError> {
    let mut found = Vec::new();
    if let Some(s) = &settings.secret {
        found.push(("secret", Source::Secret(s)));
    }
    if let Some(var) = &settings.secret_env {
        found.push(("secret_env", Source::SecretEnv(var)));
    }
    if let Some(path) = &settings.key_file {
        found.push(("key_file", Source::KeyFile(path)));
    }
    if let Some(var) = &settings.key_env {
        found.push(("key_env", Source::KeyEnv(var)));
    }
    if found.len() > 1 {
        return Err(JwtError::ConflictingKeySources {
            settings: found.into_iter().map(|(name, _)| name).collect(),
        });
    }
    Ok(found.pop().map(|(_, source)| source))
}

/// The key that verifies tokens under `settings`.
pub(super) fn decoding_key(settings: &JwtSettings, env: Env<'_>) -> Result<DecodingKey, JwtError> {
    let algorithm = settings.algorithm;
    let source = source(settings)?;
    if algorithm == JwtAlgorithm::HS256 {
        return Ok(DecodingKey::from_secret(&hs256_secret(settings, env)?));
    }
    let (origin, pem) = match source {
        Some(Source::KeyFile(path)) => (KeyOrigin::File(path.to_owned()), read_file(path)?),
        Some(Source::KeyEnv(var)) => {
            let pem = read_env(env, var)?.ok_or_else(|| JwtError::EnvMissing {
                var: var.to_owned(),
            })?;
            (KeyOrigin::Env(var.to_owned()), pem.into_bytes())
        }
        Some(Source::Secret(_)) | Some(Source::SecretEnv(_)) => {
            return Err(JwtError::KeySourceNotForAlgorithm {
                setting: if settings.secret.is_some() {
                    "secret"
                } else {
                    "secret_env"
                },
                algorithm,
                hint: "a public-key algorithm needs key_file or key_env with a PEM public key",
            });
        }
        None => {
            return Err(JwtError::MissingKey {
                algorithm,
                hint: "set key_file or key_env to a PEM public key",
            });
        }
    };
    public_key(algorithm, origin, &pem)
}

/// The HS256 secret `settings` name (`TENANTRY_JWT_SECRET` first), checked for length.
pub(super) fn hs256_secret(settings: &JwtSettings, env: Env<'_>) -> Result<Vec<u8>, JwtError> {
    let algorithm = settings.algorithm;
    let source = source(settings)?;
    if let Some(Source::KeyEnv(_)) = source {
        return Err(JwtError::KeySourceNotForAlgorithm {
            setting: "key_env",
            algorithm,
            hint: "it holds a PEM public key; use secret_env for a secret",
        });
    }
    let (origin, secret) = match (read_env(env, SECRET_ENV)?, source) {
        (Some(secret), _) => (KeyOrigin::Env(SECRET_ENV.to_owned()), secret.into_bytes()),
        (None, Some(Source::Secret(s))) => (KeyOrigin::Inline, s.as_bytes().to_vec()),
        (None, Some(Source::SecretEnv(var))) => {
            let secret = read_env(env, var)?.ok_or_else(|| JwtError::EnvMissing {
                var: var.to_owned(),
            })?;
            (KeyOrigin::Env(var.to_owned()), secret.into_bytes())
        }
        (None, Some(Source::KeyFile(path))) => {
            let mut bytes = read_file(path)?;
            strip_line_ending(&mut bytes);
            (KeyOrigin::File(path.to_owned()), bytes)
        }
        (None, Some(Source::KeyEnv(_)) | None) => {
            return Err(JwtError::MissingKey {
                algorithm,
                hint: "set TENANTRY_JWT_SECRET, or one of secret, secret_env, key_file",
            });
        }
    };
    if secret.len() < MIN_SECRET_LEN {
        return Err(JwtError::SecretTooShort {
            origin,
            len: secret.len(),
        });
    }
    Ok(secret)
}

/// An RSA (RS256) or P-256 (ES256) public key in PEM: `PUBLIC KEY` (SPKI), or for RSA also
/// `RSA PUBLIC KEY` (PKCS#1). Private keys and certificates are refused.
fn public_key(
    algorithm: JwtAlgorithm,
    origin: KeyOrigin,
    pem: &[u8],
) -> Result<DecodingKey, JwtError> {
    let (expected, tags): (_, &[&str]) = match algorithm {
        JwtAlgorithm::RS256 => ("a PEM RSA public key", &["PUBLIC KEY", "RSA PUBLIC KEY"]),
        _ => ("a PEM P-256 EC public key", &["PUBLIC KEY"]),
    };
    let wrong = |reason| JwtError::WrongKey {
        origin: origin.clone(),
        expected,
        reason,
    };
    let tag = pem_tag(pem).ok_or_else(|| wrong("no -----BEGIN ...----- line"))?;
    if tag.contains("PRIVATE KEY") {
        return Err(wrong("it is a private key; give the public key only"));
    }
    if !tags.contains(&tag) {
        return Err(wrong("it is not a public key (BEGIN PUBLIC KEY)"));
    }
    let key = match algorithm {
        JwtAlgorithm::RS256 => DecodingKey::from_rsa_pem(pem),
        _ => DecodingKey::from_ec_pem(pem),
    }
    .map_err(|_| wrong("it is not a key of this kind, or its encoding is damaged"))?;
    if algorithm == JwtAlgorithm::ES256 {
        // An uncompressed P-256 point: 0x04, then 32 bytes each of x and y.
        let point = key.try_get_as_bytes().unwrap_or_default();
        if point.len() != 65 || point.first() != Some(&4) {
            return Err(wrong("it is not on curve P-256"));
        }
    }
    Ok(key)
}

/// The label of the first `-----BEGIN <label>-----` line.
fn pem_tag(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    Some(&rest[..rest.find("-----")?])
}

fn read_env(env: Env<'_>, var: &str) -> Result<Option<String>, JwtError> {
    match env(var) {
        Ok(value) if !value.is_empty() => Ok(Some(value)),
        Ok(_) | Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(JwtError::EnvNotUnicode {
            var: var.to_owned(),
        }),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|source| JwtError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// A secret file written by `echo` or an editor ends with a line ending that is not part of
/// the secret.
fn strip_line_ending(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}
