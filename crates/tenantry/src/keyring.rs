//! The master key as the catalog knows it. The catalog records the key's fingerprint (the
//! first time a Tenantry opens it with a key at hand, or at `tenantry init`), so a wrong key
//! is named before anything is decrypted, and no new key is ever generated for a catalog
//! that still holds credentials sealed with the old one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::Tenantry;
use crate::catalog::{Catalog, MASTER_KEY_FINGERPRINT};
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
            }
        }
        let mut record = self.key_record.lock().unwrap_or_else(|p| p.into_inner());
        record.fingerprint = Some(fingerprint);
        Ok(setup)
    }

    fn key_record(&self) -> KeyRecord {
        self.key_record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
