//! The dispatch board: every dispatch and its units, folded from an append-only event log.
//! Pure state: the desk ([`super::desk`]) validates, stores, and then applies events here.
//!
//! A unit's steps go forward only: dispatched → acknowledged → en route → on scene → cleared
//! (a step may be skipped: a unit already there is on scene at once). Deadlines are set when the
//! dispatch is created, from the incident's grid ([`DeadlineConfig`]): acknowledge within
//! `ack_s` of being dispatched, be on scene within `arrive_s`. A missed deadline raises one
//! alarm per unit and kind.

use chrono::{DateTime, Duration, Utc};
use safegrid_geodata::GridCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub use crate::records::DispatchEvent;

/// A unit's step in a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Sent.
    Dispatched,
    /// The unit said it has the job.
    Acknowledged,
    /// On its way.
    EnRoute,
    /// There.
    OnScene,
    /// Done; the unit is free again.
    Cleared,
}

impl Step {
    /// Every step in order.
    pub const ALL: [Step; 5] = [Step::Dispatched, Step::Acknowledged, Step::EnRoute, Step::OnScene, Step::Cleared];

    /// The step's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dispatched => "dispatched",
            Self::Acknowledged => "acknowledged",
            Self::EnRoute => "en_route",
            Self::OnScene => "on_scene",
            Self::Cleared => "cleared",
        }
    }

    /// Parses a step name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// How long a unit has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Seconds from dispatch to acknowledgement.
    pub ack_s: u32,
    /// Seconds from dispatch to arrival on scene.
    pub arrive_s: u32,
}

/// Deadlines by grid: a code prefix's values override the defaults for every grid beneath it
/// (the longest prefix wins), so a suburban district can be given 10 minutes to arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineConfig {
    /// Where no prefix matches: acknowledge in 60 s, arrive in 5 minutes (urban).
    #[serde(default = "DeadlineConfig::urban")]
    pub default: Deadlines,
    /// By grid-code prefix.
    #[serde(default)]
    pub grids: BTreeMap<String, Deadlines>,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self { default: Self::urban(), grids: BTreeMap::new() }
    }
}

impl DeadlineConfig {
    fn urban() -> Deadlines {
        Deadlines { ack_s: 60, arrive_s: 300 }
    }

    /// The deadlines of a grid.
    #[must_use]
    pub fn for_grid(&self, grid: Option<&GridCode>) -> Deadlines {
        let Some(code) = grid else { return self.default };
        self.grids
            .iter()
            .filter(|(prefix, _)| code.as_str().starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, d)| *d)
    }
}

/// One unit in a dispatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    /// The responder.
    pub unit_id: i64,
    /// Its latest step.
    pub step: Step,
    /// When it reached each step (by step name).
    pub times: BTreeMap<&'static str, DateTime<Utc>>,
    /// Alarms raised: `ack_overdue`, `arrival_overdue`.
    pub alarms: Vec<String>,
}

/// One dispatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dispatch {
    /// Its id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The incident's grid when the dispatch was created.
    pub grid_code: Option<String>,
    /// When and by whom.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// The deadlines that apply.
    pub deadlines: Deadlines,
    /// Units, by id.
    pub units: BTreeMap<i64, Assignment>,
    /// Units and posts notified by a city-wide call.
    pub notified: Vec<Value>,
    /// When every unit had cleared.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was cancelled, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// No such dispatch.
    #[error("no dispatch {0}")]
    NoDispatch(i64),
    /// The unit is not in the dispatch.
    #[error("unit {unit} is not part of dispatch {dispatch}")]
    NotAssigned {
        /// The dispatch.
        dispatch: i64,
        /// The unit.
        unit: i64,
    },
    /// A step back, or the same step again.
    #[error("unit {unit} is already {at}; it cannot go to {to}")]
    Backwards {
        /// The unit.
        unit: i64,
        /// Where it is.
        at: &'static str,
        /// Where it was asked to go.
        to: &'static str,
    },
    /// The dispatch is closed.
    #[error("dispatch {0} is closed")]
    Closed(i64),
}

/// Every dispatch.
#[derive(Debug, Default)]
pub struct Board {
    dispatches: BTreeMap<i64, Dispatch>,
    timelines: HashMap<i64, Vec<DispatchEvent>>,
    /// The open dispatch each busy unit is in.
    busy: HashMap<i64, i64>,
    last_event: i64,
    last_dispatch: i64,
}

