//! Items that something refers to. A dispatch refers to its incident and its units; a key
//! person's zone alert (kept by the store) to the person; (later) a case to what it is about. Deleting such an item would leave that history
//! pointing at nothing — an incident's timeline that answers 404 — so the service asks every
//! registered [`Referrer`] before it deletes, and refuses (409, naming what holds the item)
//! when one holds it. The modules above register themselves when the server is built; the
//! service keeps them weakly, since they hold the service.

use super::{Service, ServiceError, read, write};
use crate::layer::Layer;
use futures_util::future::BoxFuture;
use std::sync::{Arc, Weak};

/// A module above the service that keeps records about items.
pub trait Referrer: Send + Sync {
    /// Why item `id` of `layer` must not be deleted (naming what refers to it and what to do
    /// instead), or `None` when nothing here refers to it.
    fn holds(&self, layer: Layer, id: i64) -> BoxFuture<'_, Result<Option<String>, ServiceError>>;
}

impl Service {
    /// Registers a module that refers to items; see the module's documentation.
    pub fn add_referrer(&self, referrer: Weak<dyn Referrer>) {
        write(&self.referrers).push(referrer);
    }

    /// Why the item must not be deleted, if its alerts or any registered referrer hold it.
    pub(super) async fn held(&self, layer: Layer, id: i64) -> Result<Option<String>, ServiceError> {
        if layer == Layer::KeyPersonnel {
            let alerts = self.store.zone_alert_count(crate::records::Subject::KeyPerson, id).await?;
            if alerts > 0 {
                return Ok(Some(format!(
                    "key person {id} has {alerts} zone alert(s) on record: kept so that the alerts stay readable; set them inactive instead"
                )));
            }
        }
        let referrers: Vec<Arc<dyn Referrer>> = read(&self.referrers).iter().filter_map(Weak::upgrade).collect();
        for r in referrers {
            if let Some(why) = r.holds(layer, id).await? {
                return Ok(Some(why));
            }
        }
        Ok(None)
    }
}
