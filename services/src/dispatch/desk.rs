//! The dispatch desk: creates dispatches, moves units through their steps, makes city-wide
//! calls (全城响应), and raises deadline alarms. Each change is checked against the board,
//! stored in the append-only log, applied to the board, published, and mirrored in the
//! responder's status (dispatched, acknowledged, en route, on scene; available once cleared),
//! so the map wall and `nearest` see units as busy, and in the incident's (dispatched, on scene,
//! closed when its last dispatch closes; a cancelled dispatch reopens it or closes it).
//!
//! The desk refers to incidents and units ([`Refs`]), and tells the service so
//! ([`crate::service::Referrer`]): an incident with a dispatch, or a unit ever sent, is not
//! deleted — its timeline would be lost.
//!
//! Lock order: the incidents' write gate, then the board, then the responders' gate.
//! Everything that mirrors an incident's status takes the incidents' gate first; sending units
//! holds the responders' gate from their check to their new status, so that a unit cannot be
//! deleted while it is being sent (a delete holds that gate while it asks the desk).

use super::board::{Board, BoardError, DeadlineConfig, Dispatch, DispatchEvent, Refs, Step};
use crate::access::{Principal, Role};
use crate::layer::{IncidentStatus, Layer, Props, ResponderStatus};
use crate::roads::Arrival;
use crate::roads::Roads;
use crate::service::{LayerLock, Referrer, Service, ServiceError};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use safegrid_geodata::LonLat;
use safegrid_geodata::haversine_m;
use safegrid_geodata::roads::Mode;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, broadcast};

/// The `meta` key holding the deadline configuration.
const DEADLINES_KEY: &str = "dispatch.deadlines";

/// Why the desk refused.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Something named does not exist (or is outside the caller's grids).
    #[error("{what} {id} not found")]
    NotFound {
        /// `incident`, `responder`, `dispatch`.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a busy unit, a step backwards).
    #[error("{0}")]
    Conflict(String),
    /// A field is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Value,
        /// Why.
        reason: String,
    },
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The service refused.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<BoardError> for DeskError {
    fn from(e: BoardError) -> Self {
        match e {
            BoardError::NoDispatch(id) => Self::NotFound { what: "dispatch", id },
            other => Self::Conflict(other.to_string()),
        }
    }
}

/// What a city-wide call reached.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notified {
    /// Units: id, callsign, distance or ETA.
    pub units: Vec<Value>,
    /// Posts: id, name, distance or ETA.
    pub posts: Vec<Value>,
}

/// The desk.
pub struct Desk {
    service: Arc<Service>,
    /// Loaded from the store on first use, so that the desk can be built without waiting.
    loaded: tokio::sync::OnceCell<Loaded>,
    events: broadcast::Sender<DispatchEvent>,
}

struct Loaded {
    board: Mutex<Board>,
    /// What the log refers to, readable without the board (see [`Referrer`]).
    refs: RwLock<Refs>,
    deadlines: RwLock<DeadlineConfig>,
}

fn may_dispatch(who: &Principal) -> Result<(), DeskError> {
    if matches!(who.role, Role::Admin | Role::Dispatcher) {
        Ok(())
    } else {
        Err(DeskError::Forbidden(format!("role {} may not dispatch", who.role)))
    }
}

fn status_of(step: Step) -> ResponderStatus {
    match step {
        Step::Dispatched => ResponderStatus::Dispatched,
        Step::Acknowledged => ResponderStatus::Acknowledged,
        Step::EnRoute => ResponderStatus::EnRoute,
        Step::OnScene => ResponderStatus::OnScene,
        Step::Cleared => ResponderStatus::Available,
    }
}

