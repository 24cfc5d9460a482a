//! The master key as the catalog knows it. The catalog records the key's fingerprint (the
//! first time a Tenantry opens it with a key at hand, or at `tenantry init`), so a wrong key
//! is named before anything is decrypted, and no new key is ever generated for a catalog
//! that still holds credentials sealed with the old one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::Tenantry;
use crate::catalog::{Catalog, LOCK_KEY, MASTER_KEY_FINGERPRINT, MASTER_KEY_ROTATING_TO};
use crate::config::Config;
use crate::crypto::{KeySource, MasterKey};
use crate::error::{Error, Result};

/// What the catalog says about the master key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRecord {
    /// The fingerprint of the key its credentials are sealed with, once recorded.
    fingerprint: Option<String>,
    /// Whether it holds credentials sealed with the master key that are still needed.
    sealed: bool,
}

/// Shared by the clones of one [`Tenantry`].
pub(crate) type SharedRecord = Arc<Mutex<KeyRecord>>;

/// The lock key's plain value once read, shared by the clones of one [`Tenantry`].
pub(crate) type SharedLockKey = Arc<Mutex<Option<String>>>;

/// What `tenantry init` did about the master key.
#[derive(Debug, Clone)]
pub enum KeySetup {
    /// A new key was written to this file (mode 0600).
    Generated(PathBuf),
    /// The configured key is the catalog's.
    Loaded(KeySource),
}

/// Reads the catalog's record of the master key and, if no fingerprint is recorded yet and
/// a key is at hand, records that key's: when no credential is sealed yet, or when the key
/// opens one that is (a catalog from before fingerprints).
pub(crate) async fn read_record(catalog: &Catalog, config: &Config) -> Result<KeyRecord> {
    let mut record = KeyRecord {
        fingerprint: catalog.setting(MASTER_KEY_FINGERPRINT).await?,
        sealed: false,
    };
    let secret = catalog.a_sealed_secret().await?;
    record.sealed = secret.is_some();
    if record.fingerprint.is_some() {
        return Ok(record);
    }
    // A missing or malformed key is reported where a key is needed, not here.
    let Ok(Some(key)) = MasterKey::find(&config.master_key_file) else {
        return Ok(record);
    };
    let opens = match &secret {
        Some((what, sealed)) => key.open(sealed, what).is_ok(),
        None => true,
    };
    if opens {
        let fingerprint = catalog
            .set_setting_once(MASTER_KEY_FINGERPRINT, &key.fingerprint())
            .await?;
        record.fingerprint = Some(fingerprint);
    }
    Ok(record)
}

impl Tenantry {
    /// The master key, from `TENANTRY_MASTER_KEY` or the configured key file, checked
    /// against the fingerprint the catalog recorded before anything is decrypted with it.
    pub fn master_key(&self) -> Result<MasterKey> {
        let record = self.key_record();
        let file = &self.config.master_key_file;
        let Some(key) = MasterKey::find(file)? else {
            return Err(if record.sealed {
                Error::MasterKeyLost {
                    path: file.clone(),
                    fingerprint: record.fingerprint,
                }
            } else {
                Error::MasterKeyMissing { path: file.clone() }
            });
        };
        match record.fingerprint {
            Some(expected) if expected != key.fingerprint() => Err(Error::WrongMasterKey {
                source_name: key.source.to_string(),
                found: key.fingerprint(),
                expected,
                path: file.clone(),
            }),
            _ => Ok(key),
        }
    }

    /// For `tenantry init`: makes sure there is a master key and the catalog records its
    /// fingerprint. Generates one only when none is configured and the catalog holds no
    /// credential sealed with an earlier key; otherwise the old key must be restored. With
    /// nothing sealed yet, the configured key becomes the catalog's.
    pub async fn init_master_key(&self) -> Result<KeySetup> {
        let fresh = read_record(&self.catalog, &self.config).await?;
        *self.key_record.lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        let file = &self.config.master_key_file;
        let (key, setup) = match MasterKey::find(file)? {
            Some(key) => {
                let source = key.source.clone();
                (key, KeySetup::Loaded(source))
            }
            None if fresh.sealed => {
                return Err(Error::MasterKeyLost {
                    path: file.clone(),
                    fingerprint: fresh.fingerprint,
                });
            }
            None => {
                MasterKey::generate_if_missing(file)?;
                let key = MasterKey::find(file)?
                    .ok_or_else(|| Error::MasterKeyMissing { path: file.clone() })?;
                (key, KeySetup::Generated(file.clone()))
            }
        };
        let fingerprint = key.fingerprint();
        match &fresh.fingerprint {
            Some(expected) if *expected == fingerprint => {}
            Some(expected) if fresh.sealed => {
                return Err(Error::WrongMasterKey {
                    source_name: key.source.to_string(),
                    found: fingerprint,
                    expected: expected.clone(),
                    path: file.clone(),
                });
            }
            // Nothing is sealed with the recorded key (or none is recorded): this one is
            // the catalog's from now on.
            _ => {
                self.catalog
                    .replace_setting(MASTER_KEY_FINGERPRINT, &fingerprint)
                    .await?;
                // A lock key sealed with the lost key is made again with this one (nothing
                // else was sealed with it, and no lock outlives its process).
                if let Some(sealed) = self.catalog.setting(LOCK_KEY).await?
                    && key.open(&sealed, "the lock key").is_err()
                {
                    self.catalog.delete_setting(LOCK_KEY).await?;
                }
            }
        }
        {
            let mut record = self.key_record.lock().unwrap_or_else(|p| p.into_inner());
            record.fingerprint = Some(fingerprint);
        }
        self.load_lock_key().await?;
        Ok(setup)
    }