impl Board {
    /// Folds a log.
    #[must_use]
    pub fn from_events(events: &[DispatchEvent]) -> Self {
        let mut b = Self::default();
        for e in events {
            b.apply(e);
        }
        b
    }

    /// The next event id (the caller stores the event, then applies it).
    pub fn next_event_id(&mut self) -> i64 {
        self.last_event += 1;
        self.last_event
    }

    /// The next dispatch id.
    pub fn next_dispatch_id(&mut self) -> i64 {
        self.last_dispatch += 1;
        self.last_dispatch
    }

    /// Gives ids back after a failed store write, so the sequence has no gaps.
    pub fn rewind(&mut self, last_event: i64, last_dispatch: i64) {
        self.last_event = last_event;
        self.last_dispatch = last_dispatch;
    }

    /// (last event id, last dispatch id), for [`Self::rewind`].
    #[must_use]
    pub fn marks(&self) -> (i64, i64) {
        (self.last_event, self.last_dispatch)
    }

    /// A dispatch.
    #[must_use]
    pub fn get(&self, id: i64) -> Option<&Dispatch> {
        self.dispatches.get(&id)
    }

    /// Every dispatch, newest first, open ones only if asked.
    pub fn list(&self, open_only: bool) -> impl Iterator<Item = &Dispatch> {
        self.dispatches.values().rev().filter(move |d| !open_only || d.closed_at.is_none())
    }

    /// An incident's log, in order.
    #[must_use]
    pub fn timeline(&self, incident: i64) -> &[DispatchEvent] {
        self.timelines.get(&incident).map_or(&[], Vec::as_slice)
    }

    /// The open dispatch a unit is busy with.
    #[must_use]
    pub fn busy_with(&self, unit: i64) -> Option<i64> {
        self.busy.get(&unit).copied()
    }

    /// Checks a unit's step without changing anything.
    ///
    /// # Errors
    /// [`BoardError`].
    pub fn check_step(&self, dispatch: i64, unit: i64, to: Step) -> Result<(), BoardError> {
        let d = self.dispatches.get(&dispatch).ok_or(BoardError::NoDispatch(dispatch))?;
        if d.closed_at.is_some() {
            return Err(BoardError::Closed(dispatch));
        }
        let a = d.units.get(&unit).ok_or(BoardError::NotAssigned { dispatch, unit })?;
        if to <= a.step {
            return Err(BoardError::Backwards { unit, at: a.step.name(), to: to.name() });
        }
        Ok(())
    }

    /// Applies a stored event.
    pub fn apply(&mut self, e: &DispatchEvent) {
        self.last_event = self.last_event.max(e.id);
        self.last_dispatch = self.last_dispatch.max(e.dispatch_id);
        self.timelines.entry(e.incident_id).or_default().push(e.clone());
        if e.kind == "created" {
            let detail = e.detail.clone().unwrap_or(Value::Null);
            let deadlines = serde_json::from_value(detail["deadlines"].clone())
                .unwrap_or_else(|_| DeadlineConfig::default().default);
            self.dispatches.insert(
                e.dispatch_id,
                Dispatch {
                    id: e.dispatch_id,
                    incident_id: e.incident_id,
                    grid_code: detail["grid_code"].as_str().map(str::to_owned),
                    created_at: e.at,
                    created_by: e.actor.clone(),
                    deadlines,
                    units: BTreeMap::new(),
                    notified: Vec::new(),
                    closed_at: None,
                    cancelled: None,
                },
            );
            return;
        }
        let Some(d) = self.dispatches.get_mut(&e.dispatch_id) else { return };
        match (e.kind.as_str(), e.unit_id) {
            ("closed", _) => {
                d.closed_at = Some(e.at);
                d.cancelled = e.detail.as_ref().and_then(|v| v["cancelled"].as_str()).map(str::to_owned);
                for u in d.units.keys() {
                    if self.busy.get(u) == Some(&d.id) {
                        self.busy.remove(u);
                    }
                }
            }
            ("notified", _) => d
                .notified
                .push(serde_json::json!({"unit_id": e.unit_id, "post_id": e.post_id, "at": e.at, "detail": e.detail})),
            ("ack_overdue" | "arrival_overdue", Some(u)) => {
                if let Some(a) = d.units.get_mut(&u) {
                    a.alarms.push(e.kind.clone());
                }
            }
            (kind, Some(u)) => {
                let Some(step) = Step::parse(kind) else { return };
                let a = d.units.entry(u).or_insert_with(|| Assignment {
                    unit_id: u,
                    step,
                    times: BTreeMap::new(),
                    alarms: Vec::new(),
                });
                a.step = a.step.max(step);
                a.times.insert(step.name(), e.at);
                if step == Step::Cleared {
                    if self.busy.get(&u) == Some(&d.id) {
                        self.busy.remove(&u);
                    }
                } else {
                    self.busy.insert(u, d.id);
                }
            }
            _ => {}
        }
    }

