//! The records the store keeps for the features above it — a fix as stored ([`TracePoint`]), a
//! grid crossing ([`GridEvent`]), a row of the dispatch log ([`DispatchEvent`]) — defined here,
//! below both, so that the store depends on nothing above it and the features depend on the
//! store and these, never the other way (`positions`, `positions::geofence` and
//! `dispatch::board` re-export them where their readers look).

use chrono::{DateTime, Utc};
use safegrid_geodata::{GridCode, LonLat};
use serde::Serialize;
use serde_json::Value;

/// Why a stored fix did not move the unit's live position (bits of [`TracePoint::flags`]).
pub mod flags {
    /// Older than the unit's live fix: history only.
    pub const LATE: u8 = 1;
    /// An impossible jump from the live fix (faster than the configured maximum speed).
    pub const JUMP: u8 = 2;
    /// Worse than the accuracy threshold.
    pub const INACCURATE: u8 = 4;
    /// The device marked it invalid.
    pub const INVALID: u8 = 8;

    /// The names of the bits set, for APIs and exports.
    #[must_use]
    pub fn names(f: u8) -> Vec<&'static str> {
        [(LATE, "late"), (JUMP, "jump"), (INACCURATE, "inaccurate"), (INVALID, "invalid")]
            .into_iter()
            .filter(|(b, _)| f & b != 0)
            .map(|(_, n)| n)
            .collect()
    }
}

/// Who a tracker belongs to: a responder, or a key person under electronic monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// An item of the responders layer.
    Responder,
    /// An item of the key-personnel layer.
    KeyPerson,
}

impl Subject {
    /// The stored code (`subject` columns).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Responder => 0,
            Self::KeyPerson => 1,
        }
    }

    /// The subject of a stored code.
    #[must_use]
    pub fn from_code(c: i64) -> Option<Self> {
        match c {
            0 => Some(Self::Responder),
            1 => Some(Self::KeyPerson),
            _ => None,
        }
    }

    /// The layer its items live in.
    #[must_use]
    pub fn layer(self) -> crate::layer::Layer {
        match self {
            Self::Responder => crate::layer::Layer::Responders,
            Self::KeyPerson => crate::layer::Layer::KeyPersonnel,
        }
    }
}

/// A fix as stored: attached to a responder or a key person, with the noise checks' flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    /// Whose fix.
    pub subject: Subject,
    /// The item's id in the subject's layer.
    pub unit_id: i64,
    /// When the fix was taken (millisecond precision: what the store keeps).
    pub time: DateTime<Utc>,
    /// Position.
    pub pos: LonLat,
    /// Ground speed, m/s.
    pub speed_mps: Option<f32>,
    /// Course, degrees.
    pub bearing_deg: Option<f32>,
    /// Altitude, metres.
    pub altitude_m: Option<f32>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f32>,
    /// Battery, percent.
    pub battery_pct: Option<f32>,
    /// See [`flags`]; 0 for a fix that became the live position.
    pub flags: u8,
    /// The tracker's other parameters as a JSON object, if it sent any.
    pub attributes: Option<String>,
    /// When safegrid received it.
    pub received: DateTime<Utc>,
}

/// Milliseconds since the epoch: the precision the store keeps.
#[must_use]
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of a stored millisecond count (clamped into chrono's range).
#[must_use]
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Truncates an instant to whole milliseconds, so that what is compared in memory is what the
/// store keeps.
#[must_use]
pub fn to_store_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(to_millis(t))
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The subject entered the grid.
    Enter,
    /// The subject left the grid.
    Exit,
    /// A key person broke their zone (left a stay-inside zone, entered a keep-out zone).
    ZoneBreach,
    /// A key person is back within their zone's terms.
    ZoneReturn,
}

impl EventKind {
    /// Every kind.
    const ALL: [EventKind; 4] = [Self::Enter, Self::Exit, Self::ZoneBreach, Self::ZoneReturn];

    /// The kind's name, as stored.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Enter => "enter",
            Self::Exit => "exit",
            Self::ZoneBreach => "zone_breach",
            Self::ZoneReturn => "zone_return",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One grid crossing or zone alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridEvent {
    /// Sequence number: a client resumes after the last one it saw.
    pub id: i64,
    /// The time of the fix that decided it.
    pub time: DateTime<Utc>,
    /// A responder or a key person.
    pub subject: Subject,
    /// The item's id in the subject's layer.
    pub unit_id: i64,
    /// What happened.
    pub kind: EventKind,
    /// The grid entered or left; for a zone alert, the person's assigned grid (whose worker is
    /// alerted).
    pub grid_code: GridCode,
    /// Where the fix was.
    #[serde(serialize_with = "lonlat")]
    pub pos: LonLat,
}

fn lonlat<S: serde::Serializer>(p: &LonLat, s: S) -> Result<S::Ok, S::Error> {
    [p.lon(), p.lat()].serialize(s)
}

/// One row of the dispatch log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchEvent {
    /// Sequence number.
    pub id: i64,
    /// The dispatch.
    pub dispatch_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// The unit concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<i64>,
    /// The post concerned (a notification), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_id: Option<i64>,
    /// `created`, a step name (`crate::dispatch::board::Step`), `notified`, `ack_overdue`, `arrival_overdue` or `closed`.
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (a token's name, or `safegrid` for alarms).
    pub actor: String,
    /// Anything else: deadlines and note on creation, ETA on a notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}
