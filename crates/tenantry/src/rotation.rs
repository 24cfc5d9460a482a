//! Master key rotation: every sealed value (tenant and pool passwords, pool context keys,
//! tenant secrets, the lock key) resealed under a new key, resumable from any point
//! ([docs/0004](../../../docs/0004-control-plane.md)).
//!
//! The protocol: the new key is written beside the key file (`<file>.new`, or given as
//! `TENANTRY_NEW_MASTER_KEY`) before anything changes; the catalog records that a rotation to
//! it is under way, from which moment every process seals new values with it (or refuses);
//! values are resealed one at a time, each update conditional on the value read; when none
//! is left under the old key, the catalog's fingerprint becomes the new key's; last, the key
//! file is replaced (the old key kept as `<file>.old`). Every value opens with the old key or
//! the new one at every step, and processes open with either, so a rotation killed anywhere
//! is finished by running it again, and once it is done the old key is no longer needed.

use serde::Serialize;

use crate::Tenantry;
use crate::catalog::{MASTER_KEY_FINGERPRINT, MASTER_KEY_ROTATING_TO};
use crate::crypto::{KeySource, MasterKey, NEW_MASTER_KEY_ENV, sibling_key_file};
use crate::error::{Error, Result};

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The fingerprint of the key the values were sealed with.
    pub from: String,
    /// The fingerprint of the key they are sealed with now.
    pub to: String,
    /// Values resealed by this run.
    pub resealed: usize,
    /// Values found sealed with the new key already (an earlier, interrupted run).
    pub already: usize,
    /// Where the new key is now (the key file), or what to do with it (the environment).
    pub key: String,
}

impl Tenantry {
    /// Rotates the master key, or finishes a rotation that was interrupted.
    pub async fn rotate_master_key(&self) -> Result<Rotation> {
        let file = self.config.master_key_file.clone();
        let next_file = sibling_key_file(&file, ".new");
        let recorded = self.catalog.setting(MASTER_KEY_FINGERPRINT).await?;
        let current = MasterKey::find(&file)?;
        let from_env = matches!(current.as_ref().map(|k| &k.source), Some(KeySource::Env));
        let next = match MasterKey::find_next(&file)? {
            Some(next) => next,
            None if from_env => {
                return Err(Error::KeyRotation {
                    reason: format!(
                        "the master key comes from the environment: give the new one in {NEW_MASTER_KEY_ENV}"
                    ),
                });
            }
            None => {
                MasterKey::generate_into(&next_file)?;
                MasterKey::find_next(&file)?.ok_or_else(|| Error::MasterKeyMissing {
                    path: next_file.clone(),
                })?
            }
        };
        let to = next.fingerprint();
        // Done already, but for the key file.
        if recorded.as_deref() == Some(to.as_str()) {
            let from = current
                .as_ref()
                .map(MasterKey::fingerprint)
                .unwrap_or_default();
            let key = self.install(&next, current.as_ref()).await?;
            return Ok(Rotation {
                from,
                to,
                resealed: 0,
                already: self.catalog.sealed_values().await?.len(),
                key,
            });
        }
        let old = self.master_key()?;
        let from = old.fingerprint();
        if from == to {
            return Err(Error::KeyRotation {
                reason: "the new key is the current one".to_owned(),
            });
        }
        match self.catalog.setting(MASTER_KEY_ROTATING_TO).await? {
            Some(other) if other != to => {
                return Err(Error::KeyRotation {
                    reason: format!(
                        "a rotation to the key {other} is under way; finish it with that key as the new one"
                    ),
                });
            }
            Some(_) => {}
            None => {
                self.audited(
                    None,
                    "key.rotate",
                    Some(format!("key:{to}")),
                    Some(format!("started from {from}")),
                )
                .await;
                self.catalog
                    .replace_setting(MASTER_KEY_ROTATING_TO, &to)
                    .await?;
            }
        }
        let (mut resealed, mut already) = (0, 0);
        loop {
            let mut left = 0;
            for value in self.catalog.sealed_values().await? {
                if next.open(&value.sealed, &value.what).is_ok() {
                    already += 1;
                    continue;
                }
                let plain = old.open(&value.sealed, &value.what)?;
                if self.catalog.reseal(&value, &next.seal(&plain)).await? {
                    resealed += 1;
                } else {
                    // Changed meanwhile (sealed with the new key by another process, or
                    // gone): read again.
                    left += 1;
                }
            }
            if left == 0 {
                break;
            }
        }
        self.catalog
            .replace_setting(MASTER_KEY_FINGERPRINT, &to)
            .await?;
        self.catalog.delete_setting(MASTER_KEY_ROTATING_TO).await?;
        let fresh = crate::keyring::read_record(&self.catalog, &self.config).await?;
        *self.key_record.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.audited(
            None,
            "key.rotate",
            Some(format!("key:{to}")),
            Some(format!("{resealed} values resealed from {from}")),
        )
        .await;
        let key = self.install(&next, Some(&old)).await?;
        Ok(Rotation {
            from,
            to,
            resealed,
            already,
            key,
        })
    }

    /// Makes the new key the configured one: the key file is replaced (the old one kept as
    /// `<file>.old`, to be removed by the operator); a key from the environment is the
    /// operator's to change.
    async fn install(&self, next: &MasterKey, old: Option<&MasterKey>) -> Result<String> {
        let file = &self.config.master_key_file;
        let io = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        match (&next.source, old.map(|k| &k.source)) {
            (KeySource::File(next_file), _) => {
                if file.exists() {
                    let kept = sibling_key_file(file, ".old");
                    std::fs::rename(file, &kept).map_err(io(&kept))?;
                }
                std::fs::rename(next_file, file).map_err(io(file))?;
                Ok(file.display().to_string())
            }
            _ => Ok(format!(
                "set TENANTRY_MASTER_KEY to the value of {NEW_MASTER_KEY_ENV} and unset {NEW_MASTER_KEY_ENV}"
            )),
        }
    }
}
