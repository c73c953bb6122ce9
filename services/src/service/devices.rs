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

    /// Mints a new secret for the device some responder or key person carries, replacing
    /// (rotating) any earlier one at once; returns the carrier and the secret — the only time it
    /// exists outside the tracker (the store keeps its hash). `None`: nobody carries the device,
    /// and nothing is minted.
    ///
    /// The carrier is checked under both carrying layers' write gates and the secrets' gate, in
    /// the order every write takes them: a delete or a `device_id` change that revokes the
    /// secret cannot slip between the check and the mint and leave a secret nobody's write
    /// will ever revoke.
    ///
    /// # Errors
    /// [`ServiceError::Store`]; the earlier secret then stays in force.
    pub async fn mint_device_secret(&self, device_id: &str) -> Result<Option<((Subject, i64), String)>, ServiceError> {
        let mut gates = Vec::with_capacity(2);
        for layer in Layer::ALL {
            if matches!(layer, Layer::Responders | Layer::KeyPersonnel) {
                gates.push(self.layer_gate(layer).lock().await);
            }
        }
        let _devices = self.device_secrets.gate.lock().await;
        let Some(carrier) = self.carrier_of(device_id) else { return Ok(None) };
        let secret = new_secret();
        let hash = secret_hash(&secret);
        self.store
            .put_device_secret(&DeviceSecretRecord {
                device_id: device_id.to_owned(),
                hash: hash.clone(),
                created_at: Utc::now(),
            })
            .await?;
        self.device_secrets.set(device_id, &hash);
        Ok(Some((carrier, secret)))
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