    /// Alarms due at `now` and not yet raised: (dispatch, incident, unit, kind).
    #[must_use]
    pub fn due_alarms(&self, now: DateTime<Utc>) -> Vec<(i64, i64, i64, &'static str)> {
        let mut out = Vec::new();
        for d in self.dispatches.values().filter(|d| d.closed_at.is_none()) {
            for a in d.units.values() {
                let Some(&sent) = a.times.get(Step::Dispatched.name()) else { continue };
                let raised = |k: &str| a.alarms.iter().any(|x| x == k);
                if a.step < Step::Acknowledged
                    && now >= sent + Duration::seconds(i64::from(d.deadlines.ack_s))
                    && !raised("ack_overdue")
                {
                    out.push((d.id, d.incident_id, a.unit_id, "ack_overdue"));
                }
                if a.step < Step::OnScene
                    && now >= sent + Duration::seconds(i64::from(d.deadlines.arrive_s))
                    && !raised("arrival_overdue")
                {
                    out.push((d.id, d.incident_id, a.unit_id, "arrival_overdue"));
                }
            }
        }
        out
    }
}

/// Which items the dispatch log refers to, kept beside the board (behind a plain lock, so that
/// the service can ask before a delete without waiting for the board): every incident that has
/// had a dispatch, every unit that has been sent, and the dispatches still open.
#[derive(Debug, Default)]
pub struct Refs {
    incidents: HashMap<i64, Vec<i64>>,
    units: HashMap<i64, Vec<i64>>,
    open: std::collections::HashSet<i64>,
    /// (unit, dispatch) pairs where the unit has cleared.
    cleared: std::collections::HashSet<(i64, i64)>,
}

impl Refs {
    /// Folds a log.
    #[must_use]
    pub fn from_events(events: &[DispatchEvent]) -> Self {
        let mut r = Self::default();
        for e in events {
            r.apply(e);
        }
        r
    }

    /// Notes a stored event.
    pub fn apply(&mut self, e: &DispatchEvent) {
        let note = |list: &mut Vec<i64>| {
            if list.last() != Some(&e.dispatch_id) {
                list.push(e.dispatch_id);
            }
        };
        note(self.incidents.entry(e.incident_id).or_default());
        match (e.kind.as_str(), e.unit_id) {
            ("created", _) => {
                self.open.insert(e.dispatch_id);
            }
            ("closed", _) => {
                self.open.remove(&e.dispatch_id);
            }
            (kind, Some(u)) if Step::parse(kind).is_some() => {
                note(self.units.entry(u).or_default());
                if kind == Step::Cleared.name() {
                    self.cleared.insert((u, e.dispatch_id));
                }
            }
            _ => {}
        }
    }