    /// Opens a value sealed with the master key. During a rotation (and in a process that
    /// opened the catalog before one finished) a value may be sealed with either the key
    /// the catalog records or the key the rotation moves to: each key at hand is tried, and
    /// AES-GCM tells the right one. With none that opens it, the error names why.
    pub(crate) fn open_sealed(&self, sealed: &str, what: &str) -> Result<String> {
        let file = &self.config.master_key_file;
        let checked = self.master_key();
        let first = match &checked {
            Ok(key) => Some(key.clone()),
            // A rotation finished since this process read the fingerprint: the key file now
            // holds the new key.
            Err(Error::WrongMasterKey { .. }) => MasterKey::find(file).ok().flatten(),
            Err(_) => None,
        };
        let mut first_error = None;
        if let Some(key) = first {
            match key.open(sealed, what) {
                Ok(plain) => return Ok(plain),
                Err(e) => first_error = Some(e),
            }
        }
        // Only then the key a rotation under way moves to.
        if let Ok(Some(next)) = MasterKey::find_next(file)
            && let Ok(plain) = next.open(sealed, what)
        {
            return Ok(plain);
        }
        Err(match checked {
            Err(e) => e,
            Ok(_) => first_error.unwrap_or_else(|| Error::MasterKeyMissing { path: file.clone() }),
        })
    }

    /// The key new values are sealed with: the catalog's, or while a rotation is under way,
    /// the key it moves to (a process without that key is refused, so nothing is sealed with
    /// the old key once a rotation started).
    pub(crate) async fn sealing_key(&self) -> Result<MasterKey> {
        let file = &self.config.master_key_file;
        if let Some(next_fp) = self.catalog.setting(MASTER_KEY_ROTATING_TO).await? {
            return match MasterKey::find_next(file)? {
                Some(next) if next.fingerprint() == next_fp => Ok(next),
                _ => Err(Error::KeyRotation {
                    reason: format!(
                        "a rotation to the master key {next_fp} is under way: give this process \
                         that key too ({} or {}), or finish it with `tenantry key rotate`",
                        crate::crypto::NEW_MASTER_KEY_ENV,
                        crate::crypto::sibling_key_file(file, ".new").display()
                    ),
                }),
            };
        }
        match self.master_key() {
            Err(Error::WrongMasterKey { .. }) => {
                // A rotation may have finished since this process read the fingerprint.
                let fresh = read_record(&self.catalog, &self.config).await?;
                *self.key_record.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                self.master_key()
            }
            other => other,
        }
    }

    /// The secret lock names derive from, read (or, the first time, made and sealed) from
    /// the catalog. It does not change when the master key is rotated, so every process,
    /// whichever key it holds, takes the same lock for the same unit.
    pub(crate) async fn load_lock_key(&self) -> Result<()> {
        let sealed = match self.catalog.setting(LOCK_KEY).await? {
            Some(sealed) => sealed,
            None => {
                let key = self.sealing_key().await?;
                let fresh = key.seal(&hex::encode(crate::crypto::random_key()));
                self.catalog.set_setting_once(LOCK_KEY, &fresh).await?
            }
        };
        let plain = self.open_sealed(&sealed, "the lock key")?;
        *self.lock_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(plain);
        Ok(())
    }

    /// The lock key, once [`Tenantry::load_lock_key`] read it.
    pub(crate) fn lock_key(&self) -> Result<String> {
        self.lock_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| match self.master_key() {
                Err(e) => e,
                Ok(_) => Error::KeyRotation {
                    reason: "the lock key could not be read when the catalog was opened; \
                             open it again"
                        .to_owned(),
                },
            })
    }

    fn key_record(&self) -> KeyRecord {
        self.key_record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