impl Desk {
    /// A desk over the service's store; the log is read on first use.
    #[must_use]
    pub fn new(service: Arc<Service>) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self { service, loaded: tokio::sync::OnceCell::new(), events }
    }

    async fn loaded(&self) -> Result<&Loaded, DeskError> {
        self.loaded
            .get_or_try_init(|| async {
                let events = self.service.store().dispatch_events().await?;
                let deadlines = match self.service.store().meta(DEADLINES_KEY).await? {
                    Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "stored dispatch deadlines unreadable; using the defaults");
                        DeadlineConfig::default()
                    }),
                    None => DeadlineConfig::default(),
                };
                Ok::<_, DeskError>(Loaded {
                    board: Mutex::new(Board::from_events(&events)),
                    refs: RwLock::new(Refs::from_events(&events)),
                    deadlines: RwLock::new(deadlines),
                })
            })
            .await
    }

    async fn board(&self) -> Result<tokio::sync::MutexGuard<'_, Board>, DeskError> {
        Ok(self.loaded().await?.board.lock().await)
    }

    /// Dispatch events as they are stored (alarms included).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<DispatchEvent> {
        self.events.subscribe()
    }

    /// The deadline configuration.
    ///
    /// # Errors
    /// [`DeskError::Store`] when the desk cannot load.
    pub async fn deadlines(&self) -> Result<DeadlineConfig, DeskError> {
        Ok(self.loaded().await?.deadlines.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// Replaces the deadline configuration (admin); applies to dispatches created afterwards.
    ///
    /// # Errors
    /// [`DeskError::Forbidden`], [`DeskError::Invalid`], [`DeskError::Store`].
    pub async fn set_deadlines(&self, who: &Principal, config: DeadlineConfig) -> Result<(), DeskError> {
        if !who.is_admin() {
            return Err(DeskError::Forbidden(format!("role {} may not change deadlines", who.role)));
        }
        for (prefix, d) in std::iter::once((&"default".to_owned(), &config.default)).chain(&config.grids) {
            if d.ack_s == 0 || d.arrive_s == 0 || d.ack_s > d.arrive_s {
                return Err(DeskError::Invalid {
                    field: "grids",
                    value: json!({"grid": prefix, "ack_s": d.ack_s, "arrive_s": d.arrive_s}),
                    reason: "deadlines are positive, and acknowledging comes before arriving".into(),
                });
            }
        }
        let loaded = self.loaded().await?;
        let text = serde_json::to_string(&config).unwrap_or_default();
        self.service.store().set_meta(DEADLINES_KEY, &text).await?;
        *loaded.deadlines.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// Stores events (ids from the board), then applies and publishes them. On a store failure
    /// the board is as before, ids included.
    async fn record(&self, board: &mut Board, marks: (i64, i64), events: Vec<DispatchEvent>) -> Result<(), DeskError> {
        if let Err(e) = self.service.store().append_dispatch_events(&events).await {
            // The write may have landed although it reported failure: fold the log afresh, so
            // that ids are never reused; failing that, give the ids back.
            match self.service.store().dispatch_events().await {
                Ok(all) => *board = Board::from_events(&all),
                Err(_) => board.rewind(marks.0, marks.1),
            }
            return Err(e.into());
        }
        let loaded = self.loaded().await?;
        for e in events {
            board.apply(&e);
            loaded.refs.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(&e);
            let _ = self.events.send(e);
        }
        Ok(())
    }

    /// Mirrors a dispatch's course in its incident's status: `to` maps the status now to the
    /// one wanted (`None`: leave it). The caller holds the incidents' gate.
    async fn mirror_incident(
        &self,
        held: &LayerLock<'_>,
        incident: i64,
        to: impl FnOnce(IncidentStatus) -> Option<IncidentStatus>,
    ) {
        let now = match self.service.layer(Layer::Incidents).get(incident).map(|it| &it.props) {
            Some(Props::Incident(i)) => i.status,
            _ => return,
        };
        let Some(status) = to(now) else { return };
        if let Err(e) = self.service.set_incident_status(held, incident, status).await {
            tracing::warn!(incident, error = %e, "dispatch stored, but the incident's status was not updated");
        }
    }

    /// The incidents a dispatch is open for (the queue leaves them out whatever their status
    /// says: mirroring a dispatch into its incident can fail, and is then only logged).
    ///
    /// # Errors
    /// [`DeskError::Store`] when the desk cannot load.
    pub async fn incidents_in_hand(&self) -> Result<std::collections::HashSet<i64>, DeskError> {
        let refs = self.loaded().await?.refs.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(refs.incidents_with_open_dispatch())
    }

    /// Whether an incident has an open dispatch besides `except`.
    async fn other_open(&self, incident: i64, except: i64) -> Result<bool, DeskError> {
        let refs = self.loaded().await?.refs.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(refs.open_for_incident(incident).any(|d| d != except))
    }

    fn event(
        board: &mut Board,
        d: (i64, i64),
        unit: Option<i64>,
        kind: &str,
        who: &str,
        detail: Option<Value>,
    ) -> DispatchEvent {
        DispatchEvent {
            id: board.next_event_id(),
            dispatch_id: d.0,
            incident_id: d.1,
            unit_id: unit,
            post_id: None,
            kind: kind.into(),
            at: Utc::now(),
            actor: who.into(),
            detail,
        }
    }

    /// Mirrors steps in the responders' statuses (after the log has them); `held`: the
    /// responders' gate, when the caller holds it.
    async fn set_statuses(&self, held: Option<&LayerLock<'_>>, units: &[i64], step: Step) {
        for &u in units {
            if let Err(e) = self.service.set_responder_status(held, u, status_of(step)).await {
                tracing::warn!(unit = u, error = %e, "dispatch step stored, but the responder's status was not updated");
            }
        }
    }

    /// Refuses units that do not exist, are busy with a dispatch (the board decides, not the
    /// mirrored status, which a failed write could leave behind), are off duty, or are already
    /// part of `dispatch`.
    fn check_units(&self, board: &Board, units: &[i64], dispatch: Option<i64>) -> Result<(), DeskError> {
        let responders = self.service.layer(Layer::Responders);
        let mut seen = std::collections::HashSet::new();
        for &u in units {
            let Some(Props::Responder(r)) = responders.get(u).map(|it| &it.props) else {
                return Err(DeskError::NotFound { what: "responder", id: u });
            };
            if !seen.insert(u) {
                return Err(DeskError::Invalid { field: "units", value: json!(u), reason: "given twice".into() });
            }
            if let Some(d) = board.busy_with(u) {
                return Err(DeskError::Conflict(format!("unit {u} ({}) is busy with dispatch {d}", r.callsign)));
            }
            if dispatch.and_then(|d| board.get(d)).is_some_and(|d| d.units.contains_key(&u)) {
                return Err(DeskError::Conflict(format!(
                    "unit {u} ({}) was already sent on this dispatch",
                    r.callsign
                )));
            }
            if r.status == ResponderStatus::OffDuty {
                return Err(DeskError::Conflict(format!("unit {u} ({}) is off duty", r.callsign)));
            }
        }
        Ok(())
    }

    /// Creates a dispatch for an incident and sends `units`.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn create(
        &self,
        who: &Principal,
        incident_id: i64,
        units: &[i64],
        note: Option<String>,
    ) -> Result<Dispatch, DeskError> {
        may_dispatch(who)?;
        if units.is_empty() {
            return Err(DeskError::Invalid {
                field: "units",
                value: json!([]),
                reason: "send at least one unit".into(),
            });
        }
        // Before the incident is read: a delete holds this gate while it asks the desk.
        let incidents = self.service.lock_layer(Layer::Incidents).await;
        let grid = self
            .service
            .layer(Layer::Incidents)
            .get(incident_id)
            .map(|it| it.grid.clone())
            .ok_or(DeskError::NotFound { what: "incident", id: incident_id })?;
        let deadlines = self.deadlines().await?.for_grid(grid.as_ref());
        let mut board = self.board().await?;
        // Units are checked and sent under their gate: a unit cannot be deleted in between.
        let responders = self.service.lock_layer(Layer::Responders).await;
        self.check_units(&board, units, None)?;
        let marks = board.marks();
        let id = board.next_dispatch_id();
        let detail = json!({"grid_code": grid.as_ref().map(safegrid_geodata::GridCode::as_str), "deadlines": deadlines, "note": note});
        let mut events = vec![Self::event(&mut board, (id, incident_id), None, "created", &who.name, Some(detail))];
        for &u in units {
            events.push(Self::event(&mut board, (id, incident_id), Some(u), Step::Dispatched.name(), &who.name, None));
        }
        self.record(&mut board, marks, events).await?;
        // Still under the board's lock, so statuses are written in the order of the steps.
        self.set_statuses(Some(&responders), units, Step::Dispatched).await;
        drop(responders);
        // A new dispatch for a closed incident reopens it.
        self.mirror_incident(&incidents, incident_id, |now| {
            matches!(now, IncidentStatus::Open | IncidentStatus::Closed).then_some(IncidentStatus::Dispatched)
        })
        .await;
        board.get(id).cloned().ok_or(DeskError::NotFound { what: "dispatch", id })
    }

    /// Sends more units to an open dispatch.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn add_units(&self, who: &Principal, dispatch: i64, units: &[i64]) -> Result<Dispatch, DeskError> {
        may_dispatch(who)?;
        let mut board = self.board().await?;
        let d = board.get(dispatch).ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })?;
        if d.closed_at.is_some() {
            return Err(BoardError::Closed(dispatch).into());
        }
        let incident = d.incident_id;
        let responders = self.service.lock_layer(Layer::Responders).await;
        self.check_units(&board, units, Some(dispatch))?;
        let marks = board.marks();
        let events = units
            .iter()
            .map(|&u| Self::event(&mut board, (dispatch, incident), Some(u), Step::Dispatched.name(), &who.name, None))
            .collect();
        self.record(&mut board, marks, events).await?;
        self.set_statuses(Some(&responders), units, Step::Dispatched).await;
        board.get(dispatch).cloned().ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })
    }

    /// Moves a unit to its next step; the dispatch closes when its last unit clears.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn step(&self, who: &Principal, dispatch: i64, unit: i64, step: Step) -> Result<Dispatch, DeskError> {
        may_dispatch(who)?;
        let incidents = self.service.lock_layer(Layer::Incidents).await;
        let mut board = self.board().await?;
        board.check_step(dispatch, unit, step)?;
        let d = board.get(dispatch).ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })?;
        let incident = d.incident_id;
        let last_out = step == Step::Cleared && d.units.values().all(|a| a.unit_id == unit || a.step == Step::Cleared);
        let marks = board.marks();
        let mut events = vec![Self::event(&mut board, (dispatch, incident), Some(unit), step.name(), &who.name, None)];
        if last_out {
            events.push(Self::event(&mut board, (dispatch, incident), None, "closed", &who.name, None));
        }
        self.record(&mut board, marks, events).await?;
        self.set_statuses(None, &[unit], step).await;
        if last_out && !self.other_open(incident, dispatch).await? {
            self.mirror_incident(&incidents, incident, |_| Some(IncidentStatus::Closed)).await;
        } else if step == Step::OnScene {
            self.mirror_incident(&incidents, incident, |now| {
                matches!(now, IncidentStatus::Open | IncidentStatus::Dispatched).then_some(IncidentStatus::OnScene)
            })
            .await;
        }
        board.get(dispatch).cloned().ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })
    }

    /// Cancels an open dispatch: every unit still on it is cleared with `reason`, the dispatch
    /// closes, and the incident goes back to the queue (`open`) — or is closed, when
    /// `close_incident` (a false alarm, a duplicate) — unless another dispatch is still on it.
    ///
    /// # Errors
    /// [`DeskError`]: a closed dispatch is a conflict; an empty reason is invalid.
    pub async fn cancel(
        &self,
        who: &Principal,
        dispatch: i64,
        reason: &str,
        close_incident: bool,
    ) -> Result<Dispatch, DeskError> {
        may_dispatch(who)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(DeskError::Invalid {
                field: "reason",
                value: json!(reason),
                reason: "say why, in 1 to 500 characters".into(),
            });
        }
        let incidents = self.service.lock_layer(Layer::Incidents).await;
        let mut board = self.board().await?;
        let d = board.get(dispatch).ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })?;
        if d.closed_at.is_some() {
            return Err(BoardError::Closed(dispatch).into());
        }
        let incident = d.incident_id;
        let out: Vec<i64> = d.units.values().filter(|a| a.step != Step::Cleared).map(|a| a.unit_id).collect();
        let marks = board.marks();
        let why = json!({"cancelled": reason});
        let mut events: Vec<DispatchEvent> = out
            .iter()
            .map(|&u| {
                Self::event(
                    &mut board,
                    (dispatch, incident),
                    Some(u),
                    Step::Cleared.name(),
                    &who.name,
                    Some(why.clone()),
                )
            })
            .collect();
        let incident_after = if close_incident { "closed" } else { "open" };
        let closing = json!({"cancelled": reason, "incident": incident_after});
        events.push(Self::event(&mut board, (dispatch, incident), None, "closed", &who.name, Some(closing)));
        self.record(&mut board, marks, events).await?;
        self.set_statuses(None, &out, Step::Cleared).await;
        if !self.other_open(incident, dispatch).await? {
            let to = if close_incident { IncidentStatus::Closed } else { IncidentStatus::Open };
            self.mirror_incident(&incidents, incident, |_| Some(to)).await;
        }
        tracing::info!(dispatch, incident, actor = %who.name, reason, "dispatch cancelled");
        board.get(dispatch).cloned().ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })
    }

    /// 全城响应: notifies at once every unit (not off duty) and every post within `radius_m` of
    /// the incident, or within `within_s` of travel (units drive, posts' staff walk; straight-line
    /// estimates off the road network). Statuses do not change: a notification is not a dispatch.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn city_wide(
        &self,
        who: &Principal,
        dispatch: i64,
        radius_m: Option<f64>,
        within_s: Option<f64>,
        roads: Option<&Roads>,
    ) -> Result<Notified, DeskError> {
        may_dispatch(who)?;
        let reach = match (radius_m, within_s) {
            (Some(r), None) if r > 0.0 && r <= 50_000.0 => Reach::Radius(r),
            (None, Some(s)) if s > 0.0 && s <= 7_200.0 => Reach::Within(s),
            _ => {
                return Err(DeskError::Invalid {
                    field: "radius_m",
                    value: json!({"radius_m": radius_m, "within_s": within_s}),
                    reason: "give radius_m (up to 50,000 m) or within_s (up to 7,200 s), not both".into(),
                });
            }
        };
        let mut board = self.board().await?;
        let d = board.get(dispatch).ok_or(DeskError::NotFound { what: "dispatch", id: dispatch })?;
        let incident = d.incident_id;
        let at = self
            .service
            .layer(Layer::Incidents)
            .get(incident)
            .map(|it| it.pos)
            .ok_or(DeskError::NotFound { what: "incident", id: incident })?;
        let units: Vec<(i64, String, LonLat)> = self
            .service
            .layer(Layer::Responders)
            .iter()
            .filter_map(|it| match &it.props {
                Props::Responder(r) if r.status != ResponderStatus::OffDuty => {
                    Some((it.id, r.callsign.clone(), it.pos))
                }
                _ => None,
            })
            .collect();
        let posts: Vec<(i64, String, LonLat)> = self
            .service
            .layer(Layer::Posts)
            .iter()
            .filter_map(|it| match &it.props {
                Props::Post(p) => Some((it.id, p.name.clone(), it.pos)),
                _ => None,
            })
            .collect();
        let reached_units = reach.select(at, &units, roads, Mode::Drive);
        let reached_posts = reach.select(at, &posts, roads, Mode::Walk);
        let marks = board.marks();
        let mut events = Vec::new();
        for (i, how) in &reached_units {
            events.push(Self::event(
                &mut board,
                (dispatch, incident),
                Some(units[*i].0),
                "notified",
                &who.name,
                Some(how.clone()),
            ));
        }
        for (i, how) in &reached_posts {
            let mut e = Self::event(&mut board, (dispatch, incident), None, "notified", &who.name, Some(how.clone()));
            e.post_id = Some(posts[*i].0);
            events.push(e);
        }
        self.record(&mut board, marks, events).await?;
        let named = |list: &[(usize, Value)], all: &[(i64, String, LonLat)]| {
            list.iter().map(|(i, how)| json!({"id": all[*i].0, "name": all[*i].1, "reach": how})).collect()
        };
        Ok(Notified { units: named(&reached_units, &units), posts: named(&reached_posts, &posts) })
    }

    /// Raises the alarms due at `now`; returns them.
    ///
    /// # Errors
    /// [`DeskError::Store`].
    pub async fn raise_alarms(&self, now: DateTime<Utc>) -> Result<Vec<DispatchEvent>, DeskError> {
        let mut board = self.board().await?;
        let due = board.due_alarms(now);
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let marks = board.marks();
        let events: Vec<DispatchEvent> = due
            .into_iter()
            .map(|(d, i, u, kind)| Self::event(&mut board, (d, i), Some(u), kind, "safegrid", None))
            .collect();
        for e in &events {
            tracing::warn!(dispatch = e.dispatch_id, incident = e.incident_id, unit = e.unit_id, kind = %e.kind, "dispatch deadline missed");
        }
        self.record(&mut board, marks, events.clone()).await?;
        Ok(events)
    }

    /// Checks deadlines every second, for ever: the caller spawns it.
    pub async fn run_alarms(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = self.raise_alarms(Utc::now()).await {
                tracing::warn!(error = %e, "raising dispatch alarms failed; retrying in a second");
            }
        }
    }

    /// A dispatch.
    ///
    /// # Errors
    /// [`DeskError::Store`] when the desk cannot load.
    pub async fn get(&self, id: i64) -> Result<Option<Dispatch>, DeskError> {
        Ok(self.board().await?.get(id).cloned())
    }

    /// Dispatches, newest first.
    ///
    /// # Errors
    /// [`DeskError::Store`] when the desk cannot load.
    pub async fn list(&self, open_only: bool, limit: usize) -> Result<Vec<Dispatch>, DeskError> {
        Ok(self.board().await?.list(open_only).take(limit).cloned().collect())
    }

    /// An incident's dispatch log.
    ///
    /// # Errors
    /// [`DeskError::Store`] when the desk cannot load.
    pub async fn timeline(&self, incident: i64) -> Result<Vec<DispatchEvent>, DeskError> {
        Ok(self.board().await?.timeline(incident).to_vec())
    }
}