    /// The open dispatches of an incident.
    pub fn open_for_incident(&self, incident: i64) -> impl Iterator<Item = i64> + '_ {
        self.incidents.get(&incident).into_iter().flatten().copied().filter(|d| self.open.contains(d))
    }

    /// The incidents with an open dispatch.
    #[must_use]
    pub fn incidents_with_open_dispatch(&self) -> std::collections::HashSet<i64> {
        self.incidents.iter().filter(|(_, ds)| ds.iter().any(|d| self.open.contains(d))).map(|(i, _)| *i).collect()
    }

    /// Why an item the log refers to must not be deleted (see `service::Referrer`).
    #[must_use]
    pub fn holds(&self, layer: crate::layer::Layer, id: i64) -> Option<String> {
        use crate::layer::Layer;
        let (dispatches, what) = match layer {
            Layer::Incidents => (self.incidents.get(&id)?, "incident"),
            Layer::Responders => (self.units.get(&id)?, "unit"),
            _ => return None,
        };
        let still_on =
            |d: &&i64| self.open.contains(*d) && (layer != Layer::Responders || !self.cleared.contains(&(id, **d)));
        if let Some(open) = dispatches.iter().find(still_on) {
            return Some(match layer {
                Layer::Incidents => format!(
                    "{what} {id} has open dispatch {open}: close it through the dispatch, or cancel the dispatch (POST /api/v1/dispatches/{open}/cancel)"
                ),
                _ => format!("{what} {id} is on open dispatch {open}: clear it from the dispatch first"),
            });
        }
        let last = dispatches.last()?;
        Some(match layer {
            Layer::Incidents => format!(
                "{what} {id} has a dispatch history (dispatch {last}): it is kept so that its timeline stays readable; set its status to closed instead"
            ),
            _ => format!(
                "{what} {id} is in the history of dispatch {last}: it is kept so that the timeline stays readable; set its status to off_duty instead"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, kind: &str, unit: Option<i64>, secs: i64) -> DispatchEvent {
        DispatchEvent {
            id,
            dispatch_id: 1,
            incident_id: 9,
            unit_id: unit,
            post_id: None,
            kind: kind.into(),
            at: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            actor: "t".into(),
            detail: (kind == "created").then(|| serde_json::json!({"deadlines": {"ack_s": 60, "arrive_s": 300}})),
        }
    }

    #[test]
    fn each_deadline_raises_its_alarm_once_and_only_when_missed() {
        let mut b = Board::from_events(&[
            ev(1, "created", None, 0),
            ev(2, "dispatched", Some(5), 0),
            ev(3, "dispatched", Some(6), 0),
        ]);
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        assert!(b.due_alarms(at(59)).is_empty());
        b.apply(&ev(4, "acknowledged", Some(6), 30));
        assert_eq!(b.due_alarms(at(60)), [(1, 9, 5, "ack_overdue")]);
        b.apply(&ev(5, "ack_overdue", Some(5), 60));
        assert!(b.due_alarms(at(61)).is_empty(), "raised once");
        b.apply(&ev(6, "on_scene", Some(6), 200));
        let due = b.due_alarms(at(300));
        assert_eq!(due, [(1, 9, 5, "arrival_overdue")], "unit 6 arrived in time");
        assert_eq!(b.busy_with(5), Some(1));
    }

    #[test]
    fn steps_only_go_forward_and_clearing_frees_the_unit() {
        let mut b = Board::from_events(&[ev(1, "created", None, 0), ev(2, "dispatched", Some(5), 0)]);
        assert!(b.check_step(1, 5, Step::OnScene).is_ok(), "a step may be skipped");
        b.apply(&ev(3, "on_scene", Some(5), 100));
        assert_eq!(
            b.check_step(1, 5, Step::EnRoute),
            Err(BoardError::Backwards { unit: 5, at: "on_scene", to: "en_route" })
        );
        assert_eq!(b.check_step(1, 7, Step::Cleared), Err(BoardError::NotAssigned { dispatch: 1, unit: 7 }));
        b.apply(&ev(4, "cleared", Some(5), 200));
        assert_eq!(b.busy_with(5), None);
        assert_eq!(b.timeline(9).len(), 4);
    }

    #[test]
    fn the_longest_grid_prefix_sets_the_deadlines() {
        let mut c = DeadlineConfig::default();
        c.grids.insert("440307".into(), Deadlines { ack_s: 60, arrive_s: 600 });
        c.grids.insert("440307001".into(), Deadlines { ack_s: 30, arrive_s: 900 });
        let g = |s: &str| GridCode::parse(s).unwrap();
        assert_eq!(c.for_grid(Some(&g("440304001"))).arrive_s, 300);
        assert_eq!(c.for_grid(Some(&g("440307002"))).arrive_s, 600);
        assert_eq!(c.for_grid(Some(&g("440307001"))), Deadlines { ack_s: 30, arrive_s: 900 });
        assert_eq!(c.for_grid(None).arrive_s, 300);
    }
}
