//! The service: the store plus the live state, and the rules that keep them in step.
//!
//! Writes go to the store first and to memory only once committed, under a per-layer gate so
//! that memory applies writes in the order the store committed them. Reads take a short read
//! lock on the live state and never touch the store — except the audit log, which is written
//! (durably) before any key-personnel data leaves the service.

use crate::access::{Principal, token_hash};
use crate::layer::{Item, Layer, Props};
use crate::live::{GridState, LayerState};
use crate::positions::live::{FreshnessConfig, LiveUnits};
use crate::positions::{Subject, TracePoint};
use crate::store::{ItemWrite, Store, StoreError, TokenRecord};
use chrono::Utc;
use safegrid_geodata::{GridCode, GridHierarchy, GridUnit, LonLat};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

mod audit_trail;
mod bulk;
mod devices;
mod references;
pub use audit_trail::AuditClock;
pub use bulk::{Import, RowLocator};
pub use references::Referrer;

/// Errors of the service layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No item with this id.
    #[error("no {layer} item with id {id}")]
    NotFound {
        /// The layer asked.
        layer: Layer,
        /// The id asked for.
        id: i64,
    },
    /// The caller's role or grid scope does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The input is well-formed but not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field at fault, as the client named it.
        field: String,
        /// The value refused, echoed back to the client.
        value: serde_json::Value,
        /// Why it is refused.
        reason: String,
    },
    /// Well-formed and acceptable, but in conflict with the current state (a device another
    /// item already carries).
    #[error("{field}: {reason}")]
    Conflict {
        /// The field at fault, as the client named it.
        field: String,
        /// The value in conflict, echoed back to the client.
        value: serde_json::Value,
        /// What it conflicts with.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A layer's write gate, held (see [`Service::lock_layer`]).
pub(crate) struct LayerLock<'a> {
    layer: Layer,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

struct LayerSlot {
    state: RwLock<LayerState>,
    gate: tokio::sync::Mutex<()>,
    last_id: AtomicI64,
}

/// The running service's data.
pub struct Service {
    store: Arc<dyn Store>,
    grids: RwLock<Arc<GridState>>,
    grid_gate: tokio::sync::Mutex<()>,
    layers: Vec<LayerSlot>,
    tokens: RwLock<HashMap<String, Principal>>,
    /// The latest fix of each responder that reported (its position is the responder's).
    units: RwLock<LiveUnits>,
    /// Trackers' secrets in force (hashes), checked by every ingest door ([`devices`]).
    device_secrets: Arc<crate::positions::devices::DeviceSecrets>,
    /// Each tracked unit's last live fix read back at start-up: the noise filter's seed.
    restored: std::sync::Mutex<Vec<TracePoint>>,
    /// The audit log's chain head and open runs of repeated reads ([`audit_trail`]).
    audit: audit_trail::Trail,
    /// Modules above that refer to items, asked before a delete ([`references`]).
    referrers: RwLock<Vec<std::sync::Weak<dyn Referrer>>>,
}

/// A poisoned lock means a writer panicked mid-update; the data it guards is still the last
/// consistent state we wrote (every update is a single insert/remove), so reading on is safe.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn load_tokens(store: &dyn Store) -> Result<HashMap<String, Principal>, StoreError> {
    Ok(store
        .tokens()
        .await?
        .into_iter()
        .map(|t| (t.hash, Principal { name: t.name, role: t.role, grids: t.grids }))
        .collect())
}