/// How far a city-wide call reaches.
#[derive(Debug, Clone, Copy)]
enum Reach {
    Radius(f64),
    Within(f64),
}

impl Reach {
    /// The members of `all` within reach of `at`, with how far: (index, detail).
    fn select(
        self,
        at: LonLat,
        all: &[(i64, String, LonLat)],
        roads: Option<&Roads>,
        mode: Mode,
    ) -> Vec<(usize, Value)> {
        use crate::dispatch::nearest::{ESTIMATE_DETOUR, ESTIMATE_MPS};
        match self {
            Self::Radius(r) => all
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let d = haversine_m(m.2, at);
                    (d <= r).then(|| (i, json!({"distance_m": d.round()})))
                })
                .collect(),
            Self::Within(limit) => {
                let estimate = |straight: f64| (straight * ESTIMATE_DETOUR / ESTIMATE_MPS, straight * ESTIMATE_DETOUR);
                let positions: Vec<LonLat> = all.iter().map(|m| m.2).collect();
                let arrivals =
                    roads.and_then(|r| r.race(mode, at, &positions, all.len(), estimate, false)).unwrap_or_else(|| {
                        (0..all.len())
                            .map(|index| {
                                let (eta_s, distance_m) = estimate(haversine_m(all[index].2, at));
                                Arrival { index, eta_s, distance_m, by_road: false }
                            })
                            .collect()
                    });
                arrivals
                    .into_iter()
                    .filter(|a| a.eta_s <= limit)
                    .map(|a| (a.index, json!({"eta_s": a.eta_s.round(), "eta_source": if a.by_road { "road" } else { "estimate" }})))
                    .collect()
            }
        }
    }
}

impl Referrer for Desk {
    fn holds(&self, layer: Layer, id: i64) -> BoxFuture<'_, Result<Option<String>, ServiceError>> {
        Box::pin(async move {
            let loaded = self.loaded().await.map_err(|e| match e {
                DeskError::Store(s) => ServiceError::Store(s),
                DeskError::Service(s) => s,
                other => ServiceError::Store(StoreError::Corrupt {
                    table: "dispatch_events",
                    key: String::new(),
                    reason: other.to_string(),
                }),
            })?;
            Ok(loaded.refs.read().unwrap_or_else(std::sync::PoisonError::into_inner).holds(layer, id))
        })
    }
}
