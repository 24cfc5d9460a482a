//! Users' passwords: argon2id with a random salt, stored as a PHC string.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes a user's password with argon2id (default parameters, random salt).
pub fn hash_password(user: &str, password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::Password {
            user: user.to_owned(),
            reason: format!("must be at least {MIN_PASSWORD_LEN} characters"),
        });
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Password {
            user: user.to_owned(),
            reason: e.to_string(),
        })
}

/// Whether `password` matches a stored hash; a hash that does not parse is an error.
pub fn verify_password(user: &str, hash: &str, password: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| Error::Password {
        user: user.to_owned(),
        reason: format!("its stored hash does not parse: {e}"),
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("a@example.com", "correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("a@example.com", &hash, "correct horse").expect("verify"));
        assert!(!verify_password("a@example.com", &hash, "wrong horse").expect("verify"));
        assert!(matches!(
            hash_password("a@example.com", "short"),
            Err(Error::Password { .. })
        ));
    }
}
