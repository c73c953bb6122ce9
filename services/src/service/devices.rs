//! Trackers' secrets: minted (or rotated) and revoked in the store first, then in memory, so
//! that the ingest doors check them without reading the store.

use super::{Service, ServiceError};
use crate::layer::Layer;
use crate::positions::devices::{DeviceSecrets, new_secret, secret_hash};
use crate::positions::{Subject, TracePoint};
use crate::store::{DeviceSecretRecord, Store, StoreError};
use chrono::Utc;
use std::sync::Arc;

/// The secrets in force, read at start-up.
pub(super) async fn load(store: &dyn Store) -> Result<DeviceSecrets, StoreError> {
    Ok(DeviceSecrets::new(store.device_secrets().await?.into_iter().map(|r| (r.device_id, r.hash))))
}

impl Service {
    /// The secrets in force (shared with the ingest).
    #[must_use]
    pub fn device_secrets(&self) -> &Arc<DeviceSecrets> {
        &self.device_secrets
    }

    /// Who carries `device_id`: a responder or a key person, and its id.
    #[must_use]
    pub fn carrier_of(&self, device_id: &str) -> Option<(Subject, i64)> {
        if let Some(u) = self.layer(Layer::Responders).unit_of_device(device_id) {
            return Some((Subject::Responder, u));
        }
        self.layer(Layer::KeyPersonnel).unit_of_device(device_id).map(|p| (Subject::KeyPerson, p))
    }

    /// Mints a new secret for `device_id`, replacing (rotating) any earlier one at once, and
    /// returns it: the only time it exists outside the tracker (the store keeps its hash).
    ///
    /// # Errors
    /// [`ServiceError::Store`]; the earlier secret then stays in force.
    pub async fn mint_device_secret(&self, device_id: &str) -> Result<String, ServiceError> {
        let secret = new_secret();
        let hash = secret_hash(&secret);
        let _gate = self.device_secrets.gate.lock().await;
        self.store
            .put_device_secret(&DeviceSecretRecord {
                device_id: device_id.to_owned(),
                hash: hash.clone(),
                created_at: Utc::now(),
            })
            .await?;
        self.device_secrets.set(device_id, &hash);
        Ok(secret)
    }

    /// Revokes `device_id`'s secret: its fixes are refused from now on. `false`: it had none.
    ///
    /// # Errors
    /// [`ServiceError::Store`]; the secret then stays in force.
    pub async fn revoke_device_secret(&self, device_id: &str) -> Result<bool, ServiceError> {
        let _gate = self.device_secrets.gate.lock().await;
        let had = self.store.revoke_device_secret(device_id, Utc::now()).await?;
        self.device_secrets.remove(device_id);
        Ok(had)
    }

    /// Re-reads the secrets from the store, so that `safegrid device-secret` run beside a
    /// server takes effect without a restart.
    ///
    /// # Errors
    /// [`ServiceError::Store`]; the secrets in memory stay as they were.
    pub async fn reload_device_secrets(&self) -> Result<(), ServiceError> {
        let _gate = self.device_secrets.gate.lock().await;
        let rows = self.store.device_secrets().await?;
        self.device_secrets.replace(rows.into_iter().map(|r| (r.device_id, r.hash)));
        Ok(())
    }

    /// Each tracked unit's last live fix as read back at start-up: the ingest's noise filter is
    /// seeded from them, so that a first fix after a restart is judged against the stored
    /// history, not believed.
    #[must_use]
    pub fn restored_fixes(&self) -> Vec<TracePoint> {
        self.restored.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