impl Service {
    /// Loads everything from the store and builds the live state.
    ///
    /// # Errors
    /// [`ServiceError`] when the store fails or holds an inconsistent grid layer.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, ServiceError> {
        let units = store.load_grids().await?;
        let hierarchy = GridHierarchy::new(units).map_err(|e| ServiceError::Invalid {
            field: "grid_units".into(),
            value: serde_json::Value::Null,
            reason: e.to_string(),
        })?;
        let mut layers = Vec::new();
        for layer in Layer::ALL {
            let items = store.load_items(layer).await?;
            // The store's high-water mark, not the largest id present: ids of deleted items are
            // never handed out again.
            let last = store.max_id(layer).await?;
            layers.push(LayerSlot {
                state: RwLock::new(LayerState::new(layer, items)),
                gate: tokio::sync::Mutex::new(()),
                last_id: AtomicI64::new(last),
            });
        }
        let tokens = load_tokens(store.as_ref()).await?;
        let device_secrets = Arc::new(devices::load(store.as_ref()).await?);
        let audit = audit_trail::Trail::load(store.as_ref()).await?;
        let service = Self {
            store,
            grids: RwLock::new(Arc::new(GridState::new(hierarchy))),
            grid_gate: tokio::sync::Mutex::new(()),
            layers,
            tokens: RwLock::new(tokens),
            units: RwLock::new(LiveUnits::default()),
            device_secrets,
            restored: std::sync::Mutex::default(),
            audit,
            referrers: RwLock::default(),
        };
        // Responders and monitored key persons stand where their last live fix put them, not
        // where they were entered.
        let grids = service.grids();
        let mut moves = Vec::new();
        for subject in [Subject::Responder, Subject::KeyPerson] {
            let ids: Vec<i64> = service
                .layer(subject.layer())
                .iter()
                .filter(|it| crate::live::device_of(it).is_some())
                .map(|it| it.id)
                .collect();
            for f in service.store.last_live_fixes(subject, &ids).await? {
                let g = grids.grid_of(f.pos);
                moves.push((f, g));
            }
        }
        service.apply_fixes(&moves, grids.version).await;
        *service.restored.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            moves.into_iter().map(|(f, _)| f).collect();
        Ok(service)
    }

    /// Sets the freshness thresholds of live positions.
    pub fn set_freshness(&self, config: FreshnessConfig) {
        let mut units = write(&self.units);
        let old = std::mem::take(&mut *units);
        *units = LiveUnits::new(config);
        for (id, f) in old.iter() {
            units.insert(id, *f);
        }
    }

    /// The latest fixes of the responders.
    pub fn live_units(&self) -> RwLockReadGuard<'_, LiveUnits> {
        read(&self.units)
    }

    /// Moves responders and tracked key persons to their new live fixes (stored already):
    /// position and grid in their layer (tiles, nearest, the wall); a responder's fix details in
    /// [`LiveUnits`]. Each grid was decided against the grid state of version `grids_version`
    /// (with geofence hysteresis); should the grid layer have changed since, the plain grid is
    /// taken instead.
    pub async fn apply_fixes(&self, moves: &[(TracePoint, Option<GridCode>)], grids_version: u64) {
        for subject in [Subject::Responder, Subject::KeyPerson] {
            let mine: Vec<&(TracePoint, Option<GridCode>)> =
                moves.iter().filter(|(f, _)| f.subject == subject).collect();
            if mine.is_empty() {
                continue;
            }
            let slot = &self.layers[subject.layer().index()];
            // The gate orders this against an edit of the item and against a grid change,
            // which re-locates every item under every gate.
            let _gate = slot.gate.lock().await;
            let grids = self.grids();
            let grids_changed = grids.version != grids_version;
            let mut relocated = Vec::with_capacity(mine.len());
            {
                let mut state = write(&slot.state);
                for (f, grid) in mine {
                    let grid = if grids_changed { grids.grid_of(f.pos) } else { grid.clone() };
                    if state.relocate(f.unit_id, f.pos, grid) {
                        relocated.push(f);
                    }
                }
            }
            if subject == Subject::Responder {
                let mut units = write(&self.units);
                for f in relocated {
                    units.set(f);
                }
            }
        }
    }

    /// Sets a responder's status (the dispatch desk mirrors each step here): stored, then live.
    /// `held`: the responders' gate, when the caller holds it already.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::Store`].
    pub(crate) async fn set_responder_status(
        &self,
        held: Option<&LayerLock<'_>>,
        id: i64,
        status: crate::layer::ResponderStatus,
    ) -> Result<(), ServiceError> {
        self.set_props(Layer::Responders, id, held, |p| match p {
            Props::Responder(r) if r.status != status => {
                r.status = status;
                true
            }
            _ => false,
        })
        .await
    }

    /// Sets an incident's status (the dispatch desk mirrors its dispatches' course here):
    /// stored, then live. The caller holds the incidents' gate ([`Self::lock_layer`]): the desk
    /// takes it before its board, so that a delete (which holds it while it asks the desk)
    /// never waits on a desk that waits on it.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::Store`].
    pub(crate) async fn set_incident_status(
        &self,
        held: &LayerLock<'_>,
        id: i64,
        status: crate::layer::IncidentStatus,
    ) -> Result<(), ServiceError> {
        let change = |p: &mut Props| match p {
            Props::Incident(i) if i.status != status => {
                i.status = status;
                true
            }
            _ => false,
        };
        self.set_props(Layer::Incidents, id, Some(held), change).await
    }

    /// The write gate of `layer`, held until the lock is dropped; for a module above that must
    /// order its own lock after the gate (see [`Self::set_incident_status`]).
    pub(crate) async fn lock_layer(&self, layer: Layer) -> LayerLock<'_> {
        LayerLock { layer, _guard: self.layers[layer.index()].gate.lock().await }
    }

    /// Changes an item's properties in place by `change` (which says whether it changed
    /// anything), under the layer's gate — taken here unless `held` is it: stored, then live.
    /// These are the dispatch log's mirrors, recorded there with who did what; they write no
    /// audit row of their own.
    async fn set_props(
        &self,
        layer: Layer,
        id: i64,
        held: Option<&LayerLock<'_>>,
        change: impl FnOnce(&mut Props) -> bool,
    ) -> Result<(), ServiceError> {
        let slot = &self.layers[layer.index()];
        let _gate = match held {
            Some(h) if h.layer == layer => None,
            _ => Some(slot.gate.lock().await),
        };
        let mut item = read(&slot.state).get(id).cloned().ok_or(ServiceError::NotFound { layer, id })?;
        if !change(&mut item.props) {
            return Ok(());
        }
        item.updated_at = Utc::now();
        if !self.store.update_item(&item).await? {
            return Err(ServiceError::NotFound { layer, id });
        }
        write(&slot.state).put(item);
        Ok(())
    }

    /// Refuses a device another responder or key person already carries: a fix must never be
    /// attached to the wrong one.
    fn check_device(&self, item: &Item) -> Result<(), ServiceError> {
        let Some(device) = crate::live::device_of(item) else { return Ok(()) };
        for layer in [Layer::Responders, Layer::KeyPersonnel] {
            match self.layer(layer).unit_of_device(device) {
                Some(other) if !(other == item.id && layer == item.layer()) => {
                    return Err(ServiceError::Conflict {
                        field: "properties.device_id".into(),
                        value: device.into(),
                        reason: format!("{layer} item {other} already carries this device"),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The store (for readiness checks and the audit log).
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current grid state (cheap: an `Arc`).
    #[must_use]
    pub fn grids(&self) -> Arc<GridState> {
        read(&self.grids).clone()
    }

    /// Read access to a layer's live state.
    pub fn layer(&self, layer: Layer) -> RwLockReadGuard<'_, LayerState> {
        read(&self.layers[layer.index()].state)
    }

    /// The caller a bearer token stands for.
    #[must_use]
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        read(&self.tokens).get(&token_hash(token)).cloned()
    }

    /// Re-reads the tokens from the store, so that tokens revoked or created by another
    /// process (`safegrid revoke`, `safegrid token`) take effect without a restart.
    ///
    /// # Errors
    /// [`ServiceError::Store`]; the tokens in memory stay as they were.
    pub async fn reload_tokens(&self) -> Result<(), ServiceError> {
        let tokens = load_tokens(self.store.as_ref()).await?;
        *write(&self.tokens) = tokens;
        Ok(())
    }

    /// Stores a new token for a principal.
    ///
    /// # Errors
    /// [`ServiceError::Store`].
    pub async fn add_token(&self, token: &str, p: &Principal) -> Result<(), ServiceError> {
        let hash = token_hash(token);
        self.store
            .put_token(&TokenRecord { hash: hash.clone(), name: p.name.clone(), role: p.role, grids: p.grids.clone() })
            .await?;
        write(&self.tokens).insert(hash, p.clone());
        Ok(())
    }

    /// May `who` write `item` (a new or changed item, at the place the caller asked for)?
    fn check_scope(who: &Principal, layer: Layer, item: &Item) -> Result<(), ServiceError> {
        if crate::policy::grant(crate::policy::Action::WriteLayer(layer), who.role) == crate::policy::Grant::Deny {
            return Err(ServiceError::Forbidden(format!("role {} may not change {layer}", who.role)));
        }
        if !who.covers_item(item) {
            return Err(ServiceError::Forbidden(format!("that place is outside the grids assigned to {}", who.name)));
        }
        Ok(())
    }

    /// A scoped caller (a grid worker) may neither bring anything into its reach nor send it out
    /// of it: a new item, and a changed item's old and new place, must lie in its own grids by
    /// position — a key person's `assigned_grid` alone does not do (else a worker could claim
    /// anyone by naming its own grid) — and a key person's `assigned_grid` is changed only by a
    /// role that sees every grid (admin), never re-pointed by a worker.
    fn check_reach(who: &Principal, old: Option<&Item>, new: &Item) -> Result<(), ServiceError> {
        if who.covers(None) {
            return Ok(());
        }
        let outside = || ServiceError::Forbidden(format!("that place is outside the grids assigned to {}", who.name));
        let moved = old.is_none_or(|o| o.pos != new.pos);
        if moved && (!who.covers(new.grid.as_ref()) || old.is_some_and(|o| !who.covers(o.grid.as_ref()))) {
            return Err(outside());
        }
        let assigned = |it: &Item| match &it.props {
            Props::KeyPerson(k) => Some(k.assigned_grid.clone()),
            _ => None,
        };
        match (old.and_then(assigned), assigned(new)) {
            (None, Some(g)) if !who.covers(Some(&g)) => Err(outside()),
            (Some(a), Some(b)) if a != b => Err(ServiceError::Forbidden(
                "a key person's assigned_grid is changed by an admin, not by a grid worker".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The stored item `id`, if it exists and lies within the caller's scope. An item outside
    /// the scope is answered as not found: a refusal would confirm that it exists (and, for key
    /// personnel, roughly where), which is itself a read the caller may not make.
    fn existing(&self, who: &Principal, layer: Layer, id: i64) -> Result<Item, ServiceError> {
        let slot = &self.layers[layer.index()];
        read(&slot.state).get(id).filter(|it| who.covers_item(it)).cloned().ok_or(ServiceError::NotFound { layer, id })
    }

    fn new_item(&self, id: i64, pos: LonLat, props: Props) -> Item {
        let now = Utc::now();
        Item { id, pos, grid: self.grids().grid_of(pos), props, created_at: now, updated_at: now }
    }

    /// Creates an item (audited by [`Service::create`]).
    async fn create_item(&self, who: &Principal, pos: LonLat, props: Props) -> Result<Item, ServiceError> {
        let layer = props.layer();
        let slot = &self.layers[layer.index()];
        let _gate = slot.gate.lock().await;
        let id = slot.last_id.load(Ordering::SeqCst) + 1;
        let item = self.new_item(id, pos, props);
        Self::check_scope(who, layer, &item)?;
        Self::check_reach(who, None, &item)?;
        self.check_device(&item)?;
        self.store_write(who, "create", ItemWrite::Insert(&item), None).await?;
        slot.last_id.store(id, Ordering::SeqCst);
        write(&slot.state).put(item.clone());
        Ok(item)
    }

    /// Replaces an item's position and properties (audited by [`Service::update`]).
    async fn update_item(&self, who: &Principal, id: i64, pos: LonLat, props: Props) -> Result<Item, ServiceError> {
        let layer = props.layer();
        let slot = &self.layers[layer.index()];
        let _gate = slot.gate.lock().await;
        let old = self.existing(who, layer, id)?;
        Self::check_scope(who, layer, &old)?;
        let mut item = self.new_item(id, pos, props);
        item.created_at = old.created_at;
        Self::check_scope(who, layer, &item)?;
        Self::check_reach(who, Some(&old), &item)?;
        self.check_device(&item)?;
        let given_up = crate::live::device_of(&old).filter(|d| crate::live::device_of(&item) != Some(*d));
        if !self.store_write(who, "update", ItemWrite::Update(&item), given_up).await? {
            return Err(ServiceError::NotFound { layer, id });
        }
        write(&slot.state).put(item.clone());
        Ok(item)
    }

    /// Deletes an item (audited by [`Service::delete`]).
    async fn delete_item(&self, who: &Principal, layer: Layer, id: i64) -> Result<Item, ServiceError> {
        let slot = &self.layers[layer.index()];
        let _gate = slot.gate.lock().await;
        let old = self.existing(who, layer, id)?;
        Self::check_scope(who, layer, &old)?;
        // Under the layer's gate: whatever would refer to the item takes the gate too before
        // it does (the dispatch desk's new dispatch takes the incidents' gate).
        if let Some(reason) = self.held(layer, id).await? {
            return Err(ServiceError::Conflict { field: "id".into(), value: id.into(), reason });
        }
        if !self.store_write(who, "delete", ItemWrite::Delete(layer, id), crate::live::device_of(&old)).await? {
            return Err(ServiceError::NotFound { layer, id });
        }
        write(&slot.state).remove(id);
        if layer == Layer::Responders {
            write(&self.units).remove(id);
        }
        Ok(old)
    }

    /// The write gate of a layer (see the module's documentation).
    pub(crate) fn layer_gate(&self, layer: Layer) -> &tokio::sync::Mutex<()> {
        &self.layers[layer.index()].gate
    }

    /// Inserts or replaces one grid unit (admin). The hierarchy must stay consistent; items whose
    /// grid changes with the new boundary are re-located in the same transaction.
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for non-admins, [`ServiceError::Invalid`] when the unit breaks
    /// the hierarchy, [`ServiceError::Store`].
    pub async fn put_grid(&self, who: &Principal, unit: GridUnit) -> Result<(), ServiceError> {
        if !who.is_admin() {
            return Err(ServiceError::Forbidden(format!("role {} may not change grids", who.role)));
        }
        let _gate = self.grid_gate.lock().await;
        let current = self.grids();
        let mut units: Vec<GridUnit> =
            current.hierarchy.units().iter().filter(|u| u.code != unit.code).cloned().collect();
        units.push(unit.clone());
        let hierarchy = GridHierarchy::new(units).map_err(|e| ServiceError::Invalid {
            field: "properties.code".into(),
            value: unit.code.as_str().into(),
            reason: e.to_string(),
        })?;
        self.change_grids(hierarchy, std::slice::from_ref(&unit), false).await
    }

    /// Replaces the whole grid layer and re-locates every item (import and the demo).
    ///
    /// # Errors
    /// [`ServiceError::Store`]; nothing changes on error.
    pub async fn replace_grids(&self, hierarchy: GridHierarchy) -> Result<(), ServiceError> {
        let _gate = self.grid_gate.lock().await;
        let units = hierarchy.units().to_vec();
        self.change_grids(hierarchy, &units, true).await
    }

    /// Re-locates every item against `hierarchy`, then stores the grid change and the moved
    /// items in one transaction, then swaps the live state. Holds every layer's write gate
    /// throughout, so no write lands in between. Callers hold the grid gate.
    async fn change_grids(
        &self,
        hierarchy: GridHierarchy,
        units: &[GridUnit],
        replace_all: bool,
    ) -> Result<(), ServiceError> {
        let state = Arc::new(GridState::new(hierarchy));
        let mut gates = Vec::with_capacity(self.layers.len());
        for slot in &self.layers {
            gates.push(slot.gate.lock().await);
        }
        let mut moved: Vec<Item> = Vec::new();
        for slot in &self.layers {
            moved.extend(read(&slot.state).iter().filter_map(|it| {
                let g = state.grid_of(it.pos);
                (g != it.grid).then(|| Item { grid: g, ..it.clone() })
            }));
        }
        self.store.write_grids(units, replace_all, &moved).await?;
        *write(&self.grids) = state;
        let n = moved.len();
        for it in moved {
            write(&self.layers[it.layer().index()].state).put(it);
        }
        tracing::info!(units = units.len(), replace_all, relocated = n, "grid layer changed");
        drop(gates);
        Ok(())
    }

    /// Counts per layer, for metrics and the demo banner.
    #[must_use]
    pub fn counts(&self) -> Vec<(Layer, usize)> {
        Layer::ALL.iter().map(|&l| (l, self.layer(l).len())).collect()
    }
}
