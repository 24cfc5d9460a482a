//! Secrets: the master key, AES-256-GCM encryption of the credentials kept in the catalog,
//! generated passwords, and the HMAC that makes a row-level tenant context unforgeable.

use std::path::{Path, PathBuf};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "TENANTRY_MASTER_KEY";

/// The key a rotation moves to, when the master key comes from the environment.
pub const NEW_MASTER_KEY_ENV: &str = "TENANTRY_NEW_MASTER_KEY";

/// Where a rotation keeps the key it moves to, beside the key file (`<file>.new`), and the
/// key it moved from once done (`<file>.old`).
pub fn sibling_key_file(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the master key came from, for messages.
#[derive(Debug, Clone)]
pub enum KeySource {
    Env,
    /// `TENANTRY_NEW_MASTER_KEY`.
    NextEnv,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "${MASTER_KEY_ENV}"),
            KeySource::NextEnv => write!(f, "${NEW_MASTER_KEY_ENV}"),
            KeySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The key that encrypts credentials in the catalog. Never printed.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    pub source: KeySource,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.source)
    }
}

impl MasterKey {
    /// The key from `TENANTRY_MASTER_KEY`, else from `file`; `None` if neither is there. A
    /// malformed key is an error.
    pub fn find(file: &Path) -> Result<Option<MasterKey>> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::decode(text.trim(), KeySource::Env).map(Some);
        }
        match std::fs::read_to_string(file) {
            Ok(text) => Self::decode(text.trim(), KeySource::File(file.to_owned())).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                path: file.to_owned(),
                source: e,
            }),
        }
    }

    /// A short public name of the key: the first 16 hex characters of SHA-256 over a
    /// domain-separated input. The catalog records it, so a wrong key is recognised before
    /// anything is decrypted; it reveals nothing usable about the key.
    /// The key a rotation moves to: `TENANTRY_NEW_MASTER_KEY`, else `<file>.new`.
    pub fn find_next(file: &Path) -> Result<Option<MasterKey>> {
        if let Ok(text) = std::env::var(NEW_MASTER_KEY_ENV) {
            return Self::decode(text.trim(), KeySource::NextEnv).map(Some);
        }
        let next = sibling_key_file(file, ".new");
        match std::fs::read_to_string(&next) {
            Ok(text) => Self::decode(text.trim(), KeySource::File(next)).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                path: next,
                source: e,
            }),
        }
    }

    /// Writes a new random key to `file` (mode 0600), whole or not at all: written beside
    /// it first, then renamed into place.
    pub fn generate_into(file: &Path) -> Result<()> {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let partial = sibling_key_file(file, ".partial");
        let _ = std::fs::remove_file(&partial);
        write_private(&partial, format!("{}\n", B64.encode(key)).as_bytes())?;
        std::fs::rename(&partial, file).map_err(|source| Error::Io {
            path: file.to_owned(),
            source,
        })
    }

    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut hash = Sha256::new();
        hash.update(b"tenantry master key fingerprint v1\0");
        hash.update(self.key);
        let mut hex = hex::encode(hash.finalize());
        hex.truncate(16);
        hex
    }

    /// Generates a key into `file` (mode 0600) unless one is configured already. Returns
    /// `Some(path)` when it wrote one.
    pub fn generate_if_missing(file: &Path) -> Result<Option<PathBuf>> {
        if std::env::var_os(MASTER_KEY_ENV).is_some() || file.exists() {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        write_private(file, format!("{}\n", B64.encode(key)).as_bytes())?;
        Ok(Some(file.to_owned()))
    }

    fn decode(text: &str, source: KeySource) -> Result<MasterKey> {
        let bad = |reason: &str| Error::MasterKey {
            source_name: source.to_string(),
            reason: reason.to_owned(),
        };
        let bytes = B64
            .decode(text)
            .map_err(|_| bad("the master key is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("the master key must be 32 bytes (base64 of 32 random bytes)"))?;
        Ok(MasterKey { key, source })
    }

    /// Encrypts `plain`; the result (base64 of nonce ‖ ciphertext) is what the catalog stores.
    pub fn seal(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new(&self.key.into());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = cipher.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced. `what` names the secret for the error.
    pub fn open(&self, sealed: &str, what: &str) -> Result<String> {
        let wrong = || Error::MasterKey {
            source_name: self.source.to_string(),
            reason: format!(
                "it does not decrypt the credentials of {what}: wrong master key, or a corrupted catalog"
            ),
        };
        let bytes = B64.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < 12 {
            return Err(wrong());
        }
        let (nonce, body) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| wrong())?;
        let cipher = Aes256Gcm::new(&self.key.into());
        let plain = cipher
            .decrypt(&Nonce::from(nonce), body)
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }

    /// A value derived from the key for `purpose` (HMAC-SHA256, hex): stable across the
    /// processes that share the key, and not computable by anyone who lacks it.
    pub fn derive(&self, purpose: &str) -> String {
        hmac_hex(&self.key, &format!("tenantry derive: {purpose}"))
    }
}

/// A generated password: 64 hex characters, so it is safe wherever it must be written into
/// DDL (`CREATE ROLE … PASSWORD`), which takes no bound parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn generate() -> Password {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Password(hex::encode(bytes))
    }

    /// Re-validates a decrypted password.
    pub fn parse(value: String) -> Option<Password> {
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(Password(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// 32 random bytes, for per-pool context keys.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

/// A random 32-bit number from the operating system.
pub fn random_u32() -> u32 {
    OsRng.next_u32()
}

/// HMAC-SHA256 of `message` under `key`, hex.
pub fn hmac_hex(key: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The HMAC inner and outer padded keys (`K ⊕ ipad`, `K ⊕ opad`, 64 bytes each) so a server
/// can compute HMAC-SHA256 with plain `sha256()`.
pub fn hmac_pads(key: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let mut ipad = vec![0x36u8; 64];
    let mut opad = vec![0x5cu8; 64];
    for (i, b) in key.iter().enumerate() {
        ipad[i] ^= b;
        opad[i] ^= b;
    }
    (ipad, opad)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        assert!(
            MasterKey::generate_if_missing(&path)
                .expect("generate")
                .is_some()
        );
        assert!(
            MasterKey::generate_if_missing(&path)
                .expect("again")
                .is_none()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = MasterKey::decode(
            std::fs::read_to_string(&path).expect("read").trim(),
            KeySource::Env,
        )
        .expect("key");
        let sealed = key.seal("secret");
        assert_ne!(sealed, "secret");
        assert_eq!(key.open(&sealed, "acme").expect("open"), "secret");
        let other = MasterKey::decode(&B64.encode([7u8; 32]), KeySource::Env).expect("key");
        let err = other.open(&sealed, "acme").expect_err("wrong key");
        assert!(err.to_string().contains("acme"), "{err}");
    }

    #[test]
    fn fingerprints_are_short_stable_and_differ_between_keys() {
        let one = MasterKey::decode(&B64.encode([1u8; 32]), KeySource::Env).expect("key");
        let two = MasterKey::decode(&B64.encode([2u8; 32]), KeySource::Env).expect("key");
        assert_eq!(one.fingerprint().len(), 16);
        assert_eq!(one.fingerprint(), one.clone().fingerprint());
        assert_ne!(one.fingerprint(), two.fingerprint());
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(MasterKey::decode("not base64!", KeySource::Env).is_err());
        assert!(MasterKey::decode(&B64.encode([1u8; 16]), KeySource::Env).is_err());
    }

    #[test]
    fn pads_reproduce_hmac() {
        use sha2::Digest;
        let key = [9u8; 32];
        let (ipad, opad) = hmac_pads(&key);
        let inner = Sha256::digest([ipad.as_slice(), b"tenant"].concat());
        let outer = Sha256::digest([opad.as_slice(), &inner[..]].concat());
        assert_eq!(hex::encode(outer), hmac_hex(&key, "tenant"));
    }
}
